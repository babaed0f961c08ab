/**
 * Named weights: torchvision's published checkpoints (RetinaNet on COCO, ImageNet ResNets),
 * downloaded on first use from their published URLs (or a mirror) into a cache folder, checked
 * against the SHA-256 prefix torchvision puts in each file name, converted once to safetensors
 * (torchvision names and dtypes kept) and cached. A named RetinaNet comes with its architecture
 * config and class names (a sidecar in the cache), so it loads with no other option.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { writeAtomic } from '../core/atomic.js';
import { type DownloadProgress, DownloadError, downloadFile, sha256File, unmetChecksum } from '../io/download.js';
import { readTensorFile } from '../io/pytorch_file.js';
import { encodeSafetensors } from '../io/safetensors.js';
import type { ResNetDepth } from '../nn/resnet.js';
import { configFor } from './config.js';
import { type ModelSidecar, sidecarPath } from './weights.js';

/**
 * torchvision's COCO category table (`_COCO_CATEGORIES` in torchvision/models/_meta.py): the
 * class name of each label of its 91-class COCO detectors, with '__background__' at 0 and 'N/A'
 * for the ids COCO leaves unused. The label is the COCO category id.
 */
export const COCO_CATEGORIES: readonly string[] = [
  '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'N/A', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant',
  'bear', 'zebra', 'giraffe', 'N/A', 'backpack', 'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
  'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
  'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A', 'toilet',
  'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator',
  'N/A', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
];

/** One named checkpoint. */
export interface PretrainedEntry {
  /** The name flags accept (`retinanet_resnet50_fpn_coco`, `resnet50`). */
  name: string;
  /** A whole detector (`--weights`), or an ImageNet ResNet for a detector's backbone (`--backbone-weights`). */
  kind: 'retinanet' | 'backbone';
  /** Where it is published; the file name carries the first hex digits of its SHA-256. */
  url: string;
  /** One line: what it is and how good. */
  description: string;
  /** A detector's config, class names and category ids (kind 'retinanet'). */
  sidecar?: () => ModelSidecar;
  /** A backbone's ResNet depth (kind 'backbone'). */
  depth?: ResNetDepth;
}

const PUBLISHED = 'https://download.pytorch.org/models';

function cocoDetector(arch: string, bnEps: number): () => ModelSidecar {
  return () => ({
    config: configFor(arch, { numClasses: 91, classNames: [...COCO_CATEGORIES], backbone: { bnEps } }),
    classNames: [...COCO_CATEGORIES],
    categoryIds: COCO_CATEGORIES.map((_, i) => i),
    source: 'torchvision',
  });
}

