/**
 * Finite-difference gradient checking for engine rules: builds f(inputs) -> scalar, takes the
 * engine's gradients, and compares them with central differences computed by running the
 * forward graph on perturbed inputs. float64 is used where ONNX Runtime implements every op in
 * the graph for doubles; otherwise float32 with looser, stated tolerances.
 */
import assert from 'node:assert/strict';
import { type DType, Executable, Graph, type GraphOptions, type HostArray, type Tensor, grad, op } from '../../src/engine/index.js';
import { Rng } from '../../src/core/random.js';

export interface CheckInput {
  shape: number[];
  /** Values; default: uniform in [-1, 1). */
  values?: number[];
}

export interface CheckOptions {
  /** Coordinates sampled per input for the numeric check (all when the input is small). */
  samples?: number;
  /** Force a dtype instead of trying float64 first. */
  dtype?: DType;
  /** Relative tolerance override. */
  rtol?: number;
  /** Options of the graph the function is built in (e.g. fused norms). */
  graph?: GraphOptions;
}

export interface CheckResult {
  dtype: DType;
  checked: number;
  maxRelErr: number;
}

/** Seeded uniform [0, 1) generator, so failures reproduce. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

function toArray(dtype: DType, values: number[]): Float32Array | Float64Array {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

async function buildAndRun(
  dtype: DType,
  inputs: readonly CheckInput[],
  values: number[][],
  f: (xs: Tensor[]) => Tensor,
  seed: number,
  graphOptions: GraphOptions = {},
): Promise<{ lossExe: Executable; gradExe: Executable; feeds: Map<string, HostArray>; grads: number[][] }> {
  const g = new Graph(graphOptions);
  const xs = inputs.map((inp, i) => g.param(`x${i}`, inp.shape, dtype));
  const y = f(xs);
  const r = rng(seed + 17);
  const weights = Array.from({ length: y.size }, () => r() * 2 - 1);
  // A random projection makes the scalar sensitive to every output element.
  const loss = op.reduceSum(op.mul(y, g.constant(toArray(dtype, weights), y.shape, dtype)));
  const grads = grad(loss, xs);
  const lossExe = await Executable.create(g, [loss], { threads: 1 });
  const gradExe = await Executable.create(g, grads, { threads: 1 });
  const feeds = new Map<string, HostArray>(values.map((v, i) => [`x${i}`, toArray(dtype, v)]));
  const out = await gradExe.run(feeds);
  return { lossExe, gradExe, feeds, grads: out.map((a) => Array.from(a as Float64Array)) };
}

/** Checks the engine's gradient of `f` against central differences; returns what was checked. */
export async function gradCheck(f: (xs: Tensor[]) => Tensor, inputs: readonly CheckInput[], opts: CheckOptions = {}, seed = 1): Promise<CheckResult> {
  const r = rng(seed);
  const values = inputs.map((inp) => inp.values ?? Array.from({ length: inp.shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1));
  let dtype: DType = opts.dtype ?? 'float64';
  let built: Awaited<ReturnType<typeof buildAndRun>>;
  try {
    built = await buildAndRun(dtype, inputs, values, f, seed, opts.graph);
  } catch (err) {
    if (opts.dtype || !/NOT_IMPLEMENTED|Could not find an implementation|type.*not supported/i.test(String(err))) throw err;
    dtype = 'float32';
    built = await buildAndRun(dtype, inputs, values, f, seed, opts.graph);
  }
  const eps = dtype === 'float64' ? 1e-6 : 1e-2;
  const rtol = opts.rtol ?? (dtype === 'float64' ? 1e-5 : 3e-2);
  const samples = opts.samples ?? 8;
  let checked = 0;
  let maxRelErr = 0;
  const evalLoss = async (feeds: Map<string, HostArray>): Promise<number> => (await built.lossExe.run(feeds))[0]![0] as number;
  for (let i = 0; i < inputs.length; i++) {
    const base = values[i]!;
    const coords = base.length <= samples ? base.map((_, k) => k) : Array.from({ length: samples }, () => Math.floor(r() * base.length));
    for (const k of coords) {
      const plus = [...base];
      plus[k] = plus[k]! + eps;
      const minus = [...base];
      minus[k] = minus[k]! - eps;
      const fp = await evalLoss(new Map([...built.feeds, [`x${i}`, toArray(dtype, plus)]]));
      const fm = await evalLoss(new Map([...built.feeds, [`x${i}`, toArray(dtype, minus)]]));
      const numeric = (fp - fm) / (2 * eps);
      const analytic = built.grads[i]![k]!;
      const scale = Math.max(1, Math.abs(numeric), Math.abs(analytic));
      const rel = Math.abs(numeric - analytic) / scale;
      maxRelErr = Math.max(maxRelErr, rel);
      checked++;
      assert.ok(
        rel <= rtol,
        `d/dx${i}[${k}] (${dtype}): engine ${analytic}, finite difference ${numeric}, relative error ${rel.toExponential(2)} > ${rtol}`,
      );
    }
  }
  await built.lossExe.release();
  await built.gradExe.release();
  return { dtype, checked, maxRelErr };
}

/** Distinct, well-separated values in random order (keeps max/argmax stable under perturbation). */
export function distinctValues(n: number, seed: number, spacing = 0.1): number[] {
  const r = rng(seed);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * spacing);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}
