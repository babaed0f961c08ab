/**
 * The symbolic graph: tensors with a dtype and a static shape, and the nodes (ONNX operators)
 * that produce them. Operators are added through the typed functions in `ops.ts`, which infer
 * output shapes as the graph is built so that shape errors surface here, not in the runtime.
 *
 * Run-time dimensions: a graph input may declare some dimensions symbolic (`input(..., dims)`,
 * e.g. an image of any height and width). Such a graph is built at a reference size: every
 * tensor still has a static `shape` (its shape at that size; for a data-dependent size such as
 * NonZero's, the largest possible), and shape inference marks every tensor whose shape may
 * differ at run time as `dynamic`. Ops whose ONNX form would bake a size of a dynamic tensor
 * into the model (Reshape to a static shape, Expand, ...) refuse it; the ops that compute sizes
 * in the graph (`shapeOf`, `reshapeSymbolic`, `range`, ... in ops.ts) take their place. Graphs
 * without symbolic inputs (every training and inference graph of the model) are unaffected.
 */

/** Element types the engine uses (ONNX names in `onnxDataType`). */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8' | 'int8';

/** A static shape; every dimension is known when the graph is built (for a dynamic tensor: at the reference size). */
export type Shape = readonly number[];

/** Host buffers matching each dtype. */
export type HostArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

/** Typed ONNX attribute values (ONNX distinguishes int from float attributes). */
export type Attr =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string };

