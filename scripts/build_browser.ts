/**
 * Builds the browser bundle `dist/browser/retinanet.js` (an ES module, from src/browser.ts) and
 * the web app of `retinanet serve` (app/: index.html, app.js) with esbuild, and puts beside them the WebAssembly files it loads at run time: onnxruntime-web's
 * (the JSEP build: WebAssembly with threads and WebGPU) and the image decoders' (mozjpeg, png).
 * Modules of src/platform/ are swapped for their `.browser.ts` twins, so that no Node module is
 * reachable; esbuild's metafile (`dist/browser/meta.json`) lists every input, and
 * test/browser/bundle.test.ts checks it. `npm run build:browser`, or `node dist/scripts/build_browser.js`
 * after `npx tsc -p .`.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

/** The repository root (this file runs as dist/scripts/build_browser.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where the bundle and its WebAssembly files go. */
export const BROWSER_DIR = path.join(ROOT, 'dist/browser');
/** The bundle. */
export const BUNDLE = path.join(BROWSER_DIR, 'retinanet.js');

/** Platform modules with a browser twin (`src/platform/<name>.browser.ts`). */
const TWINS = new Set(['files', 'image', 'ort', 'system']);

/** Resolves `src/platform/<name>.js` to `src/platform/<name>.browser.ts`. */
const browserTwins: Plugin = {
  name: 'platform-browser-twins',
  setup(b) {
    b.onResolve({ filter: /(^|\/)(files|image|ort|system)\.js$/ }, (args) => {
      if (!args.path.startsWith('.')) return undefined;
      const target = path.resolve(args.resolveDir, args.path);
      const name = path.basename(target, '.js');
      if (path.dirname(target) !== path.join(ROOT, 'src/platform') || !TWINS.has(name)) return undefined;
      return { path: path.join(ROOT, 'src/platform', `${name}.browser.ts`) };
    });
  },
};

/** The web app (app/main.ts) imports the library as the bundle beside it, not a second copy. */
const libraryAsBundle: Plugin = {
  name: 'library-as-bundle',
  setup(b) {
    b.onResolve({ filter: /\/src\/browser\.js$/ }, () => ({ path: './retinanet.js', external: true }));
  },
};

/** Files copied beside the bundle: [from (relative to node_modules), to (a name in dist/browser)]. */
const WASM_FILES: readonly (readonly [string, string])[] = [
  ['onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.mjs'],
  ['onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm', 'ort-wasm-simd-threaded.jsep.wasm'],
  ['@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm', 'mozjpeg_dec.wasm'],
  ['@jsquash/png/codec/pkg/squoosh_png_bg.wasm', 'squoosh_png_bg.wasm'],
];

/** Builds the bundle into {@link BROWSER_DIR}; returns esbuild's metafile (also written as meta.json). */
export async function buildBrowser(opts: { minify?: boolean } = {}): Promise<Metafile> {
  mkdirSync(BROWSER_DIR, { recursive: true });
  const result = await build({
    entryPoints: [path.join(ROOT, 'src/browser.ts')],
    outfile: BUNDLE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // onnxruntime-web's build that loads its .wasm/.mjs from env.wasm.wasmPaths (beside the bundle).
    conditions: ['onnxruntime-web-use-extern-wasm'],
    minify: opts.minify ?? true,
    sourcemap: true,
    metafile: true,
    logLevel: 'silent',
    plugins: [browserTwins],
  });
  writeFileSync(path.join(BROWSER_DIR, 'meta.json'), JSON.stringify(result.metafile));
  // The web app of `retinanet serve`.
  await build({
    entryPoints: [path.join(ROOT, 'app/main.ts')],
    outfile: path.join(BROWSER_DIR, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: opts.minify ?? true,
    logLevel: 'silent',
    plugins: [libraryAsBundle],
  });
  copyFileSync(path.join(ROOT, 'app/index.html'), path.join(BROWSER_DIR, 'index.html'));
  for (const [from, to] of WASM_FILES) {
    const src = path.join(ROOT, 'node_modules', from);
    if (!existsSync(src)) throw new Error(`${from} is missing: run npm install`);
    copyFileSync(src, path.join(BROWSER_DIR, to));
  }
  return result.metafile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildBrowser();
  console.log(`built ${path.relative(process.cwd(), BUNDLE)}`);
}
