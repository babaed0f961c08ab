/**
 * Browser benchmark: detect per image and one training step in Chromium (the bundle,
 * onnxruntime-web, WebAssembly with threads: the page is cross-origin isolated) against the same
 * in Node (onnxruntime-node), on the same machine, same model (hash weights) and same image.
 * Needs the bundle (npm run build:browser), playwright-core and Chromium (/usr/bin/chromium or
 * RETINANET_CHROMIUM). Short by default: one warm-up and `--runs` timed runs each. The training steps use a tiny learning rate (1e-6): hash weights diverge at the paper's, and the time does not depend on it.
 * `retinanet bench browser [--arch A] [--size HxW] [--train-size HxW] [--runs N] [--threads N] [--no-train]`.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../src/core/errors.js';
import { numberFlag } from '../src/core/flags.js';
import { memorySource } from '../src/data/source.js';
import { saveImage, type RgbImage } from '../src/io/image.js';
import { startStaticServer } from '../src/io/static_server.js';
import { architectureNames, configFor } from '../src/model/config.js';
import { RetinaNet } from '../src/model/model.js';
import { hashUniform, hashWeight } from '../src/nn/hash_init.js';
import { BrowserTrainer } from '../src/web/trainer.js';
import { runIfScript } from './detection_common.js';
import { median } from '../src/core/stats.js';

interface Options {
  arch: string;
  h: number;
  w: number;
  trainH: number;
  trainW: number;
  runs: number;
  threads: number;
  train: boolean;
}

const USAGE = 'takes --arch A, --size HxW, --train-size HxW, --runs N, --threads N, --no-train';

function size(raw: string, flag: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(raw);
  if (!m) throw new InputError(`${flag} must be HxW, got '${raw}'`);
  return [Number(m[1]), Number(m[2])];
}

function parse(argv: string[]): Options {
  const values: Record<string, string> = {};
  let train = true;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--no-train') {
      train = false;
      continue;
    }
    if (!['--arch', '--size', '--train-size', '--runs', '--threads'].includes(flag) || argv[i + 1] === undefined) throw new InputError(`bench browser: unknown or incomplete option '${flag}' (${USAGE})`);
    values[flag.slice(2)] = argv[++i]!;
  }
  const arch = values['arch'] ?? 'retinanet_resnet50_fpn';
  if (!architectureNames().includes(arch)) throw new InputError(`--arch must be one of ${architectureNames().join(', ')}, got '${arch}'`);
  const [h, w] = size(values['size'] ?? '512x640', '--size');
  const [trainH, trainW] = size(values['train-size'] ?? '320x416', '--train-size');
  return {
    arch, h, w, trainH, trainW, train,
    runs: numberFlag(values, 'runs', { integer: true, min: 1 }) ?? 3,
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? os.availableParallelism(),
  };
}

function hashImage(h: number, w: number, seed: string): RgbImage {
  return { data: Float32Array.from(hashUniform(seed, 3 * h * w), (v) => Math.floor(v * 256) / 255), height: h, width: w };
}

function hashModel(arch: string, h: number, w: number): RetinaNet {
  const model = new RetinaNet(configFor(arch, { transform: { minSize: Math.min(h, w), maxSize: Math.max(h, w) } }));
  for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  return model;
}

/** A few boxes on the training image, in its pixels. */
function trainBoxes(h: number, w: number): { boxes: Float32Array; labels: Int32Array } {
  return { boxes: Float32Array.from([0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h, 0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h]), labels: Int32Array.from([0, 1]) };
}

/** Times `go`: one untimed warm-up (compiles), then `runs` timed calls; milliseconds. */
async function time(runs: number, go: () => Promise<unknown>): Promise<{ first: number; times: number[] }> {
  let t = performance.now();
  await go();
  const first = performance.now() - t;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    await go();
    times.push(performance.now() - t);
  }
  return { first, times };
}

