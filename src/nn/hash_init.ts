/**
 * Deterministic "hash" weights: every value is a pure function of the parameter's name and the
 * element's index, computed with 32-bit integer arithmetic that Python/numpy reproduces exactly
 * (scripts/fixtures/hash_weights.py). Both sides can then build the same full-size network
 * (e.g. ResNet-50-FPN, 34M values) without shipping a checkpoint, which keeps golden fixtures
 * small. The scales keep activations of a deep network in a sane range; they are not a
 * training initialisation.
 */
import { shapeSize } from '../engine/graph.js';

/** 32-bit FNV-1a of a UTF-8 string. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** lowbias32 integer mixer (Wellons). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Uniform [0, 1) values for `name`, n of them. */
export function hashUniform(name: string, n: number): Float64Array {
  const seed = fnv1a32(name);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mix((Math.imul(i, 0x9e3779b1) + seed) >>> 0) / 4294967296;
  return out;
}

/** The hash weight of a torchvision RetinaNet parameter, chosen by its name and shape. */
export function hashWeight(name: string, shape: readonly number[]): Float32Array {
  const u = hashUniform(name, shapeSize(shape));
  const out = new Float32Array(u.length);
  const sym = (scale: number): void => {
    for (let i = 0; i < u.length; i++) out[i] = (2 * u[i]! - 1) * scale;
  };
  const affine = (lo: number, hi: number): void => {
    for (let i = 0; i < u.length; i++) out[i] = lo + (hi - lo) * u[i]!;
  };
  const isNorm = /(\.bn\d|downsample\.1|conv\.\d+\.1)\.(weight|bias)$/.test(name) || /running_(mean|var)$/.test(name);
  if (shape.length === 4) {
    const fanIn = shape[1]! * shape[2]! * shape[3]!;
    const damp = name.includes('cls_logits') ? 0.05 : name.includes('bbox_reg') ? 0.1 : 1;
    sym(Math.sqrt(6 / fanIn) * damp);
  } else if (name.endsWith('running_var')) affine(0.5, 1.5);
  else if (name.endsWith('running_mean')) sym(0.1);
  else if (isNorm && name.endsWith('.weight')) {
    // Damp the last norm of each residual branch so activations do not grow block after block.
    if (/\.bn3\.weight$/.test(name)) affine(0.1, 0.3);
    else affine(0.8, 1.2);
  } else if (name.endsWith('cls_logits.bias')) affine(-4, -2);
  else sym(0.1);
  return out;
}
