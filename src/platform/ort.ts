/** ONNX Runtime on Node: onnxruntime-node (native, CPU). Browser twin: ort.browser.ts. */
import ortNode from 'onnxruntime-node';
import type { OrtPlatform } from './types.js';

export const ort: OrtPlatform = {
  name: 'onnxruntime-node',
  InferenceSession: ortNode.InferenceSession,
  Tensor: ortNode.Tensor,
  nchwcKernels: true,
  env: ortNode.env,
  sessionOptions: () => ({}),
};
