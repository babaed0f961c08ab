/** The engine: graph builder, ONNX serialization, autodiff and runtime. */
export * from './graph.js';
export * as op from './ops.js';
export { grad, sumTo, differentiableOps } from './autodiff.js';
export { serialize, OPSET, requiredSubgraph } from './onnx.js';
export { Executable, SessionCache, shapeKey, defaultThreads, type RuntimeOptions } from './runtime.js';
export { estimateMemory, tensorBytes, type MemoryEstimate } from './memory.js';
