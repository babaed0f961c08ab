/**
 * How much memory running a graph takes, estimated before it is compiled: the peak of live
 * intermediate tensors when the nodes run in graph order and each tensor is freed after its
 * last use — the schedule ONNX Runtime's memory planner starts from. Inputs (fed by the
 * caller) and constants (held by the session) are counted apart.
 */
import type { DType, Graph, Tensor } from './graph.js';
import { requiredSubgraph } from './onnx.js';

const BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1, uint8: 1, int8: 1 };

/** Bytes of one tensor. */
export function tensorBytes(t: Tensor): number {
  return t.size * BYTES[t.dtype];
}

export interface MemoryEstimate {
  /** Peak bytes of intermediate tensors alive at once (outputs included). */
  peakActivations: number;
  /** Bytes of the graph's fed inputs. */
  inputs: number;
  /** Bytes of constants and initializers baked into the session. */
  constants: number;
}

/** Estimates the memory of computing `outputs` of `graph` (see the module comment). */
export function estimateMemory(graph: Graph, outputs: readonly Tensor[], baked: ReadonlySet<string> = new Set()): MemoryEstimate {
  const { nodes, leaves } = requiredSubgraph(graph, outputs);
  const lastUse = new Map<Tensor, number>();
  nodes.forEach((n, i) => {
    for (const t of n.inputs) if (t && t.producer) lastUse.set(t, i);
  });
  const keep = new Set(outputs);
  let live = 0;
  let peak = 0;
  nodes.forEach((n, i) => {
    for (const t of n.outputs) live += tensorBytes(t);
    peak = Math.max(peak, live);
    for (const t of n.inputs) if (t && t.producer && lastUse.get(t) === i && !keep.has(t)) live -= tensorBytes(t);
    // Outputs nobody reads (and that are not results) die at once.
    for (const t of n.outputs) if (!lastUse.has(t) && !keep.has(t)) live -= tensorBytes(t);
  });
  let inputs = 0;
  let constants = 0;
  for (const t of leaves) {
    if (t.source === 'constant' || baked.has(t.name)) constants += tensorBytes(t);
    else inputs += tensorBytes(t);
  }
  return { peakActivations: peak, inputs, constants };
}

/**
 * ONNX Runtime's resident memory for a compiled session after a run, over the graph's liveness
 * peak: measured 2.6x for retinanet_resnet50_fpn's training graph at 512x640 (1.2 GiB resident
 * for a 0.46 GiB estimate; docs/reliability.md): kernels' workspaces, copies around fused
 * kernels and arena rounding.
 */
export const ORT_MEMORY_FACTOR = 2.6;

/** What a compiled session holds whatever its graph (kernels, plans, thread-local buffers): measured on the demo model. */
export const ORT_SESSION_OVERHEAD = 48 * 2 ** 20;

/** Bytes a compiled ONNX Runtime session of a graph with this estimate holds after running. */
export function sessionBytes(e: MemoryEstimate): number {
  return Math.ceil(ORT_MEMORY_FACTOR * e.peakActivations + e.inputs + e.constants + ORT_SESSION_OVERHEAD);
}
