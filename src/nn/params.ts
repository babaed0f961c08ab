/**
 * Named parameters: the host-side values of every weight and buffer of a model, their
 * initialisers, and which of them train. Names follow torchvision's state_dict
 * (`backbone.body.layer1.0.conv1.weight`), so checkpoints move between the two unchanged.
 */
import { type Graph, GraphError, type Tensor, shapeSize } from '../engine/graph.js';
import { Rng } from '../core/random.js';
import { fnv1a32 } from './hash_init.js';

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

function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shapeSize(shape.slice(2));
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: (shape[0] ?? 1) * receptive };
}

/** Fills a new array for `shape` according to `init`, from a stream seeded by (seed, name). */
export function initialize(name: string, shape: readonly number[], init: Init, seed: number): Float32Array {
  const out = new Float32Array(shapeSize(shape));
  if (init.kind === 'constant') return out.fill(init.value);
  // Each parameter draws from its own stream, so adding a layer never shifts the others.
  const rng = new Rng((fnv1a32(name) ^ seed) >>> 0);
  const { fanIn, fanOut } = fans(shape);
  switch (init.kind) {
    case 'normal': {
      const mean = init.mean ?? 0;
      for (let i = 0; i < out.length; i++) out[i] = mean + init.std * rng.normal();
      break;
    }
    case 'uniform':
      for (let i = 0; i < out.length; i++) out[i] = init.low + (init.high - init.low) * rng.next();
      break;
    case 'kaimingUniform': {
      const gain = Math.sqrt(2 / (1 + init.a * init.a));
      const bound = gain * Math.sqrt(3 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = (rng.next() * 2 - 1) * bound;
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

  /** Values of the parameters that training never changes (frozen BN statistics, frozen layers). */
  frozenValues(): Map<string, Float32Array> {
    return new Map([...this.info].filter(([, i]) => !i.trainable).map(([n]) => [n, this.values.get(n)!]));
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
