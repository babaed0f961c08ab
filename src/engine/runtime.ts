/**
 * Execution through ONNX Runtime: a graph (with chosen outputs) is serialized and compiled into
 * an InferenceSession once, then run many times with host buffers as feeds. Graphs have static
 * shapes, so a `SessionCache` keeps one compiled session per input-shape key.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';
import { ort } from '../platform/ort.js';
import { system } from '../platform/system.js';
import { type DType, Graph, GraphError, type HostArray, type Tensor, dtypeOfArray } from './graph.js';
import { MIN_POSITIONS } from './nchwc.js';
import { outputName, requiredSubgraph, serialize } from './onnx.js';
import { conv } from './ops.js';

export interface RuntimeOptions {
  /** Intra-op threads; default: all cores. */
  threads?: number;
  /** Input values baked into the model as initializers (e.g. frozen parameters for inference). */
  bake?: ReadonlyMap<string, HostArray>;
  /** ONNX Runtime graph optimisation level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write an ONNX Runtime profile (chrome trace JSON) with this file prefix. */
  profilePrefix?: string;
  /**
   * Run convolutions with fed or computed weights in ONNX Runtime's NCHWc kernels when this
   * machine has them (engine/nchwc.ts; `RETINANET_NCHWC=0` turns it off everywhere). Default true.
   */
  nchwc?: boolean;
}

let nchwcProbe: Promise<number> | undefined;

/**
 * The channel block of ONNX Runtime's NCHWc kernels on this machine (16 with AVX-512, 8 with
 * AVX2), or 0 where there are none (onnxruntime-web, other CPUs, or `RETINANET_NCHWC=0`). Found
 * once per process by running one small convolution rewritten for each candidate block and
 * keeping the block whose result equals the plain convolution's: a wrong block gives wrong
 * values, not an error.
 */
export function nchwcBlockSize(): Promise<number> {
  nchwcProbe ??= probeNchwc();
  return nchwcProbe;
}

async function probeNchwc(): Promise<number> {
  if (!ort.nchwcKernels || system.env('RETINANET_NCHWC') === '0') return 0;
  // Large enough for the rewrite to take it (MIN_POSITIONS output positions).
  const side = Math.ceil(Math.sqrt(MIN_POSITIONS));
  const g = new Graph();
  const x = g.input('x', 'float32', [1, 16, side, side]);
  const w = g.input('w', 'float32', [16, 16, 3, 3]);
  const y = conv(x, w, null, { pads: 1 });
  const feeds = {
    x: { data: Float32Array.from({ length: 16 * side * side }, (_, i) => Math.sin(i * 0.7)), dims: [1, 16, side, side] },
    w: { data: Float32Array.from({ length: 2304 }, (_, i) => Math.cos(i * 1.3)), dims: [16, 16, 3, 3] },
  };
  const run = async (block: number): Promise<Float32Array> => {
    const session = await OnnxSession.create(serialize(g, { outputs: [y], nchwcBlock: block }), { threads: 1, optimization: 'basic' });
    try {
      return (await session.run(feeds))[y.name]!.data as Float32Array;
    } finally {
      await session.release();
    }
  };
  try {
    const plain = await run(0);
    for (const block of [16, 8]) {
      const got = await run(block).catch(() => undefined);
      if (got && got.every((v, i) => Math.abs(v - plain[i]!) <= 1e-4 * (1 + Math.abs(plain[i]!)))) return block;
    }
  } catch {
    // No NCHWc operators in this build: the plain path.
  }
  return 0;
}

/** Default thread count: every core the process may use. */
export function defaultThreads(): number {
  return system.defaultThreads();
}

const ORT_TYPE: Record<DType, OrtTensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
  uint8: 'uint8',
  int8: 'int8',
};

/** A compiled graph: feed host arrays by input name, get host arrays back in output order. */
export class Executable {
  private constructor(
    private readonly session: InferenceSession,
    /** Inputs the compiled graph needs, with their dtypes and shapes. */
    readonly inputs: readonly Tensor[],
    readonly outputs: readonly Tensor[],
    /** Serialized model size in bytes (useful to spot accidentally baked tensors). */
    readonly modelBytes: number,
  ) {}

  /** Serializes the subgraph computing `outputs` and compiles it. */
  static async create(graph: Graph, outputs: readonly Tensor[], opts: RuntimeOptions = {}): Promise<Executable> {
    const nchwcBlock = opts.nchwc === false ? 0 : await nchwcBlockSize();
    const bytes = serialize(graph, { outputs, bake: opts.bake, nchwcBlock });
    const { leaves } = requiredSubgraph(graph, outputs);
    const inputs = [...leaves].filter((t) => t.source !== 'constant' && !opts.bake?.has(t.name));
    const session = await ort.InferenceSession.create(bytes, {
      ...ort.sessionOptions(),
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opts.optimization ?? 'all',
      ...(system.env('RETINANET_ORT_ARENA') === '0' ? { enableCpuMemArena: false } : {}),
      ...(system.env('RETINANET_ORT_MEMPATTERN') === '0' ? { enableMemPattern: false } : {}),
      ...(opts.profilePrefix ? { enableProfiling: true, profileFilePrefix: opts.profilePrefix } : {}),
    });
    return new Executable(session, inputs, outputs, bytes.byteLength);
  }

