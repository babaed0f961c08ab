import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLI_DOC, withCurrentHelp } from '../../scripts/cli_docs.js';

test("docs/cli.md shows every command's current --help (regenerate: node dist/scripts/cli_docs.js)", () => {
  const doc = readFileSync(CLI_DOC, 'utf8');
  assert.equal(doc, withCurrentHelp(doc));
});