interface PageResult {
  backend: string;
  detect: { first: number; times: number[] };
  train?: { first: number; times: number[]; loss: number };
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  const browserDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../browser');
  if (!existsSync(path.join(browserDir, 'retinanet.js'))) throw new InputError(`${browserDir}/retinanet.js is missing: run npm run build:browser`);
  const chromium = [process.env['RETINANET_CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
  if (!chromium) throw new InputError('Chromium not found (/usr/bin/chromium, or set RETINANET_CHROMIUM)');
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch {
    throw new InputError('bench browser needs playwright-core (npm install --save-dev playwright-core)');
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-bench-browser-'));
  try {
    const model = hashModel(o.arch, o.h, o.w);
    model.classNames = ['a', 'b'].concat(Array.from({ length: model.config.numClasses - 2 }, (_, i) => `c${i}`));
    model.categoryIds = model.classNames.map((_, i) => i + 1);
    await model.saveWeights(path.join(dir, 'model.safetensors'));
    const image = hashImage(o.h, o.w, 'bench-image');
    const trainImage = hashImage(o.trainH, o.trainW, 'bench-train-image');
    // PNG: lossless, so both sides start from the same pixels.
    await saveImage(image, path.join(dir, 'image.png'));
    await saveImage(trainImage, path.join(dir, 'train.png'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(dir, 'blank.html'), '<!doctype html><title>bench</title>');

    // Node.
    const node = await time(o.runs, () => model.detect([image], { threads: o.threads }));
    let nodeTrain: { first: number; times: number[] } | undefined;
    if (o.train) {
      const tuned = hashModel(o.arch, o.trainH, o.trainW);
      const { boxes, labels } = trainBoxes(o.trainH, o.trainW);
      const trainer = new BrowserTrainer(tuned, memorySource([{ image: trainImage, boxes, labels }], model.classNames), { iters: o.runs + 1, batchSize: 1, flip: false, lr: 1e-6, warmupIters: 0 });
      nodeTrain = await time(o.runs, () => trainer.step());
      await trainer.dispose();
    }
    await model.dispose();

    // Chromium.
    const server = await startStaticServer({ port: 0, folders: [{ prefix: '/', dir: browserDir }, { prefix: '/bench/', dir }] });
    const browser = await playwright.chromium.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox'] });
    let page: PageResult;
    try {
      const tab = await browser.newPage();
      await tab.goto(new URL('/bench/blank.html', server.url).href);
      page = await tab.evaluate(
        async ({ runs, threads, train, trainH, trainW, boxes, labels }) => {
          const lib = await import(new URL('/retinanet.js', location.href).href);
          const timeIt = async (n: number, go: () => Promise<unknown>) => {
            let t = performance.now();
            await go();
            const first = performance.now() - t;
            const times: number[] = [];
            for (let i = 0; i < n; i++) {
              t = performance.now();
              await go();
              times.push(performance.now() - t);
            }
            return { first, times };
          };
          const net = await lib.RetinaNet.fromWeights('/bench/model.safetensors', { executionProvider: 'wasm', threads });
          const rgb = await lib.toRgbImage('/bench/image.png');
          const detect = await timeIt(runs, () => net.detect(rgb));
          let trainResult;
          if (train) {
            const img = await lib.toRgbImage('/bench/train.png');
            const tuned = await lib.RetinaNet.fromWeights('/bench/model.safetensors', { minSize: Math.min(trainH, trainW), maxSize: Math.max(trainH, trainW) });
            const trainer = new lib.BrowserTrainer(tuned.model, lib.memorySource([{ image: img, boxes: Float32Array.from(boxes), labels: Int32Array.from(labels) }], tuned.model.classNames), { iters: runs + 1, batchSize: 1, flip: false, lr: 1e-6, warmupIters: 0 });
            const timed = await timeIt(runs, () => trainer.step());
            trainResult = { ...timed, loss: trainer.records[0].loss };
            await trainer.dispose();
          }
          return { backend: net.backend.description, detect, train: trainResult };
        },
        { runs: o.runs, threads: o.threads, train: o.train, trainH: o.trainH, trainW: o.trainW, boxes: Array.from(trainBoxes(o.trainH, o.trainW).boxes), labels: [0, 1] },
      );
    } finally {
      await browser.close();
      await server.close();
    }

    const ms = (x: number): string => `${x.toFixed(0)} ms`;
    console.log(`${o.arch} (hash weights), ${o.threads} threads, ${o.runs} timed runs after one untimed (compile) run`);
    console.log(`  Chromium: ${page.backend}`);
    console.log(`  detect, one ${o.h}x${o.w} image:  Node median ${ms(median(node.times))} (first ${ms(node.first)}) | Chromium median ${ms(median(page.detect.times))} (first ${ms(page.detect.first)}) | Chromium / Node ${(median(page.detect.times) / median(node.times)).toFixed(2)}x`);
    if (nodeTrain && page.train) {
      console.log(`  training step, batch 1 x ${o.trainH}x${o.trainW}:  Node median ${ms(median(nodeTrain.times))} (first ${ms(nodeTrain.first)}) | Chromium median ${ms(median(page.train.times))} (first ${ms(page.train.first)}) | Chromium / Node ${(median(page.train.times) / median(nodeTrain.times)).toFixed(2)}x`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfScript(import.meta.url, main);
