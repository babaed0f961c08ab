/**
 * How much memory running a graph takes, estimated before it is compiled: the peak of live
 * intermediate tensors when the nodes run in graph order and each tensor is freed after its
 * last use — the schedule ONNX Runtime's memory planner starts from. Inputs (fed by the
 * caller) and constants (held by the session) are counted apart.
 */
import type { DType, Graph, Tensor } from './graph.js';
import { requiredSubgraph } from './onnx.js';

const BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1, uint8: 1 };

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
