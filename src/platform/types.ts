/**
 * The platform interface: what the library needs from the machine it runs on, with a Node side
 * (the default modules: `ort.ts`, `files.ts`, `image.ts`, `system.ts`) and a browser side (their
 * `*.browser.ts` twins, which a browser bundle swaps in through the `browser` field of
 * package.json). Everything above this folder reaches ONNX Runtime, files, image decoding and the
 * machine's facts through these modules only, so that no Node module is reachable from the
 * browser bundle (docs/browser.md).
 */
import type { Env, InferenceSession, Tensor } from 'onnxruntime-common';

/** ONNX Runtime's JavaScript API as the engine uses it: onnxruntime-node in Node, onnxruntime-web in a browser. */
export interface OrtPlatform {
  /** 'onnxruntime-node' or 'onnxruntime-web'. */
  readonly name: string;
  readonly InferenceSession: typeof InferenceSession;
  readonly Tensor: typeof Tensor;
  readonly env: Env;
  /** Whether this build may have ONNX Runtime's `com.microsoft.nchwc` CPU kernels (probed before use: engine/nchwc.ts). */
  readonly nchwcKernels: boolean;
  /** Options every session on this platform is created with (the browser: its execution providers). */
  sessionOptions(): InferenceSession.SessionOptions;
}

/** What {@link PlatformFiles.statSync} says about a path. */
export interface FileStats {
  isFile(): boolean;
  isDirectory(): boolean;
  size: number;
}

/** An entry of a folder listed with `withFileTypes`. */
export interface DirEntry {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
}

/**
 * File access, shaped as the subset of `node:fs` the library uses (Node's own functions on the
 * Node side, so behaviour there is Node's). In a browser: an in-memory file tree the page fills
 * (dropped folders, zips, saved weights), and URLs fetched by `readFile`.
 */
export interface PlatformFiles {
  existsSync(path: string): boolean;
  statSync(path: string): FileStats;
  readdirSync(path: string): string[];
  readFileSync(path: string, encoding: 'utf8'): string;
  readdir(path: string): Promise<string[]>;
  readdir(path: string, options: { withFileTypes: true }): Promise<DirEntry[]>;
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** Writes through a temporary name and a rename: readers never see a half-written file. */
  writeAtomic(path: string, data: Uint8Array | string): Promise<void>;
}

/** Path arithmetic, shaped as the subset of `node:path` the library uses (POSIX in a browser). */
export interface PlatformPath {
  readonly sep: string;
  join(...parts: string[]): string;
  resolve(...parts: string[]): string;
  dirname(p: string): string;
  basename(p: string, suffix?: string): string;
  extname(p: string): string;
  isAbsolute(p: string): boolean;
  relative(from: string, to: string): string;
  normalize(p: string): string;
  parse(p: string): { root: string; dir: string; base: string; ext: string; name: string };
}

/** An image header's facts, read without decoding the pixels. */
export interface ImageHeader {
  width?: number;
  height?: number;
  /** EXIF orientation (1-8), when the file has one. */
  orientation?: number;
}

/** Decoded pixels: interleaved 8-bit RGB, `data.length === 3 * width * height`. */
export interface RgbPixels {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Encodings {@link PlatformImages.encode} writes. */
export type ImageEncoding = 'png' | 'jpeg' | 'webp';

/** Image decoding and encoding (Node: sharp; browser: mozjpeg and png compiled to WebAssembly). */
export interface PlatformImages {
  /** The header of an encoded image; throws when it is not an image this platform reads. */
  header(bytes: Uint8Array): Promise<ImageHeader>;
  /** The header of an image file, reading as little of it as the platform can. */
  fileHeader(file: string): Promise<ImageHeader>;
  /**
   * Decodes to RGB: grey expanded, alpha dropped without compositing, embedded colour profiles
   * ignored, the EXIF orientation applied unless `autoOrient` is false; more than `maxPixels`
   * pixels is an error. Throws the decoder's error; callers wrap it.
   */
  decode(bytes: Uint8Array, options: { maxPixels: number; autoOrient: boolean }): Promise<RgbPixels>;
  /** Encodes interleaved RGB. */
  encode(pixels: RgbPixels, encoding: ImageEncoding): Promise<Uint8Array>;
}

/** Facts about the machine. */
export interface PlatformSystem {
  /** 'node' or 'browser'. */
  readonly name: 'node' | 'browser';
  /** Threads a compute pool uses by default: every core the process may use. */
  defaultThreads(): number;
  /** Bytes of memory of the machine, when the platform says (a browser does not). */
  totalMemory(): number | undefined;
  /** An environment variable (Node); always undefined in a browser. */
  env(name: string): string | undefined;
}