  /** Runs the graph. Every input listed in `inputs` must be fed with a buffer of matching size and type. */
  async run(feeds: Readonly<Record<string, HostArray>> | ReadonlyMap<string, HostArray>): Promise<HostArray[]> {
    const get = (name: string): HostArray | undefined => (feeds instanceof Map ? feeds.get(name) : (feeds as Record<string, HostArray>)[name]);
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const t of this.inputs) {
      const data = get(t.name);
      if (!data) throw new GraphError(`missing feed for input '${t.name}' (${t.dtype}[${t.shape.join(', ')}])`);
      if (data.length !== t.size) throw new GraphError(`feed '${t.name}' has ${data.length} values, expected ${t.size} for shape [${t.shape.join(', ')}]`);
      const want = t.dtype === 'bool' ? 'uint8' : t.dtype;
      if (dtypeOfArray(data) !== want) throw new GraphError(`feed '${t.name}' must be ${t.dtype}, got ${data.constructor.name}`);
      ortFeeds[t.name] = new ort.Tensor(ORT_TYPE[t.dtype], data as never, [...t.shape]);
    }
    const names = this.outputs.map(outputName);
    const result = system.env('RETINANET_ORT_SHRINK') === '1' ? await this.session.run(ortFeeds, names, { extra: { memory: { enable_memory_arena_shrinkage: 'cpu:0' } } }) : await this.session.run(ortFeeds, names);
    return names.map((n) => result[n]!.data as HostArray);
  }

  /** Stops profiling and writes the profile file (when created with `profilePrefix`). */
  endProfiling(): void {
    this.session.endProfiling();
  }

  /** Frees the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Compiled sessions keyed by a caller-chosen key (typically the input shapes), so that a model
 * run on a bounded set of image sizes compiles each graph once. Bounded by count and, when
 * given, by memory: each entry declares the bytes it holds while cached (an estimate; see
 * engine/memory.ts), and before a new one is built the least recently used entries are released
 * — and their release awaited — until it fits. An entry larger than the whole budget is still
 * built (alone): refusing work that cannot fit is the caller's check, made before a run starts.
 */
export class SessionCache<T extends { release(): Promise<void> } = Executable> {
  private readonly entries = new Map<string, { value: Promise<T>; bytes: number }>();

  constructor(
    private readonly maxEntries = 16,
    /** Bytes the cached entries may hold together (default: no limit). */
    private readonly maxBytes = Infinity,
  ) {}

  /** Bytes the cached entries hold, as declared. */
  get bytes(): number {
    let b = 0;
    for (const e of this.entries.values()) b += e.bytes;
    return b;
  }

  /**
   * Returns the cached executable for `key`, building and compiling it on first use. `bytes` is
   * what the entry will hold while cached (0 when unknown or negligible).
   */
  async get(key: string, build: () => Promise<T>, bytes = 0): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      // Refresh recency.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    // Make room first: a session's memory is only back once its release has finished.
    while (this.entries.size > 0 && (this.entries.size >= this.maxEntries || this.bytes + bytes > this.maxBytes)) {
      const oldest = this.entries.keys().next().value as string;
      const victim = this.entries.get(oldest)!;
      this.entries.delete(oldest);
      await victim.value.then((x) => x.release()).catch(() => undefined);
    }
    const value = build();
    this.entries.set(key, { value, bytes });
    value.catch(() => this.entries.delete(key));
    return value;
  }

  get size(): number {
    return this.entries.size;
  }

  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) await (await e.value).release();
  }
}

/** Key for a session cache from named input shapes. */
export function shapeKey(shapes: Readonly<Record<string, readonly number[]>>): string {
  return Object.entries(shapes)
    .map(([k, s]) => `${k}:${s.join('x')}`)
    .join(';');
}

/** A tensor fed to or returned by an {@link OnnxSession}: its values and its run-time shape. */
export interface ShapedArray {
  data: HostArray;
  dims: readonly number[];
}

const ORT_TO_DTYPE: Partial<Record<string, DType>> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8', int8: 'int8' };

/**
 * An ONNX model from a file or bytes, run with feeds of whatever shapes its inputs allow: the
 * runtime for models with run-time dimensions (an exported detector), where `Executable`
 * compiles one static graph per shape.
 */
export class OnnxSession {
  private constructor(private readonly session: InferenceSession) {}

  /** Loads and compiles the model (`model`: a file path or the model's bytes). */
  static async create(model: string | Uint8Array, opts: Pick<RuntimeOptions, 'threads' | 'optimization'> & { optimizedModelPath?: string } = {}): Promise<OnnxSession> {
    const options: InferenceSession.SessionOptions = {
      ...ort.sessionOptions(),
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opts.optimization ?? 'all',
      ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
    };
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
    return new OnnxSession(session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the model on named feeds; returns every output (or those named in `outputs`) by name. */
  async run(feeds: Readonly<Record<string, ShapedArray>>, outputs: readonly string[] = this.session.outputNames): Promise<Record<string, ShapedArray>> {
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(ORT_TYPE[dtypeOfArray(data)], data as never, [...dims]);
    }
    const result = await this.session.run(ortFeeds, [...outputs]);
    const out: Record<string, ShapedArray> = {};
    for (const name of outputs) {
      const t = result[name]!;
      if (!ORT_TO_DTYPE[t.type]) throw new GraphError(`output '${name}' has type ${t.type}, which the engine does not read`);
      out[name] = { data: t.data as HostArray, dims: [...t.dims] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
