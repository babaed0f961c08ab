/**
 * The browser bundle (dist/browser/retinanet.js, built by scripts/build_browser.ts): an ES module
 * whose inputs (esbuild's metafile) include no Node module, with the WebAssembly files it loads
 * beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { BROWSER_DIR, BUNDLE, buildBrowser } from '../../scripts/build_browser.js';

/** Packages that must never be in the bundle: Node's own modules and the Node-only dependencies. */
const NODE_ONLY = new Set([...builtinModules, 'sharp', 'onnxruntime-node', '@img']);

/** The package (or Node builtin) an input of the metafile comes from, or undefined for our sources. */
function packageOf(input: string): string | undefined {
  if (input.startsWith('node:')) return input;
  const i = input.lastIndexOf('node_modules/');
  if (i < 0) return undefined;
  const parts = input.slice(i + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

test('the bundle reaches no Node module: every input is our browser-side source or a browser package', async () => {
  const meta: Metafile = await buildBrowser({ minify: false });
  const inputs = Object.keys(meta.inputs);
  assert.ok(inputs.includes('src/browser.ts') && inputs.includes('src/web/retinanet.ts'), 'the entry and the browser API are inputs');
  // The platform's browser side is in, its Node side is not.
  for (const twin of ['files', 'image', 'ort', 'system']) {
    assert.ok(inputs.includes(`src/platform/${twin}.browser.ts`), `src/platform/${twin}.browser.ts is bundled`);
    assert.ok(!inputs.includes(`src/platform/${twin}.ts`), `src/platform/${twin}.ts (Node side) is not bundled`);
  }
  const packages = new Set(inputs.map(packageOf).filter((p): p is string => p !== undefined));
  const nodeOnly = [...packages].filter((p) => NODE_ONLY.has(p) || NODE_ONLY.has(p.replace(/^node:/, '')) || p.startsWith('@img/'));
  assert.deepEqual(nodeOnly, [], `Node-only modules in the bundle: ${nodeOnly.join(', ')}`);
  assert.ok(packages.has('onnxruntime-web'), 'onnxruntime-web is bundled');
  assert.ok(!inputs.some((i) => i.startsWith('src/cli/')), 'nothing of the CLI is bundled');
  // Nothing left for the page to resolve: the output imports nothing (no externals).
  for (const [file, out] of Object.entries(meta.outputs)) {
    if (file.endsWith('.js')) assert.deepEqual(out.imports, [], `${file} imports nothing`);
  }
  const text = readFileSync(BUNDLE, 'utf8');
  assert.match(text, /export\s*\{[^}]*\bRetinaNet\b/, 'the bundle exports RetinaNet');
  // The Node-only packages are not even named in the code.
  for (const name of ['sharp', 'onnxruntime-node', 'worker_threads']) assert.ok(!text.includes(`"${name}"`) && !text.includes(`'${name}'`), `"${name}" does not occur in the bundle`);
  await buildBrowser(); // leave the minified bundle for the other tests
});

test('the WebAssembly files the bundle loads lie beside it', () => {
  for (const f of ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm', 'mozjpeg_dec.wasm', 'squoosh_png_bg.wasm']) {
    assert.ok(existsSync(path.join(BROWSER_DIR, f)), `dist/browser/${f}`);
  }
  // onnxruntime-web's entry in the bundle asks for the JSEP build (WebAssembly + WebGPU) copied here.
  assert.ok(readFileSync(BUNDLE, 'utf8').includes('ort-wasm-simd-threaded.jsep.mjs'));
});
