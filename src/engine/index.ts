/** The engine: graph builder, ONNX serialization, autodiff and runtime. */
export * from './graph.js';
export * as op from './ops.js';
export { grad, sumTo, differentiableOps } from './autodiff.js';
export { serialize, OPSET, requiredSubgraph } from './onnx.js';
export { Executable, SessionCache, shapeKey, defaultThreads, type RuntimeOptions } from './runtime.js';
export { estimateMemory, sessionBytes, tensorBytes, ORT_MEMORY_FACTOR, ORT_SESSION_OVERHEAD, type MemoryEstimate } from './memory.js';