/** torchvision's checkpoints (URLs as in torchvision 0.14+, models/detection/retinanet.py and models/resnet.py). */
export const PRETRAINED: readonly PretrainedEntry[] = [
  {
    name: 'retinanet_resnet50_fpn_coco',
    kind: 'retinanet',
    url: `${PUBLISHED}/retinanet_resnet50_fpn_coco-eeacb38b.pth`,
    description: 'retinanet_resnet50_fpn on COCO, 91 classes (torchvision COCO_V1: box AP 36.4)',
    // torchvision loads these weights with overwrite_eps(model, 0.0): FrozenBatchNorm eps 0.
    sidecar: cocoDetector('retinanet_resnet50_fpn', 0),
  },
  {
    name: 'retinanet_resnet50_fpn_v2_coco',
    kind: 'retinanet',
    url: `${PUBLISHED}/retinanet_resnet50_fpn_v2_coco-5905b1c5.pth`,
    description: 'retinanet_resnet50_fpn_v2 on COCO, 91 classes (torchvision COCO_V1: box AP 41.5)',
    sidecar: cocoDetector('retinanet_resnet50_fpn_v2', 1e-5),
  },
  { name: 'resnet18', kind: 'backbone', depth: 18, url: `${PUBLISHED}/resnet18-f37072fd.pth`, description: 'ResNet-18 on ImageNet (IMAGENET1K_V1: top-1 69.8%)' },
  { name: 'resnet34', kind: 'backbone', depth: 34, url: `${PUBLISHED}/resnet34-b627a593.pth`, description: 'ResNet-34 on ImageNet (IMAGENET1K_V1: top-1 73.3%)' },
  { name: 'resnet50', kind: 'backbone', depth: 50, url: `${PUBLISHED}/resnet50-0676ba61.pth`, description: 'ResNet-50 on ImageNet (IMAGENET1K_V1: top-1 76.1%; the backbone torchvision\'s RetinaNet starts from)' },
  { name: 'resnet50_v2', kind: 'backbone', depth: 50, url: `${PUBLISHED}/resnet50-11ad3fa6.pth`, description: 'ResNet-50 on ImageNet (IMAGENET1K_V2, newer recipe: top-1 80.9%)' },
  { name: 'resnet101', kind: 'backbone', depth: 101, url: `${PUBLISHED}/resnet101-63fe2227.pth`, description: 'ResNet-101 on ImageNet (IMAGENET1K_V1: top-1 77.4%)' },
  { name: 'resnet101_v2', kind: 'backbone', depth: 101, url: `${PUBLISHED}/resnet101-cd907fc2.pth`, description: 'ResNet-101 on ImageNet (IMAGENET1K_V2, newer recipe: top-1 81.9%)' },
];

/** Where named and URL weights are cached, and where from. */
export interface WeightsCacheOptions {
  /** Cache folder (default {@link weightsHome}); files go to `<home>/weights/`. */
  home?: string;
  /** A base URL that replaces the published location: files are fetched as `<mirror>/<file name>` (default `RETINANET_WEIGHTS_MIRROR`). */
  mirror?: string;
  /** The named checkpoints (default {@link PRETRAINED}); tests give their own. */
  registry?: readonly PretrainedEntry[];
}

/** Options of {@link fetchWeights}. */
export interface FetchWeightsOptions extends WeightsCacheOptions {
  /** Download progress (bytes received, announced total). */
  onProgress?: (p: DownloadProgress) => void;
  /** Stops a download; nothing is left in the cache. */
  signal?: AbortSignal;
  /** Expected SHA-256 (whole or a prefix), checked on top of the prefix in the file name. */
  sha256?: string;
  /** Refuse larger downloads (default 4 GiB). */
  maxBytes?: number;
  /** Give up when no data arrive for this long (ms, default 60 000). */
  idleTimeoutMs?: number;
}

/**
 * The cache folder: `RETINANET_HOME`, else `$XDG_CACHE_HOME/retinanet-ts`, else
 * `~/.cache/retinanet-ts`.
 */
export function weightsHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env['RETINANET_HOME']) return path.resolve(env['RETINANET_HOME']);
  if (env['XDG_CACHE_HOME']) return path.resolve(env['XDG_CACHE_HOME'], 'retinanet-ts');
  return path.join(os.homedir(), '.cache', 'retinanet-ts');
}

/** The names of the named checkpoints. */
export function pretrainedNames(registry: readonly PretrainedEntry[] = PRETRAINED): string[] {
  return registry.map((e) => e.name);
}

/** The named checkpoint called `name`, if any. */
export function findPretrained(name: string, registry: readonly PretrainedEntry[] = PRETRAINED): PretrainedEntry | undefined {
  return registry.find((e) => e.name === name);
}

/** Whether `spec` is a URL that {@link fetchWeights} downloads. */
export function isWeightsUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/**
 * The hex digits of a SHA-256 prefix in a checkpoint's file name, torch.hub's convention
 * (`resnet50-0676ba61.pth` -> `0676ba61`), or undefined.
 */
export function sha256PrefixOf(fileName: string): string | undefined {
  return /-([0-9a-f]{8,64})\.[A-Za-z0-9.]+$/.exec(path.basename(fileName))?.[1];
}