export const attr = {
  int: (value: number): Attr => ({ type: 'int', value }),
  ints: (value: readonly number[]): Attr => ({ type: 'ints', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  floats: (value: readonly number[]): Attr => ({ type: 'floats', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
};

/** One operator application. `inputs` may hold `null` for omitted optional inputs. */
export interface Node {
  readonly opType: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

/** How a tensor enters the graph when it is not computed by a node. */
export type Source = 'input' | 'param' | 'constant' | 'node';

/** A symbolic tensor: a name in the graph with a dtype and a static shape. */
export class Tensor {
  /** The node that computes this tensor (absent for inputs, parameters and constants). */
  producer: Node | undefined;
  /**
   * Names of its run-time dimensions as the ONNX file declares them (`null`: the static size),
   * for graph inputs and outputs of a graph with dynamic shapes; see `Graph.nameDims`.
   */
  dimNames: readonly (string | null)[] | undefined;
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly source: Source,
    /** Whether the shape may differ at run time (`shape` is then the reference-size shape). */
    readonly dynamic = false,
  ) {}

  /** Number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

/** A constant baked into the graph as an ONNX initializer. */
export interface ConstantValue {
  readonly tensor: Tensor;
  readonly data: HostArray;
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Thrown when a graph is built with inconsistent shapes or dtypes. */
export class GraphError extends Error {
  override name = 'GraphError';
}

/** How a graph builds some composite ops (see `Graph.options`). */
export interface GraphOptions {
  /**
   * Build a static float32 GroupNorm as one LayerNormalization node (opset 17) on [N, G, C/G*H*W]
   * instead of its ~10 primitive nodes, with a gradient rule of its own: fewer passes over the
   * activations forward and backward. For graphs ONNX Runtime runs here (training); graphs that
   * may be written at opset 13-16 (export) keep the primitives.
   */
  fusedNorms?: boolean;
}

/**
 * A graph under construction. Nodes are appended in creation order, which is a topological
 * order: every op's inputs exist before the op is added.
 */
export class Graph {
  readonly nodes: Node[] = [];
  constructor(readonly options: Readonly<GraphOptions> = {}) {}
  /** Graph inputs fed at run time: data inputs and parameters, by name. */
  readonly inputs = new Map<string, Tensor>();
  readonly constants = new Map<string, ConstantValue>();
  private counter = 0;

  /** A fresh tensor name with a readable prefix. */
  uniqueName(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /**
   * Declares a data input fed at run time (images, targets, ...). `dims` names the dimensions
   * that are only known at run time (`null` for a static one): the input and everything
   * computed from it are then `dynamic`, and `shape` is the reference size the graph is built at.
   */
  input(name: string, dtype: DType, shape: Shape, dims?: readonly (string | null)[]): Tensor {
    if (!dims || dims.every((d) => d === null)) return this.declare(name, dtype, shape, 'input');
    if (dims.length !== shape.length) throw new GraphError(`input ${name}: ${dims.length} dimension names for rank ${shape.length}`);
    const t = this.declare(name, dtype, shape, 'input', true);
    t.dimNames = [...dims];
    return t;
  }

  /**
   * Names the dimensions of a graph output as the ONNX file declares them: a string is a
   * run-time (symbolic) dimension, `null` the tensor's static size. Outputs of a dynamic graph
   * left unnamed are declared with unknown dimensions.
   */
  nameDims(t: Tensor, dims: readonly (string | null)[]): void {
    if (t.graph !== this) throw new GraphError(`nameDims: ${t.name} belongs to another graph`);
    if (dims.length !== t.rank) throw new GraphError(`nameDims: ${dims.length} names for ${t.name} of rank ${t.rank}`);
    t.dimNames = [...dims];
  }

  /**
   * Declares a named parameter fed at run time. Parameters are what `grad` differentiates
   * against, and what export bakes in as initializers.
   */
  param(name: string, shape: Shape, dtype: DType = 'float32'): Tensor {
    return this.declare(name, dtype, shape, 'param');
  }

  private declare(name: string, dtype: DType, shape: Shape, source: Source, dynamic = false): Tensor {
    if (this.inputs.has(name) || this.constants.has(name)) {
      throw new GraphError(`graph already has a tensor named '${name}'`);
    }
    checkShape(shape, name);
    const t = new Tensor(this, name, dtype, [...shape], source, dynamic);
    this.inputs.set(name, t);
    return t;
  }

  /**
   * `t` under a chosen name (an Identity node), for a model's outputs ('boxes', 'scores', ...);
   * `dims` names its dimensions as `nameDims` does.
   */
  output(name: string, t: Tensor, dims?: readonly (string | null)[]): Tensor {
    if (t.graph !== this) throw new GraphError(`output: ${t.name} belongs to another graph`);
    if (this.inputs.has(name) || this.constants.has(name) || this.nodes.some((n) => n.outputs.some((o) => o.name === name))) {
      throw new GraphError(`graph already has a tensor named '${name}'`);
    }
    const out = new Tensor(this, name, t.dtype, [...t.shape], 'node', t.dynamic);
    const node: Node = { opType: 'Identity', inputs: [t], outputs: [out], attrs: {} };
    out.producer = node;
    this.nodes.push(node);
    if (dims) this.nameDims(out, dims);
    return out;
  }

  /** Adds a constant (ONNX initializer). `data` length must match the shape. */
  constant(data: HostArray, shape: Shape, dtype: DType = dtypeOfArray(data), name?: string): Tensor {
    checkShape(shape, 'constant');
    if (data.length !== shapeSize(shape)) {
      throw new GraphError(`constant: ${data.length} values do not fill shape [${shape.join(', ')}]`);
    }
    const tname = name ?? this.uniqueName('const');
    if (this.inputs.has(tname) || this.constants.has(tname)) {
      throw new GraphError(`graph already has a tensor named '${tname}'`);
    }
    const t = new Tensor(this, tname, dtype, [...shape], 'constant');
    this.constants.set(tname, { tensor: t, data });
    return t;
  }

  /**
   * Appends a node; `outputs` are given as (dtype, shape) pairs and returned as tensors. An
   * output is `dynamic` when any input is, unless its spec says otherwise (an op whose output
   * size comes from an input's values, such as Range or NonZero, says `dynamic: true`).
   */
  addNode(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly { dtype: DType; shape: Shape; dynamic?: boolean }[],
    attrs: Record<string, Attr> = {},
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new GraphError(`${opType}: input ${t.name} belongs to another graph`);
    }
    const anyDynamic = inputs.some((t) => t?.dynamic === true);
    const outs = outputs.map((o) => {
      checkShape(o.shape, opType);
      return new Tensor(this, this.uniqueName(opType), o.dtype, [...o.shape], 'node', o.dynamic ?? anyDynamic);
    });
    const node: Node = { opType, inputs: [...inputs], outputs: outs, attrs };
    for (const t of outs) t.producer = node;
    this.nodes.push(node);
    return outs;
  }
}

function checkShape(shape: Shape, where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new GraphError(`${where}: invalid shape [${shape.join(', ')}]`);
    }
  }
}

export function dtypeOfArray(data: HostArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

/** Allocates a host array of the dtype's element type. */
export function allocHost(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
    case 'uint8':
      return new Uint8Array(n);
    case 'int8':
      return new Int8Array(n);
  }
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}
