/**
 * Where the networks run in a browser: WebGPU when the browser offers an adapter, else
 * WebAssembly, multi-threaded when the page is cross-origin isolated (COOP/COEP headers, which
 * give it SharedArrayBuffer) and single-threaded otherwise. Chosen once, before the first
 * session: onnxruntime-web fixes its WebAssembly thread pool then.
 */
import { setDecoderWasmBase } from '../platform/image.browser.js';
import { ort, setExecutionProviders } from '../platform/ort.browser.js';

export type ExecutionProvider = 'webgpu' | 'wasm';

/** How to choose the backend; every field is optional. */
export interface BackendOptions {
  /** 'auto' (default): WebGPU when the browser offers an adapter, else WebAssembly. */
  executionProvider?: 'auto' | ExecutionProvider;
  /** WebAssembly threads (default: every core when the page is cross-origin isolated, else 1). */
  threads?: number;
  /**
   * URL of the folder holding onnxruntime-web's `.wasm`/`.mjs` files and the image decoders'
   * `.wasm` files (default: the folder of the bundle).
   */
  wasmPaths?: string;
}

/** The backend in use, as chosen by {@link initBackend}. */
export interface Backend {
  executionProvider: ExecutionProvider;
  /** WebAssembly threads (kernels WebGPU does not run run there). */
  threads: number;
  /** Whether the page is cross-origin isolated (needed for threads). */
  crossOriginIsolated: boolean;
  /** Whether the browser offered a WebGPU adapter. */
  webgpuAvailable: boolean;
  /** One line for people: "WebAssembly, 4 threads (cross-origin isolated)". */
  description: string;
}

let chosen: Promise<Backend> | undefined;

async function webgpuAdapter(): Promise<boolean> {
  const gpu = (globalThis.navigator as (Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }) | undefined)?.gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

async function choose(opts: BackendOptions): Promise<Backend> {
  const base = opts.wasmPaths ?? new URL('./', import.meta.url).href;
  const withSlash = base.endsWith('/') ? base : `${base}/`;
  ort.env.wasm.wasmPaths = withSlash;
  setDecoderWasmBase(withSlash);
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  const threads = isolated ? Math.max(1, Math.floor(opts.threads ?? cores)) : 1;
  ort.env.wasm.numThreads = threads;
  const want = opts.executionProvider ?? 'auto';
  const webgpuAvailable = want === 'wasm' ? false : await webgpuAdapter();
  if (want === 'webgpu' && !webgpuAvailable) throw new Error('WebGPU was asked for, but this browser offers no WebGPU adapter');
  const executionProvider: ExecutionProvider = webgpuAvailable ? 'webgpu' : 'wasm';
  // Kernels WebGPU lacks fall back to WebAssembly.
  setExecutionProviders(executionProvider === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm']);
  const wasm = `${threads} WebAssembly thread${threads === 1 ? '' : 's'}`;
  const why = isolated ? 'cross-origin isolated' : 'not cross-origin isolated: single-threaded';
  const description = executionProvider === 'webgpu' ? `WebGPU (falling back to ${wasm}; ${why})` : `WebAssembly, ${wasm.replace(' WebAssembly', '')} (${why})`;
  return { executionProvider, threads, crossOriginIsolated: isolated, webgpuAvailable, description };
}

/**
 * Chooses the backend (once: later calls return the first choice, whatever their options).
 * Models call it before their first session; call it first to choose differently.
 */
export function initBackend(opts: BackendOptions = {}): Promise<Backend> {
  chosen ??= choose(opts);
  return chosen;
}
