/**
 * Named parameters: the host-side values of every weight and buffer of a model, their
 * initialisers, and which of them train. Names follow torchvision's state_dict
 * (`backbone.body.layer1.0.conv1.weight`), so checkpoints move between the two unchanged.
 */
import { type Graph, GraphError, type Tensor, shapeSize } from '../engine/graph.js';

/** How a parameter is initialised (torch.nn.init semantics). */
export type Init =
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number }
  /** torch's default for Conv/Linear weights: kaiming_uniform_(a=sqrt(5)) -> U(-b, b), b = 1/sqrt(fan_in). */
  | { kind: 'kaimingUniform'; a: number }
  /** kaiming_normal_(mode='fan_out', nonlinearity='relu'), as torchvision's ResNet initialises convs. */
  | { kind: 'kaimingNormalFanOut' };

export interface ParamInfo {
  readonly shape: readonly number[];
  readonly trainable: boolean;
  readonly init: Init;
}

/** A small seeded generator (splitmix-seeded xorshift128+) with uniform and normal draws. */
export class Rng {
  private s0: bigint;
  private s1: bigint;
  private spare: number | null = null;

  constructor(seed: number | bigint) {
    let z = BigInt.asUintN(64, BigInt(seed));
    const next = (): bigint => {
      z = BigInt.asUintN(64, z + 0x9e3779b97f4a7c15n);
      let r = z;
      r = BigInt.asUintN(64, (r ^ (r >> 30n)) * 0xbf58476d1ce4e5b9n);
      r = BigInt.asUintN(64, (r ^ (r >> 27n)) * 0x94d049bb133111ebn);
      return r ^ (r >> 31n);
    };
    this.s0 = next();
    this.s1 = next();
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x = BigInt.asUintN(64, x ^ (x << 23n));
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(BigInt.asUintN(64, this.s1 + y) >> 11n) / 2 ** 53;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** 64-bit FNV-1a of a string: gives each parameter its own random stream. */
export function hashName(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const ch of Buffer.from(name, 'utf8')) {
    h ^= BigInt(ch);
    h = BigInt.asUintN(64, h * 0x100000001b3n);
  }
  return h;
}

function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shapeSize(shape.slice(2));
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: (shape[0] ?? 1) * receptive };
}

/** Fills a new array for `shape` according to `init`, from a stream seeded by (seed, name). */
export function initialize(name: string, shape: readonly number[], init: Init, seed: number): Float32Array {
  const out = new Float32Array(shapeSize(shape));
  if (init.kind === 'constant') return out.fill(init.value);
  const rng = new Rng(BigInt.asUintN(64, hashName(name) ^ BigInt(seed)));
  const { fanIn, fanOut } = fans(shape);
  switch (init.kind) {
    case 'normal': {
      const mean = init.mean ?? 0;
      for (let i = 0; i < out.length; i++) out[i] = mean + init.std * rng.normal();
      break;
    }
    case 'uniform':
      for (let i = 0; i < out.length; i++) out[i] = init.low + (init.high - init.low) * rng.uniform();
      break;
    case 'kaimingUniform': {
      const gain = Math.sqrt(2 / (1 + init.a * init.a));
      const bound = gain * Math.sqrt(3 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = (rng.uniform() * 2 - 1) * bound;
      break;
    }
    case 'kaimingNormalFanOut': {
      const std = Math.sqrt(2 / fanOut);
      for (let i = 0; i < out.length; i++) out[i] = std * rng.normal();
      break;
    }
  }
  return out;
}

/**
 * Host values of a model's parameters and buffers. Models declare parameters while building a
 * graph (`bind`); the first declaration initialises the value from the store's seed, later
 * builds (other input shapes) reuse it.
 */
export class ParameterStore {
  readonly values = new Map<string, Float32Array>();
  readonly info = new Map<string, ParamInfo>();

  constructor(readonly seed = 0) {}

  /** Declares (or re-declares, with the same shape) a parameter and returns its host value. */
  declare(name: string, shape: readonly number[], init: Init, trainable = true): Float32Array {
    const known = this.info.get(name);
    if (known) {
      if (known.shape.length !== shape.length || known.shape.some((d, i) => d !== shape[i])) {
        throw new GraphError(`parameter ${name} declared as [${shape.join(', ')}] but stored as [${known.shape.join(', ')}]`);
      }
      return this.values.get(name)!;
    }
    this.info.set(name, { shape: [...shape], trainable, init });
    const value = initialize(name, shape, init, this.seed);
    this.values.set(name, value);
    return value;
  }

  /** Declares the parameter in the store and as a graph input of `graph`. */
  bind(graph: Graph, name: string, shape: readonly number[], init: Init, trainable = true): Tensor {
    this.declare(name, shape, init, trainable);
    return graph.inputs.get(name) ?? graph.param(name, shape);
  }

  get(name: string): Float32Array {
    const v = this.values.get(name);
    if (!v) throw new GraphError(`no parameter named ${name}`);
    return v;
  }

  /** Names of trainable parameters, in declaration order. */
  trainableNames(): string[] {
    return [...this.info].filter(([, i]) => i.trainable).map(([n]) => n);
  }

  /** Marks parameters trainable or frozen by a predicate on their names. */
  setTrainable(pred: (name: string) => boolean): void {
    for (const [name, i] of this.info) this.info.set(name, { ...i, trainable: pred(name) });
  }

  /** Total number of scalar values (optionally only trainable ones). */
  count(trainableOnly = false): number {
    let n = 0;
    for (const [name, v] of this.values) if (!trainableOnly || this.info.get(name)!.trainable) n += v.length;
    return n;
  }
}
