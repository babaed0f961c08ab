/**
 * The package as a user gets it: `npm pack`, installed into an empty folder, then an ES module
 * there imports from 'retinanet-ts' and detects on an image with weights trained by the CLI, and
 * a TypeScript file type-checks against the shipped .d.ts files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_CLASSES, writeSyntheticCoco } from '../../src/data/synthetic.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { CLI } from '../cli/helpers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let dir = '';
let app = '';
let weights = '';
let image = '';

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rn-pack-'));
  // The tarball, from the dist/ that `npm test` has just built (--ignore-scripts: no rebuild
  // under the running tests).
  const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], repo)) as { filename: string; files: { path: string }[] }[];
  const tarball = path.join(dir, packed[0]!.filename);
  const shipped = packed[0]!.files.map((f) => f.path);
  assert.ok(shipped.includes('dist/src/index.js') && shipped.includes('dist/src/index.d.ts'), 'the entry point and its types are shipped');
  assert.ok(!shipped.some((f) => f.startsWith('dist/test/') || f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.map')), `only what a user needs is shipped: ${shipped.filter((f) => f.startsWith('dist/test/') || f.startsWith('src/') || f.endsWith('.map')).slice(0, 5).join(', ')}`);

  app = path.join(dir, 'app');
  sh('mkdir', ['-p', app], dir);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // onnxruntime-node's install script would download CUDA binaries: skip install scripts as the
  // repo's .npmrc does (the native binaries are in the packages).
  writeFileSync(path.join(app, '.npmrc'), 'ignore-scripts=true\n');
  sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);

  // Weights trained by the CLI: two steps of the demo architecture on a few 64 px images.
  const data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 4, imageSize: 64, seed: 1 });
  image = path.join(data, 'train', '000001.png');
  const config = path.join(dir, 'tiny.json');
  const { classNames: _names, numClasses: _n, ...cfg } = demoConfig(64);
  writeFileSync(config, JSON.stringify({ ...cfg, arch: 'retinanet_resnet18_fpn_small' }));
  sh(process.execPath, [CLI, 'train', '--data', data, '--config', config, '--iters', '2', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--quiet', '--out', path.join(dir, 'run')], dir);
  weights = path.join(dir, 'run', 'model.safetensors');
  assert.ok(existsSync(weights));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("an ES module imports from 'retinanet-ts' and detects with CLI-trained weights, as the CLI does", () => {
  writeFileSync(
    path.join(app, 'detect.mjs'),
    `import { RetinaNet, loadImage, toCocoResults, paperRecipe } from 'retinanet-ts';
import { evaluateCoco } from 'retinanet-ts/eval';
import { op, Graph } from 'retinanet-ts/engine';
import { lineChart, renderSvg, svgToPng } from 'retinanet-ts/plot';
const model = await RetinaNet.fromWeights(process.argv[2]);
const [det] = await model.detect([await loadImage(process.argv[3])], { scoreThresh: 0 });
console.log(JSON.stringify({
  classNames: model.classNames,
  results: toCocoResults(det, 1, model.categoryIds),
  batch: paperRecipe().batchSize,
  kinds: [typeof evaluateCoco, typeof op.add, typeof Graph],
}));
// Charts render from the installed package (vega, vega-lite and resvg come with it).
const svg = await renderSvg(lineChart([{ name: 'train loss', x: [1, 2, 3], y: [3, 2, 1] }, { name: 'val loss', x: [1, 2, 3], y: [3, 2.5, 2] }], { title: 'chart', x: { title: 'iteration' }, y: { title: 'loss' } }));
console.error(JSON.stringify({ svgHasSeries: svg.includes('>train loss</text>') && svg.includes('>val loss</text>'), png: [...(await svgToPng(svg)).subarray(1, 4)].map((c) => String.fromCharCode(c)).join('') }));
`,
  );
  const run = spawnSync(process.execPath, ['detect.mjs', weights, image], { cwd: app, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stderr), { svgHasSeries: true, png: 'PNG' });
  const out = JSON.parse(run.stdout) as { classNames: string[]; results: { image_id: number; category_id: number; bbox: number[]; score: number }[]; batch: number; kinds: string[] };
  assert.deepEqual(out.classNames, SYNTHETIC_CLASSES);
  assert.deepEqual(out.kinds, ['function', 'function', 'function']);
  assert.equal(out.batch, 2);
  assert.equal(out.results.length, 100);
  // The same weights through the CLI give the same detections.
  const dets = path.join(dir, 'cli_dets.json');
  sh(process.execPath, [CLI, 'detect', image, '--weights', weights, '--score-thresh', '0', '--out', dets], dir);
  const cliResults = JSON.parse(readFileSync(dets, 'utf8')) as typeof out.results;
  assert.deepEqual(out.results, cliResults);
});

test('a TypeScript file type-checks against the shipped .d.ts', () => {
  writeFileSync(
    path.join(app, 'use.ts'),
    `import { RetinaNet, Trainer, paperRecipe, loadImage, InputError, type ImageDetections, type TrainHook, type RgbImage } from 'retinanet-ts';
import { evaluateCoco, type CocoStats } from 'retinanet-ts/eval';
import { sigmoidFocalLoss } from 'retinanet-ts/detection';
import { Graph, op } from 'retinanet-ts/engine';
import { lineChart, writeFigure, type FigureFiles, type TopLevelSpec } from 'retinanet-ts/plot';

export async function chart(dir: string): Promise<FigureFiles> {
  const spec: TopLevelSpec = lineChart([{ name: 'AP', x: [1, 2], y: [0.1, 0.2] }], { title: 'AP', x: { title: 'iteration' }, y: { title: 'AP' } });
  return writeFigure(dir, 'ap', spec);
}

export async function run(file: string, image: string): Promise<number> {
  const model: RetinaNet = await RetinaNet.fromWeights(file);
  const img: RgbImage = await loadImage(image);
  const [det]: ImageDetections[] = await model.detect([img]);
  const boxes: Float32Array = det!.boxes;
  const hook: TrainHook = { afterValidation: (_t, s: CocoStats) => void s.AP };
  const recipe = paperRecipe({ batch: 4 });
  const lr: number = recipe.lr;
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  sigmoidFocalLoss(x, op.mul(x, 0));
  void evaluateCoco; void Trainer; void hook; void InputError;
  return boxes.length + lr;
}
`,
  );
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(repo, 'node_modules/@types')] },
      files: ['use.ts'],
    }),
  );
  const r = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', app], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // And the check can fail: a wrong type is reported.
  writeFileSync(path.join(app, 'use.ts'), `import { paperRecipe } from 'retinanet-ts';\nexport const n: string = paperRecipe().lr;\n`);
  const bad = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', app], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /Type 'number' is not assignable to type 'string'/);
  assert.ok(readdirSync(path.join(app, 'node_modules', 'retinanet-ts', 'dist', 'src')).includes('index.d.ts'));
});
