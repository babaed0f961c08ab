/** The engine: graph builder, ONNX serialization, autodiff and runtime. */
export * from './graph.js';
export * as op from './ops.js';
export { grad, sumTo, differentiableOps } from './autodiff.js';
export { serialize, OPSET, MIN_OPSET, MAX_OPSET, requiredSubgraph, readMetadata, type SerializeOptions } from './onnx.js';
export { Executable, SessionCache, OnnxSession, shapeKey, defaultThreads, nchwcBlockSize, type RuntimeOptions, type ShapedArray } from './runtime.js';
export { planQdq, observers, rewriteQdq, activationParams, quantizeWeights, type QdqPlan, type ActivationRange, type PlanOptions } from './quantize.js';
export { estimateMemory, sessionBytes, tensorBytes, ORT_MEMORY_FACTOR, ORT_SESSION_OVERHEAD, type MemoryEstimate } from './memory.js';
