/**
 * Exported-model benchmark: retinanet_resnet50_fpn (91 classes) on one 512x640 image, detect
 * per image with the float32 and the int8 export (model/export.ts, model/quantize.ts) run by
 * ONNX Runtime, and RetinaNet.detect (host pre/post-processing around the network graph) for
 * reference, all in the same run and interleaved round by round. Deterministic hash weights
 * (src/nn/hash_init.ts), so the numbers say nothing about accuracy (see docs/export.md for AP);
 * `--weights FILE` times a trained model instead (safetensors + sidecar, e.g. the BCCD model),
 * still on a generated image of `--size` and calibrated on generated images.
 * `retinanet bench export [--threads N] [--runs N] [--rounds R] [--size HxW] [--calibrate-images N] [--weights FILE]`.
 */
import { InputError } from '../src/core/errors.js';
import { numberFlag } from '../src/core/flags.js';
import { OnnxSession } from '../src/engine/runtime.js';
import { chwToHwcBytes, type RgbImage } from '../src/io/image.js';
import { configFor } from '../src/model/config.js';
import { exportDetector } from '../src/model/export.js';
import { RetinaNet } from '../src/model/model.js';
import { exportDetectorInt8 } from '../src/model/quantize.js';
import { hashUniform, hashWeight } from '../src/nn/hash_init.js';
import { runIfScript } from './detection_common.js';
import { median } from '../src/core/stats.js';

interface Options {
  threads: number;
  runs: number;
  rounds: number;
  h: number;
  w: number;
  calibrationImages: number;
  weights?: string;
}

function parse(argv: string[]): Options {
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    if (!['--threads', '--runs', '--rounds', '--size', '--calibrate-images', '--weights'].includes(flag) || argv[i + 1] === undefined) {
      throw new InputError(`bench export: unknown or incomplete option '${flag}' (takes --threads N, --runs N, --rounds R, --size HxW, --calibrate-images N, --weights FILE)`);
    }
    values[flag.slice(2)] = argv[i + 1]!;
  }
  const size = /^(\d+)x(\d+)$/.exec(values['size'] ?? '512x640');
  if (!size) throw new InputError(`--size must be HxW, got '${values['size']}'`);
  return {
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? 2,
    runs: numberFlag(values, 'runs', { integer: true, min: 1 }) ?? 8,
    rounds: numberFlag(values, 'rounds', { integer: true, min: 1 }) ?? 3,
    h: Number(size[1]),
    w: Number(size[2]),
    calibrationImages: numberFlag(values, 'calibrate-images', { integer: true, min: 1 }) ?? 4,
    weights: values['weights'],
  };
}

function hashImage(h: number, w: number, seed: string): RgbImage {
  return { data: Float32Array.from(hashUniform(seed, 3 * h * w), (v) => Math.floor(v * 256) / 255), height: h, width: w };
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  let model: RetinaNet;
  if (o.weights) {
    model = await RetinaNet.fromWeights(o.weights);
  } else {
    const cfg = configFor('retinanet_resnet50_fpn', { transform: { minSize: Math.min(o.h, o.w), maxSize: Math.max(o.h, o.w) }, inference: { detectionsPerImg: 300 } });
    model = new RetinaNet(cfg);
    for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
  }
  const image = hashImage(o.h, o.w, 'bench-image');
  const feed = { image: { data: chwToHwcBytes(image), dims: [o.h, o.w, 3] } };

  let t = performance.now();
  const fp32 = exportDetector(model);
  const exportMs = performance.now() - t;
  t = performance.now();
  const calibration = Array.from({ length: o.calibrationImages }, (_, i) => hashImage(o.h, o.w, `bench-calibration-${i}`));
  const { bytes: int8 } = await exportDetectorInt8(model, calibration, { threads: o.threads });
  const int8Ms = performance.now() - t;

  const sessions = { fp32: await OnnxSession.create(fp32, { threads: o.threads }), int8: await OnnxSession.create(int8, { threads: o.threads }) };
  const runners: Record<string, () => Promise<number>> = {
    'RetinaNet.detect': async () => (await model.detect([image], { threads: o.threads }))[0]!.scores.length,
    'export float32': async () => (await sessions.fp32.run(feed))['scores']!.dims[0]!,
    'export int8': async () => (await sessions.int8.run(feed))['scores']!.dims[0]!,
  };
  const times: Record<string, number[]> = {};
  const detections: Record<string, number> = {};
  for (const [name, go] of Object.entries(runners)) {
    detections[name] = await go(); // compile / first run, untimed
    await go();
    times[name] = [];
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const [name, go] of Object.entries(runners)) {
      for (let i = 0; i < o.runs; i++) {
        const s = performance.now();
        await go();
        times[name]!.push(performance.now() - s);
      }
    }
  }
  const what = o.weights ? `${model.config.name} (${o.weights}, network at ${model.config.transform.minSize}/${model.config.transform.maxSize})` : 'retinanet_resnet50_fpn (hash weights)';
  console.log(`${what}, one ${o.h}x${o.w} image, detect per image, ${o.threads} threads, ${o.rounds} rounds x ${o.runs} runs interleaved`);
  console.log(`  models: float32 ${(fp32.length / 1e6).toFixed(1)} MB (export ${exportMs.toFixed(0)} ms), int8 ${(int8.length / 1e6).toFixed(1)} MB (calibration on ${o.calibrationImages} images + export ${int8Ms.toFixed(0)} ms)`);
  const med: Record<string, number> = {};
  for (const [name, ts] of Object.entries(times)) {
    med[name] = median(ts);
    console.log(`  ${name.padEnd(17)}: median ${med[name]!.toFixed(1)} ms, min ${Math.min(...ts).toFixed(1)} ms, ${detections[name]} detections`);
  }
  console.log(`  ratio int8 / float32 export (median): ${(med['export int8']! / med['export float32']!).toFixed(2)}x (speed-up ${(med['export float32']! / med['export int8']!).toFixed(2)}x)`);
  console.log(`  ratio float32 export / RetinaNet.detect (median): ${(med['export float32']! / med['RetinaNet.detect']!).toFixed(2)}x`);
  await sessions.fp32.release();
  await sessions.int8.release();
  await model.dispose();
}

runIfScript(import.meta.url, main);
