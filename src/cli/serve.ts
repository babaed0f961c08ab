import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { numberFlag, stringFlag } from './common.js';
import { sidecarPath } from '../model/weights.js';
import { startStaticServer, type StaticServer } from '../io/static_server.js';

const help = `Usage: retinanet serve [--weights W] [--port 8080] [--host 127.0.0.1]

Serves the web app on this machine: detect in the browser tab (drop or pick images, boxes
with class names and scores, a score slider, COCO results JSON to download) and fine-tune
the model there on a small labelled set (a COCO/VOC/CSV/YOLO folder or zip chosen in the
page, or boxes drawn by hand on a few images), with a live loss curve, then download the
weights (safetensors + .json sidecar, which 'retinanet detect --weights' reads). Everything runs in the browser (onnxruntime-web:
WebGPU when offered, else WebAssembly, multi-threaded: the server sends the COOP/COEP
headers); the server only hands out its own files and the weights given.

Options:
  --weights W      a safetensors file (its FILE.json sidecar is served with it) to load at
                   start; without it, the page asks for one
  --port N         port (default 8080; 0: any free port)
  --host H         address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens
                   the app to the network)
  --quiet          print only the address

The app and the bundle come from dist/browser (npm run build:browser). Ctrl-C stops.`;

/** dist/browser beside this command's compiled file (dist/src/cli/serve.js). */
export function browserDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../browser');
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * Starts the app's server (for the command and tests): dist/browser at `/`, the weights at
 * `/model/model.safetensors` and their sidecar at `/model/model.json`.
 */
export async function startServe(opts: { weights?: string; port?: number; host?: string; onRequest?: (method: string, url: string, status: number) => void }): Promise<StaticServer> {
  const dir = browserDir();
  if (!existsSync(path.join(dir, 'index.html')) || !existsSync(path.join(dir, 'retinanet.js'))) {
    throw new UserError(`the web app is not built (${dir} lacks index.html or retinanet.js): run npm run build:browser`);
  }
  const files: Record<string, string> = {};
  if (opts.weights !== undefined) {
    if (!existsSync(opts.weights) || !statSync(opts.weights).isFile()) throw new UserError(`--weights ${opts.weights}: no such file`);
    if (!opts.weights.endsWith('.safetensors')) throw new UserError(`--weights ${opts.weights}: serve takes a .safetensors file (with its .json sidecar beside it)`);
    files['/model/model.safetensors'] = path.resolve(opts.weights);
    const sidecar = sidecarPath(opts.weights);
    if (existsSync(sidecar)) files['/model/model.json'] = path.resolve(sidecar);
  }
  try {
    return await startStaticServer({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080, folders: [{ prefix: '/', dir }], files, onRequest: opts.onRequest });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UserError(`port ${opts.port ?? 8080} is in use: choose another with --port`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UserError(`--host ${opts.host}: not an address of this machine`);
    throw err;
  }
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { weights: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, quiet: { type: 'boolean' } } });
  const port = numberFlag(values, 'port', { integer: true, min: 0, max: 65535 }) ?? 8080;
  const host = stringFlag(values, 'host') ?? '127.0.0.1';
  const server = await startServe({ weights: stringFlag(values, 'weights'), port, host });
  process.stdout.write(`${server.url}\n`);
  if (!values.quiet) {
    if (!LOOPBACK.has(host)) process.stderr.write(`warning: --host ${host} serves the app to other machines too\n`);
    process.stderr.write('serving the web app; Ctrl-C stops\n');
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return 0;
}

export const serveCommand: Command = { name: 'serve', summary: 'serve the web app: detect and fine-tune in the browser', help, run };
