/**
 * The layers of docs/architecture.md, enforced: a module may import its own folder and the
 * folders its layer lists, nothing above. Also: the library never imports the CLI, never exits
 * the process, and bench/ uses the library, not the CLI's internals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Which folders of src/ each folder may import (besides itself). */
export const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  // ONNX Runtime, files, image decoding, machine facts: a Node side and a browser side.
  platform: ['core'],
  engine: ['core', 'platform'],
  plot: ['core'],
  eval: ['core', 'plot'],
  io: ['core', 'platform'],
  detection: ['core', 'engine'],
  nn: ['core', 'engine'],
  data: ['core', 'platform', 'io', 'eval', 'detection', 'plot'],
  model: ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'plot'],
  train: ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'model', 'plot'],
  queue: ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'model'],
  // The browser API (RetinaNet.fromWeights, detect, fine-tuning in a tab): the library on the
  // platform's browser side.
  web: ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'model', 'train'],
  // The public API (src/index.ts and friends at the top level) re-exports the library;
  // src/browser.ts is the browser bundle's entry.
  '.': ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'model', 'train', 'plot', 'web'],
  cli: ['core', 'platform', 'engine', 'eval', 'io', 'detection', 'nn', 'data', 'model', 'train', 'plot', 'queue', '.', '../bench'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of a file's static and dynamic imports and re-exports. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\s)(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/gm)) specs.push((m[1] ?? m[2])!);
  return specs.filter((s) => s.startsWith('.'));
}

/** The top folder of src/ a path lies in ('.' for src/ itself, '../bench' for bench/). */
function folderOf(abs: string): string {
  const rel = path.relative(path.join(root, 'src'), abs);
  if (rel.startsWith('..')) return path.relative(path.join(root, 'src'), path.join(root, rel.split(path.sep)[1]!)).split(path.sep).join('/');
  const parts = rel.split(path.sep);
  return parts.length === 1 ? '.' : parts[0]!;
}

test('every import in src/ points to its own folder or a lower layer', () => {
  const violations: string[] = [];
  for (const file of files(path.join(root, 'src'))) {
    const from = folderOf(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `src/${from} is not in the layer table of test/meta/layers.test.ts (add it, and to docs/architecture.md)`);
    for (const spec of importsOf(file)) {
      const to = folderOf(path.resolve(path.dirname(file), spec));
      if (to !== from && !allowed.includes(to)) violations.push(`${path.relative(root, file)} imports ${spec} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the library never exits the process, installs signal handlers or imports a progress bar', () => {
  const offenders: string[] = [];
  for (const file of files(path.join(root, 'src'))) {
    if (folderOf(file) === 'cli') continue;
    const text = readFileSync(file, 'utf8');
    if (/process\.exit\(|process\.(once|on)\('SIG/.test(text)) offenders.push(path.relative(root, file));
  }
  assert.deepEqual(offenders, []);
});

test('bench/ uses the library, not the CLI', () => {
  const offenders: string[] = [];
  for (const file of files(path.join(root, 'bench'))) {
    for (const spec of importsOf(file)) {
      if (folderOf(path.resolve(path.dirname(file), spec)) === 'cli') offenders.push(`${path.relative(root, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});
