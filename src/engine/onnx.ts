/**
 * Serialization of a graph to an ONNX ModelProto (opset 17), using onnx-proto's generated
 * protobuf code. Only the nodes needed for the requested outputs are emitted, and only the
 * inputs those nodes read become graph inputs (ONNX Runtime insists that every input is fed).
 */
import onnxProto from 'onnx-proto';
import { type Attr, type DType, type Graph, GraphError, type HostArray, type Node, type Tensor, dtypeOfArray } from './graph.js';
import { NCHWC_DOMAIN, rewriteNchwc } from './nchwc.js';
import { onnxTypeCode } from './ops.js';

const { onnx } = onnxProto;

/** The ONNX operator set the engine emits. */
export const OPSET = 17;

export interface SerializeOptions {
  /** Tensors the model returns, in order. Output names are the tensors' names. */
  outputs: readonly Tensor[];
  /**
   * Values to bake in as initializers instead of graph inputs (e.g. parameters for inference or
   * export). Keys are input names.
   */
  bake?: ReadonlyMap<string, HostArray>;
  /** Model name recorded in the file. */
  name?: string;
  /**
   * Operator set to declare (default OPSET, 17). The graph's ops are written in their opset-13
   * to -17 forms; from 18 on, the reductions' `axes` attribute is moved to an input as opset 18
   * wants. Allowed: MIN_OPSET to MAX_OPSET.
   */
  opset?: number;
  /** Key/value strings stored in the model's `metadata_props`. */
  metadata?: Readonly<Record<string, string>>;
  /** The graph's documentation string. */
  docString?: string;
  /**
   * Run convolutions whose weights are not initializers in ONNX Runtime's NCHWc kernels with
   * blocks of this many channels (nchwc.ts). Machine-specific: only for a graph run here, with
   * the block size the runtime probed (`nchwcBlockSize`). Default 0: off.
   */
  nchwcBlock?: number;
}

/** Lowest opset `serialize` can write (Unsqueeze, Squeeze, ReduceSum take their axes as inputs from 13). */
export const MIN_OPSET = 13;
/** Highest opset `serialize` writes (checked against ONNX Runtime 1.30). */
export const MAX_OPSET = 21;

