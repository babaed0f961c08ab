import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { stringFlag } from '../core/flags.js';
import { checkOutputFile } from '../core/output.js';
import { ProgressBar } from './progress.js';
import type { DownloadProgress } from '../io/download.js';
import { DownloadError } from '../io/download.js';
import {
  PRETRAINED, type PretrainedEntry, type WeightsLocation, cachePretrained, fetchWeights, identifyPretrained,
  importWeights, isWeightsUrl, locateWeights, weightsHome,
} from '../model/pretrained.js';

const help = `Usage: retinanet weights list
       retinanet weights get NAME|URL [--sha256 HEX] [--quiet]
       retinanet weights import FILE [--out FILE.safetensors] [--key K] [--strip-prefix P]

Named weights are torchvision's published checkpoints: RetinaNet on COCO (whole detectors,
for --weights) and ImageNet ResNets (for train --backbone-weights). Any flag that takes
weights accepts a NAME: it is downloaded on first use, checked against the SHA-256 prefix in
its published file name, converted to safetensors once and cached.

Commands:
  list                 the named weights, and which are in the cache
  get NAME|URL         download and convert now (a URL: any torch.save checkpoint or
                       safetensors file); prints the cached file
  import FILE          convert a PyTorch checkpoint (.pth/.pt, zip or legacy torch.save format)
                       to safetensors, names, shapes and dtypes kept: torchvision loads the
                       result unchanged (safetensors.torch.load_file + load_state_dict)

Options:
  --sha256 HEX         get: the expected SHA-256 (whole or a prefix), for URLs whose file
                       name carries none
  --out FILE           import: where to write (default: beside FILE, .safetensors). Without
                       --out, a file that is one of the named checkpoints (told by its SHA-256,
                       e.g. downloaded by hand) goes into the cache, so that its NAME works
  --key K              import: the entry of a wrapper dict holding the state_dict (default:
                       the top level, or state_dict, model_state_dict, model, module)
  --strip-prefix P     import: remove P from every name (module. for DataParallel checkpoints)
  --quiet              no progress bar

Cache: $RETINANET_HOME/weights (default ~/.cache/retinanet-ts/weights). A base URL in
RETINANET_WEIGHTS_MIRROR replaces the published location (files are fetched as
MIRROR/<file name>). Offline, download the URL that 'list' shows elsewhere and run
'retinanet weights import <file>'.`;

/** A download progress bar in megabytes on stderr (plain lines when not a terminal). */
export function downloadProgress(label: string, quiet: boolean): { onProgress: (p: DownloadProgress) => void; done: () => void } {
  let bar: ProgressBar | undefined;
  let lastPlain = 0;
  return {
    onProgress: (p) => {
      if (quiet) return;
      if (p.total === undefined) {
        // No announced size: a line every 10 MB.
        if (p.received - lastPlain >= 10e6) {
          lastPlain = p.received;
          process.stderr.write(`${label}: ${(p.received / 1e6).toFixed(0)} MB\n`);
        }
        return;
      }
      const total = Math.max(1, Math.ceil(p.total / 1e6));
      bar ??= new ProgressBar(total, `${label} MB`);
      bar.update(p.received >= p.total ? total : Math.floor(p.received / 1e6));
    },
    done: () => bar?.done(),
  };
}

/**
 * Fetches a named checkpoint or URL into the cache with a progress bar (nothing printed when
 * it is cached already); Ctrl-C stops the download, leaving nothing in the cache.
 */