/** Where a named or URL checkpoint comes from and where it is cached. */
export interface WeightsLocation {
  /** The name given, or the file name of a URL. */
  name: string;
  /** The named checkpoint (also for a URL whose file name is a named checkpoint's). */
  entry: PretrainedEntry | undefined;
  /** Where it is downloaded from (the mirror when one is set). */
  url: string;
  /** The file name as published (`resnet50-0676ba61.pth`). */
  fileName: string;
  /** The SHA-256 prefix in the file name, when there is one. */
  sha256Prefix: string | undefined;
  /** The cached safetensors file. */
  file: string;
  /** Where a downloaded (or hand-placed) checkpoint waits for its conversion. */
  download: string;
}

function fileNameOfUrl(url: string): string {
  let name: string;
  try {
    name = decodeURIComponent(path.posix.basename(new URL(url).pathname));
  } catch {
    throw new InputError(`${url} is not a valid URL`);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$/.test(name)) throw new InputError(`${url}: cannot cache a file named '${name}' (expected a name like resnet50-0676ba61.pth)`);
  return name;
}

/**
 * Where the checkpoint `spec` (a name of the registry, or an http(s) URL) is downloaded from
 * and cached; no network. Throws InputError for an unknown name.
 */
export function locateWeights(spec: string, opts: WeightsCacheOptions = {}): WeightsLocation {
  const registry = opts.registry ?? PRETRAINED;
  let entry: PretrainedEntry | undefined;
  let url: string;
  if (isWeightsUrl(spec)) {
    url = spec;
    const fileName = fileNameOfUrl(url);
    entry = registry.find((e) => fileNameOfUrl(e.url) === fileName);
  } else {
    entry = findPretrained(spec, registry);
    if (!entry) throw new InputError(`unknown weights name '${spec}'; named weights: ${pretrainedNames(registry).join(', ')} (or give a file or an http(s) URL)`);
    url = entry.url;
  }
  const fileName = fileNameOfUrl(url);
  const mirror = opts.mirror ?? process.env['RETINANET_WEIGHTS_MIRROR'];
  if (mirror && !isWeightsUrl(spec)) url = `${mirror.replace(/\/+$/, '')}/${fileName}`;
  const dir = path.join(opts.home ?? weightsHome(), 'weights');
  const stem = fileName.replace(/\.(pth|pt|ckpt|bin|tar|safetensors)$/i, '');
  return {
    name: entry?.name ?? fileName,
    entry,
    url,
    fileName,
    sha256Prefix: sha256PrefixOf(fileName),
    file: path.join(dir, `${stem}.safetensors`),
    download: path.join(dir, fileName.endsWith('.safetensors') ? `${fileName}.download` : fileName),
  };
}

/** The named checkpoint a file is, told by its SHA-256 against the prefixes in the published file names. */
export async function identifyPretrained(file: string, registry: readonly PretrainedEntry[] = PRETRAINED): Promise<{ entry: PretrainedEntry; sha256: string } | undefined> {
  const digest = await sha256File(file);
  const entry = registry.find((e) => {
    const prefix = sha256PrefixOf(e.url);
    return prefix !== undefined && digest.startsWith(prefix);
  });
  return entry ? { entry, sha256: digest } : undefined;
}

/** Options of {@link importWeights}. */
export interface ImportOptions {
  /** The entry of a wrapper dict holding the state_dict (PyTorch checkpoints; default: found). */
  key?: string;
  /** Removed from the start of every name (`module.` for DataParallel checkpoints). */
  stripPrefix?: string;
  /** Written beside the result (`x.safetensors` -> `x.json`): a detector's config and class names. */
  sidecar?: ModelSidecar;
  /** Extra safetensors metadata. */
  metadata?: Record<string, string>;
}

/** What {@link importWeights} wrote. */
export interface ImportResult {
  out: string;
  /** The input's format. */
  format: 'safetensors' | 'zip' | 'legacy';
  tensors: number;
  /** Non-tensor entries of the state_dict that were left out. */
  skipped: string[];
  /** The sidecar written, if any. */
  sidecar?: string;
}

