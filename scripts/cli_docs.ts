/**
 * Writes every command's current `--help` text into docs/cli.md: the first ```text block after
 * the top heading gets `retinanet --help`, the first one in each `## <command>` section that
 * command's help. `npx tsc -p . && node dist/scripts/cli_docs.js` (test/meta/docs.test.ts fails
 * when docs/cli.md is out of date).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commands } from '../src/cli/registry.js';
import { usage } from '../src/cli/main.js';

export const CLI_DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/cli.md');

/** docs/cli.md with the help texts of today's commands. */
export function withCurrentHelp(doc: string): string {
  const lines = doc.split('\n');
  const replaceBlockAfter = (start: number, text: string): void => {
    const open = lines.findIndex((l, i) => i > start && l === '```text');
    const close = lines.findIndex((l, i) => i > open && l === '```');
    if (open < 0 || close < 0) throw new Error(`docs/cli.md: no \`\`\`text block after line ${start + 1}`);
    lines.splice(open + 1, close - open - 1, ...text.split('\n'));
  };
  replaceBlockAfter(0, usage());
  for (const c of commands) {
    const at = lines.indexOf(`## ${c.name}`);
    if (at < 0) throw new Error(`docs/cli.md has no '## ${c.name}' section`);
    replaceBlockAfter(at, c.help);
  }
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(CLI_DOC, withCurrentHelp(readFileSync(CLI_DOC, 'utf8')));
  console.log(`updated ${CLI_DOC}`);
}