export async function fetchWithProgress(spec: string, quiet: boolean, sha256?: string): Promise<{ loc: WeightsLocation; fetched: boolean }> {
  const loc = locateWeights(spec);
  const cached = existsSync(loc.file);
  if (!cached && !quiet) process.stderr.write(`downloading ${loc.name} from ${loc.url} (into ${path.dirname(loc.file)})\n`);
  const progress = downloadProgress(loc.name, quiet);
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const got = await fetchWeights(spec, { onProgress: progress.onProgress, signal: ac.signal, sha256 });
    return { loc, fetched: got.fetched };
  } finally {
    progress.done();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function kindText(e: PretrainedEntry): string {
  return e.kind === 'retinanet' ? 'detector' : 'backbone';
}

function list(): number {
  const home = path.join(weightsHome(), 'weights');
  const width = Math.max(...PRETRAINED.map((e) => e.name.length));
  const lines = PRETRAINED.map((e) => {
    const cached = existsSync(locateWeights(e.name).file) ? 'cached' : '      ';
    return `  ${e.name.padEnd(width)}  ${kindText(e).padEnd(8)}  ${cached}  ${e.description}\n  ${' '.repeat(width)}  ${' '.repeat(8)}  ${' '.repeat(6)}  ${e.url}`;
  });
  process.stdout.write(`${lines.join('\n')}\n\ncache: ${home}\ndetectors: --weights NAME (detect, eval, train); backbones: train --backbone-weights NAME\n`);
  return 0;
}

async function get(positionals: string[], values: Record<string, string | boolean | undefined>): Promise<number> {
  const [spec, ...extra] = positionals;
  if (!spec || extra.length > 0) throw new UserError(`weights get takes one NAME or URL\n\n${help}`);
  const sha256 = stringFlag(values, 'sha256')?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{1,64}$/.test(sha256)) throw new UserError(`--sha256 must be hex digits (a SHA-256 or a prefix of one), got '${sha256}'`);
  if (!isWeightsUrl(spec) && !PRETRAINED.some((e) => e.name === spec)) {
    throw new UserError(`unknown weights name '${spec}'; named weights: ${PRETRAINED.map((e) => e.name).join(', ')} (or an http(s) URL)`);
  }
  try {
    const { loc, fetched } = await fetchWithProgress(spec, values['quiet'] === true, sha256);
    if (!fetched && values['quiet'] !== true) process.stderr.write(`${loc.name} is in the cache already\n`);
    if (fetched && loc.sha256Prefix === undefined && sha256 === undefined) process.stderr.write(`note: ${loc.fileName} carries no SHA-256 prefix and no --sha256 was given: the download was not checked\n`);
    process.stdout.write(`${loc.file}\n`);
    return 0;
  } catch (err) {
    if (err instanceof DownloadError && err.reason === 'aborted') {
      process.stderr.write('interrupted; nothing was kept in the cache\n');
      return 130;
    }
    throw err;
  }
}

async function importCommand(positionals: string[], values: Record<string, string | boolean | undefined>): Promise<number> {
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UserError(`weights import takes one FILE\n\n${help}`);
  if (!existsSync(file)) throw new UserError(`${file} not found`);
  const key = stringFlag(values, 'key');
  const stripPrefix = stringFlag(values, 'strip-prefix');
  const out = stringFlag(values, 'out');
  if (out !== undefined) {
    if (!out.endsWith('.safetensors')) throw new UserError(`--out must name a .safetensors file, got '${out}'`);
    checkOutputFile(out, '--out');
    if (path.resolve(out) === path.resolve(file)) throw new UserError('--out must differ from the input file');
  }
  const known = await identifyPretrained(file);
  if (out === undefined && known && key === undefined && stripPrefix === undefined) {
    const got = await cachePretrained(file);
    process.stdout.write(`${file} is ${known.entry.name} (SHA-256 ${known.sha256.slice(0, 8)}...): cached as ${got!.file}; use it as ${known.entry.kind === 'retinanet' ? '--weights' : '--backbone-weights'} ${known.entry.name}\n`);
    return 0;
  }
  const target = out ?? file.replace(/\.(pth|pt|ckpt|bin|tar)$/i, '') + '.safetensors';
  if (out === undefined) {
    if (path.resolve(target) === path.resolve(file)) throw new UserError(`give --out: ${file} is a safetensors file already`);
    checkOutputFile(target, '--out');
  }
  const sidecar = known?.entry.sidecar?.();
  const r = await importWeights(file, target, { key, stripPrefix, sidecar });
  const what = r.format === 'safetensors' ? 'safetensors file' : `${r.format} torch.save checkpoint`;
  const skipped = r.skipped.length > 0 ? ` (left out ${r.skipped.length} non-tensor entr${r.skipped.length === 1 ? 'y' : 'ies'}: ${r.skipped.slice(0, 5).join(', ')})` : '';
  process.stdout.write(`${r.tensors} tensors from the ${what} ${file} written to ${r.out}${skipped}\n`);
  if (r.sidecar) process.stdout.write(`recognised as ${known!.entry.name}: its config and class names are in ${r.sidecar}\n`);
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      sha256: { type: 'string' },
      out: { type: 'string' },
      key: { type: 'string' },
      'strip-prefix': { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  const [sub, ...rest] = positionals;
  const only = (allowed: string[]): void => {
    const given = Object.keys(values).filter((k) => values[k as keyof typeof values] !== undefined && !allowed.includes(k));
    if (given.length > 0) throw new UserError(`weights ${sub}: ${given.map((f) => `--${f}`).join(', ')} does not apply (see --help)`);
  };
  switch (sub) {
    case 'list':
      only([]);
      if (rest.length > 0) throw new UserError('weights list takes no arguments');
      return list();
    case 'get':
      only(['sha256', 'quiet']);
      return get(rest, values);
    case 'import':
      only(['out', 'key', 'strip-prefix']);
      return importCommand(rest, values);
    case undefined:
      throw new UserError(`give a subcommand: list, get or import\n\n${help}`);
    default:
      throw new UserError(`unknown subcommand '${sub}' (list, get, import)\n\n${help}`);
  }
}

export const weightsCommand: Command = { name: 'weights', summary: 'named pretrained weights (download, cache) and .pth import', help, run };
