/**
 * Serialization of a graph to an ONNX ModelProto (opset 17), using onnx-proto's generated
 * protobuf code. Only the nodes needed for the requested outputs are emitted, and only the
 * inputs those nodes read become graph inputs (ONNX Runtime insists that every input is fed).
 */
import onnxProto from 'onnx-proto';
import { type Attr, type DType, type Graph, GraphError, type HostArray, type Node, type Tensor, dtypeOfArray } from './graph.js';
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
}

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

function valueInfo(t: Tensor): onnxProto.onnx.IValueInfoProto {
  return {
    name: t.name,
    type: {
      tensorType: {
        elemType: onnxTypeCode(t.dtype),
        shape: { dim: t.shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
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

  const nodeProtos: onnxProto.onnx.INodeProto[] = nodes.map((n, i) => ({
    name: `${n.opType}_${i}`,
    opType: n.opType,
    input: n.inputs.map((t) => (t ? t.name : '')),
    output: n.outputs.map((t) => t.name),
    attribute: Object.entries(n.attrs).map(([k, v]) => attributeProto(k, v)),
  }));

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
    irVersion: 8,
    producerName: 'retinanet-ts',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: opts.name ?? 'retinanet-ts',
      node: nodeProtos,
      input: inputs,
      output: outputInfos,
      initializer: initializers,
    },
  };
  // encode() takes the plain object directly; fromObject() would copy every initializer.
  return onnx.ModelProto.encode(model).finish();
}

/** The name under which ONNX Runtime returns `t` from a serialized model. */
export function outputName(t: Tensor): string {
  return t.producer ? t.name : `${t.name}__out`;
}