/**
 * Converts a PyTorch checkpoint (or a safetensors file) to safetensors: every tensor of the
 * state_dict with its name, shape and dtype, bytes unchanged (so torch's
 * `safetensors.torch.load_file` gives back the same state_dict, `num_batches_tracked` included).
 * The sidecar, when given, is written first; each file atomically.
 */
export async function importWeights(src: string, out: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const st = await readTensorFile(src, { keepF64: true, key: opts.key, stripPrefix: opts.stripPrefix });
  if (st.tensors.size === 0) throw new InputError(`${src} holds no tensors`);
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  let sidecar: string | undefined;
  if (opts.sidecar) {
    sidecar = sidecarPath(out);
    await writeAtomic(sidecar, JSON.stringify(opts.sidecar, null, 2) + '\n');
  }
  await writeAtomic(out, encodeSafetensors(st.tensors, { format: 'pt', source: path.basename(src), ...opts.metadata }));
  return { out, format: st.format, tensors: st.tensors.size, skipped: 'skipped' in st ? [...(st.skipped as string[])] : [], sidecar };
}

/** A checkpoint in the cache, ready to load. */
export interface FetchedWeights extends WeightsLocation {
  /** Whether it was downloaded (or converted) by this call, rather than found converted in the cache. */
  fetched: boolean;
}

async function writeEntrySidecar(loc: WeightsLocation): Promise<void> {
  const make = loc.entry?.sidecar;
  if (make && !existsSync(sidecarPath(loc.file))) await writeAtomic(sidecarPath(loc.file), JSON.stringify(make(), null, 2) + '\n');
}

/** The one-line advice of an error a download ended with, for doing it by hand. */
function byHand(loc: WeightsLocation): string {
  return `download ${loc.url} by hand (elsewhere if need be) and run 'retinanet weights import ${loc.fileName}', which puts it in the cache; or set RETINANET_WEIGHTS_MIRROR to a base URL that serves ${loc.fileName}`;
}

/**
 * The cached safetensors file of a named checkpoint or URL, downloading and converting it on
 * first use: `<home>/weights/<file name>` is downloaded (streamed to a temporary file, hashed
 * on the way, checked against the file name's SHA-256 prefix and `sha256`, renamed on success),
 * converted to `<stem>.safetensors` (+ a `.json` sidecar for a named detector) and removed.
 * A checkpoint put in `<home>/weights/` by hand under its published name is checked and
 * converted the same way. Failures leave nothing in the cache; network failures say how to
 * get the file by hand. Prints nothing: progress goes to `onProgress`.
 */
export async function fetchWeights(spec: string, opts: FetchWeightsOptions = {}): Promise<FetchedWeights> {
  const loc = locateWeights(spec, opts);
  if (existsSync(loc.file)) {
    if (opts.sha256 !== undefined) {
      // The download's digest is recorded in the converted file's metadata.
      const recorded = (await readSafetensorsMetadata(loc.file))['sha256'];
      if (recorded !== undefined && unmetChecksum(recorded, [opts.sha256]) !== undefined) {
        throw new InputError(`${loc.file} was converted from a download with SHA-256 ${recorded}, not one starting with ${opts.sha256.toLowerCase()}`);
      }
    }
    await writeEntrySidecar(loc);
    return { ...loc, fetched: false };
  }
  const expected = [loc.sha256Prefix, opts.sha256].filter((s): s is string => s !== undefined);
  let digest: string;
  if (existsSync(loc.download)) {
    // A file put in the cache by hand: check it like a download.
    digest = await sha256File(loc.download);
    const unmet = unmetChecksum(digest, expected);
    if (unmet !== undefined) {
      await rm(loc.download, { force: true });
      throw new InputError(`${loc.download} does not have the expected checksum (SHA-256 ${digest}, expected one starting with ${unmet}); it was removed`);
    }
  } else {
    try {
      ({ sha256: digest } = await downloadFile(loc.url, loc.download, { sha256: expected, onProgress: opts.onProgress, signal: opts.signal, maxBytes: opts.maxBytes, idleTimeoutMs: opts.idleTimeoutMs }));
    } catch (err) {
      if (err instanceof DownloadError && (err.reason === 'network' || err.reason === 'timeout' || (err.reason === 'http' && !opts.mirror && !process.env['RETINANET_WEIGHTS_MIRROR']))) {
        throw new DownloadError(`${err.message}. To get ${loc.name} without this connection: ${byHand(loc)}`, err.url, err.reason);
      }
      throw err;
    }
  }
  try {
    // Written atomically: another process converting the same download at once is harmless.
    await importWeights(loc.download, loc.file, {
      sidecar: loc.entry?.sidecar?.(),
      metadata: { url: isWeightsUrl(spec) ? spec : (loc.entry?.url ?? loc.url), sha256: digest, ...(loc.entry ? { name: loc.entry.name } : {}) },
    });
  } catch (err) {
    if (existsSync(loc.file)) return { ...loc, fetched: true };
    throw err;
  } finally {
    // Converted or not convertible: nothing but the converted file stays.
    await rm(loc.download, { force: true });
  }
  return { ...loc, fetched: true };
}