/** The ONNX IR version that goes with an opset (ONNX 1.13: IR 8 for opsets <= 18, 1.14: 9, 1.16: 10). */
function irVersionFor(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

/** Reductions whose `axes` became an input in opset 18 (ReduceSum did in 13). */
const AXES_INPUT_FROM_18 = new Set(['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);

/** Nodes needed to compute `outputs`, in topological order, and the leaf tensors they read. */
export function requiredSubgraph(graph: Graph, outputs: readonly Tensor[]): { nodes: Node[]; leaves: Set<Tensor> } {
  const neededNodes = new Set<Node>();
  const leaves = new Set<Tensor>();
  const stack: Tensor[] = [...outputs];
  const seen = new Set<Tensor>();
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.graph !== graph) throw new GraphError(`output ${t.name} belongs to another graph`);
    const p = t.producer;
    if (!p) {
      leaves.add(t);
      continue;
    }
    if (neededNodes.has(p)) continue;
    neededNodes.add(p);
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return { nodes: graph.nodes.filter((n) => neededNodes.has(n)), leaves };
}

/**
 * A graph input's or output's declaration: static sizes as values, named run-time dimensions
 * (`Tensor.dimNames`) as parameters, the other dimensions of a dynamic tensor left unknown.
 */
function valueInfo(t: Tensor): onnxProto.onnx.IValueInfoProto {
  const names = t.dimNames;
  const dim = t.shape.map((d, i): onnxProto.onnx.TensorShapeProto.IDimension => {
    const name = names?.[i];
    if (typeof name === 'string') return { dimParam: name };
    return t.dynamic && !names ? {} : { dimValue: d };
  });
  return { name: t.name, type: { tensorType: { elemType: onnxTypeCode(t.dtype), shape: { dim } } } };
}

function tensorProto(name: string, dtype: DType, shape: readonly number[], data: HostArray): onnxProto.onnx.ITensorProto {
  const expected = dtype === 'bool' ? 'uint8' : dtype;
  if (dtypeOfArray(data) !== expected) throw new GraphError(`initializer ${name}: ${dtype} tensor given a ${data.constructor.name}`);
  // Raw little-endian bytes: compact, and what every ONNX reader accepts.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dataType: onnxTypeCode(dtype), dims: [...shape], rawData: bytes };
}

function attributeProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

/** Encodes the part of `graph` that computes `opts.outputs` as ONNX model bytes. */
export function serialize(graph: Graph, opts: SerializeOptions): Uint8Array {
  const opset = opts.opset ?? OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new GraphError(`opset ${opset} is not supported: give ${MIN_OPSET} to ${MAX_OPSET}`);
  const { nodes, leaves } = requiredSubgraph(graph, opts.outputs);
  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  for (const t of leaves) {
    if (t.source === 'constant') {
      const c = graph.constants.get(t.name)!;
      initializers.push(tensorProto(t.name, t.dtype, t.shape, c.data));
    } else {
      const baked = opts.bake?.get(t.name);
      if (baked) {
        if (baked.length !== t.size) throw new GraphError(`baked value for ${t.name} has ${baked.length} values, expected ${t.size}`);
        initializers.push(tensorProto(t.name, t.dtype, t.shape, baked));
      } else {
        inputs.push(valueInfo(t));
      }
    }
  }
  // Graph inputs in declaration order, so that exported models read naturally.
  const order = [...graph.inputs.keys()];
  inputs.sort((a, b) => order.indexOf(a.name!) - order.indexOf(b.name!));

  let nodeProtos: onnxProto.onnx.INodeProto[] = nodes.map((n, i) => {
    const input = n.inputs.map((t) => (t ? t.name : ''));
    let attrs = Object.entries(n.attrs);
    const axes = n.attrs['axes'];
    if (opset >= 18 && AXES_INPUT_FROM_18.has(n.opType) && axes?.type === 'ints') {
      const name = `${n.opType}_${i}_axes`;
      initializers.push(tensorProto(name, 'int64', [axes.value.length], BigInt64Array.from(axes.value.map(BigInt))));
      input.push(name);
      attrs = attrs.filter(([k]) => k !== 'axes');
    }
    return {
      name: `${n.opType}_${i}`,
      opType: n.opType,
      input,
      output: n.outputs.map((t) => t.name),
      attribute: attrs.map(([k, v]) => attributeProto(k, v)),
    };
  });

  if (opts.nchwcBlock) {
    const initializerNames = new Set(initializers.map((t) => t.name));
    nodeProtos = rewriteNchwc(nodes, nodeProtos, initializers, (name) => initializerNames.has(name), new Set(opts.outputs.map((t) => t.name)), opts.nchwcBlock);
  }
  const domains = nodeProtos.some((n) => n.domain === NCHWC_DOMAIN) ? [{ domain: NCHWC_DOMAIN, version: 1 }] : [];

  // An output that is itself a graph input or constant must pass through a node.
  const outputInfos: onnxProto.onnx.IValueInfoProto[] = [];
  for (const t of opts.outputs) {
    if (!t.producer) {
      const alias = `${t.name}__out`;
      nodeProtos.push({ name: `${alias}_identity`, opType: 'Identity', input: [t.name], output: [alias] });
      outputInfos.push({ ...valueInfo(t), name: alias });
    } else {
      outputInfos.push(valueInfo(t));
    }
  }

  const model: onnxProto.onnx.IModelProto = {
    irVersion: irVersionFor(opset),
    producerName: 'retinanet-ts',
    opsetImport: [{ domain: '', version: opset }, ...domains],
    graph: {
      name: opts.name ?? 'retinanet-ts',
      node: nodeProtos,
      input: inputs,
      output: outputInfos,
      initializer: initializers,
      ...(opts.docString ? { docString: opts.docString } : {}),
    },
    ...(opts.metadata ? { metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })) } : {}),
  };
  // encode() takes the plain object directly; fromObject() would copy every initializer.
  return onnx.ModelProto.encode(model).finish();
}

/** The name under which ONNX Runtime returns `t` from a serialized model. */
export function outputName(t: Tensor): string {
  return t.producer ? t.name : `${t.name}__out`;
}

/**
 * The `metadata_props` of serialized ONNX model bytes, read without decoding the graph: the
 * top-level fields are walked and only field 14 (StringStringEntryProto) is decoded.
 */
export function readMetadata(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= bytes.length) throw new GraphError('not an ONNX model: truncated protobuf');
      const b = bytes[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = varint();
        if (pos + len > bytes.length) throw new GraphError('not an ONNX model: truncated protobuf');
        if (field === 14) {
          const e = onnx.StringStringEntryProto.decode(bytes.subarray(pos, pos + len));
          out[e.key] = e.value;
        }
        pos += len;
        break;
      }
      default:
        throw new GraphError('not an ONNX model: unexpected protobuf wire type');
    }
  }
  return out;
}
