/**
 * A/B of the engine's fused forms, in one process, the two sides alternating (so a noisy
 * machine's slow phases fall on both): the training graph of a from-scratch GroupNorm model with
 * GroupNorm as one LayerNormalization node against its ~10 primitive nodes (graph run only:
 * forward, loss and every gradient), and ONNX Runtime's MaxPool with and without its Indices
 * output (the ResNet stem's 3x3 / 2 pool at three sizes). Prints medians and ratios.
 *
 *   node dist/bench/fused_ops_ab.js [--size 256] [--model scratch32|scratch64] [--threads 2] [--runs 12]
 */
import { Executable, Graph, op } from '../src/engine/index.js';
import { InputError } from '../src/core/errors.js';
import { RetinaNet } from '../src/model/model.js';
import { memorySource } from '../src/data/source.js';
import { hashUniform } from '../src/nn/hash_init.js';
import { prepareBatch } from '../src/train/batches.js';
import { SCRATCH_MODELS, scratchConfig } from '../src/train/scratch_recipe.js';
import { buildTrainGraph, trainFeeds } from '../src/train/train_graph.js';
import { runIfScript } from './detection_common.js';
import { median } from '../src/core/stats.js';


/** Times `fns` alternately, `runs` times each after one warm-up call; returns the medians in ms. */
async function alternate(fns: (() => Promise<unknown>)[], runs: number): Promise<number[]> {
  const times = fns.map(() => [] as number[]);
  for (const f of fns) await f();
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < fns.length; k++) {
      const t0 = performance.now();
      await fns[k]!();
      times[k]!.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

export async function main(argv: string[]): Promise<void> {
  const get = (name: string, d: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? (argv[i + 1] ?? '') : d;
  };
  const size = Number(get('size', '256'));
  const threads = Number(get('threads', '2'));
  const runs = Number(get('runs', '12'));
  const m = SCRATCH_MODELS.find((x) => `scratch${x.baseWidth}` === get('model', 'scratch32'));
  if (!m) throw new InputError(`--model: one of ${SCRATCH_MODELS.map((x) => `scratch${x.baseWidth}`).join(', ')}`);
  if (![size, threads, runs].every((v) => Number.isInteger(v) && v >= 1) || size % 32 !== 0) throw new InputError('--size (a multiple of 32), --threads and --runs want whole numbers >= 1');

  // 1. The training graph, fused GroupNorm against primitive.
  const cfg = scratchConfig(m, ['a', 'b', 'c'], { minSize: size, maxSize: size });
  const model = new RetinaNet(cfg, 0);
  const samples = Array.from({ length: 4 }, (_, i) => ({
    image: { data: Float32Array.from(hashUniform(`ab-image-${i}`, 3 * size * size)), width: size, height: size },
    boxes: Float32Array.from([0.1, 0.1, 0.3, 0.4, 0.5, 0.4, 0.9, 0.8].map((v) => v * size)),
    labels: Int32Array.from([0, 1]),
  }));
  const b = await prepareBatch(memorySource(samples, ['a', 'b', 'c']), 0, [0, 1, 2, 3], { config: cfg, flip: false, padTo: 32, seed: 0, boxLoss: cfg.loss.box });
  const [n, , h, w] = b.shape;
  const plain = await buildTrainGraph(model, n, h, w, b.anchors.length / 4, threads, { fusedNorms: false });
  const fused = await buildTrainGraph(model, n, h, w, b.anchors.length / 4, threads, { fusedNorms: true });
  const feeds = trainFeeds(model, b);
  const [tp, tf] = await alternate([() => plain.exe.run(feeds), () => fused.exe.run(feeds)], runs);
  console.log(`training graph, ResNet-18 width ${m.baseWidth} GroupNorm, batch ${n} x ${h}x${w}, ${threads} threads, ${runs} runs each:`);
  console.log(`  GroupNorm as primitives ${tp!.toFixed(0)} ms, as LayerNormalization ${tf!.toFixed(0)} ms: ${(tf! / tp!).toFixed(3)}x`);
  await plain.release();
  await fused.release();
  await model.dispose();

  // 2. MaxPool 3x3 / 2, pad 1, with and without the Indices output.
  console.log(`MaxPool 3x3 stride 2 (the stem's), ${threads} threads:`);
  const shapes: [number, number, number, number][] = [
    [4, 32, 128, 128],
    [2, 64, 256, 256],
    [1, 64, 400, 608],
  ];
  for (const shape of shapes) {
    const size4 = shape.reduce((a, c) => a * c, 1);
    const x = Float32Array.from(hashUniform(`ab-pool-${shape.join('x')}`, size4));
    const pool = { kernel: 3, strides: 2, pads: 1 };
    const exes = await Promise.all(
      [false, true].map((indices) => {
        const g = new Graph();
        const xin = g.input('x', 'float32', shape);
        const y = indices ? op.maxPoolWithIndices(xin, pool).values : op.maxPool(xin, pool);
        // A scalar out, so the copy of the pooled tensor to JS is not timed.
        return Executable.create(g, [op.reduceSum(y)], { threads });
      }),
    );
    const fx = new Map([['x', x]]);
    const [plainMs, withIdx] = await alternate(exes.map((e) => () => e.run(fx)), runs);
    console.log(`  [${shape.join(', ')}]: values only ${plainMs!.toFixed(2)} ms, with Indices ${withIdx!.toFixed(2)} ms: ${(withIdx! / plainMs!).toFixed(1)}x slower`);
    for (const e of exes) await e.release();
  }
}

runIfScript(import.meta.url, main);