/** The `__metadata__` of a safetensors file, reading only its header. */
async function readSafetensorsMetadata(file: string): Promise<Record<string, string>> {
  const fh = await open(file, 'r');
  try {
    const head = new Uint8Array(8);
    await fh.read(head, 0, 8, 0);
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (!(n > 0 && n < 100_000_000)) return {};
    const json = new Uint8Array(n);
    await fh.read(json, 0, n, 8);
    const header = JSON.parse(new TextDecoder().decode(json)) as { __metadata__?: Record<string, string> };
    return header.__metadata__ ?? {};
  } catch {
    return {};
  } finally {
    await fh.close();
  }
}

/** Options of {@link resolveWeights}. */
export interface ResolveWeightsOptions extends FetchWeightsOptions {
  /** Called before a named checkpoint is downloaded (not when it is cached). */
  onDownload?: (loc: WeightsLocation) => void;
}

/**
 * The file behind a weights argument: an existing file as it is; else a named checkpoint or an
 * http(s) URL, fetched into the cache on first use ({@link fetchWeights}). Throws InputError
 * for anything else, naming the named checkpoints.
 */
export async function resolveWeights(spec: string, opts: ResolveWeightsOptions = {}): Promise<{ file: string; entry?: PretrainedEntry }> {
  if (existsSync(spec)) return { file: spec };
  const registry = opts.registry ?? PRETRAINED;
  if (!isWeightsUrl(spec) && !findPretrained(spec, registry)) {
    throw new InputError(`${spec} not found: neither a file nor named weights (${pretrainedNames(registry).join(', ')}) nor an http(s) URL`);
  }
  const loc = locateWeights(spec, opts);
  if (!existsSync(loc.file)) opts.onDownload?.(loc);
  const got = await fetchWeights(spec, opts);
  return { file: got.file, entry: got.entry };
}

/**
 * Puts a checkpoint downloaded by hand into the cache, if it is one of the named checkpoints
 * (told by its SHA-256): converted to the cached safetensors (+ sidecar), so that its name works
 * from then on. Returns undefined, writing nothing, for any other file.
 */
export async function cachePretrained(file: string, opts: WeightsCacheOptions = {}): Promise<FetchedWeights | undefined> {
  const known = await identifyPretrained(file, opts.registry ?? PRETRAINED);
  if (!known) return undefined;
  const loc = locateWeights(known.entry.name, opts);
  await mkdir(path.dirname(loc.file), { recursive: true });
  await importWeights(file, loc.file, { sidecar: known.entry.sidecar?.(), metadata: { url: known.entry.url, sha256: known.sha256, name: known.entry.name } });
  return { ...loc, fetched: true };
}
