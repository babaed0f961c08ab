/**
 * ONNX Runtime in a browser: onnxruntime-web (WebAssembly, multi-threaded when the page is
 * cross-origin isolated; WebGPU where the browser offers it). Node twin: ort.ts. Which execution
 * providers sessions get is chosen once by the web layer (src/web/backend.ts).
 */
import * as ortWeb from 'onnxruntime-web';
import type { OrtPlatform } from './types.js';

let providers: readonly string[] = ['wasm'];

/** Sets the execution providers every session created from now on asks for, in order of preference. */
export function setExecutionProviders(names: readonly string[]): void {
  providers = [...names];
}

export const ort: OrtPlatform = {
  name: 'onnxruntime-web',
  InferenceSession: ortWeb.InferenceSession,
  Tensor: ortWeb.Tensor,
  nchwcKernels: false,
  env: ortWeb.env,
  sessionOptions: () => ({ executionProviders: [...providers] }),
};
