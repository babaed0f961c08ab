/**
 * The HTTP server behind `retinanet serve`: serves a fixed set of folders and files (nothing
 * else), with the headers that make a page cross-origin isolated (COOP/COEP, so that
 * onnxruntime-web may use WebAssembly threads). Paths that leave a served folder (`..`, encoded
 * slashes, symbolic links pointing out) are refused with 403; only GET and HEAD are answered.
 */
import { createReadStream, realpathSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/** A URL prefix served from a folder: `/app/x.js` -> `<dir>/x.js` for prefix `/app/`. */
export interface FolderMount {
  /** URL prefix, starting and ending with '/'. */
  prefix: string;
  dir: string;
}

export interface StaticServerOptions {
  /** Address to bind (default 127.0.0.1: this machine only). */
  host?: string;
  /** Port (default 8080; 0: any free port). */
  port?: number;
  /** Folders served under URL prefixes; the longest matching prefix wins. */
  folders: readonly FolderMount[];
  /** Single files served at exact URL paths (e.g. `/model/model.safetensors`). */
  files?: Readonly<Record<string, string>>;
  /** Called once per request answered: method, URL path, status. */
  onRequest?: (method: string, urlPath: string, status: number) => void;
}

export interface StaticServer {
  /** `http://host:port/` */
  url: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers on every answer: cross-origin isolation, and nothing cached or sniffed. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/** Whether `file` (absolute, symbolic links resolved) lies inside `dir` (likewise). */
function inside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

type Resolved = { file: string } | { status: 403 | 404 };

/** The file a URL path names, or why not. */
export function resolveRequest(urlPath: string, opts: Pick<StaticServerOptions, 'folders' | 'files'>): Resolved {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { status: 403 };
  }
  // Encoded separators, NUL and backslashes never name one of our files.
  if (decoded.includes('\0') || decoded.includes('\\') || /%2f|%5c/i.test(urlPath)) return { status: 403 };
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return { status: 403 };
  const single = opts.files?.[decoded];
  if (single !== undefined) return { file: single };
  const mount = [...opts.folders].sort((a, b) => b.prefix.length - a.prefix.length).find((m) => decoded.startsWith(m.prefix));
  if (!mount) return { status: 404 };
  let rel = decoded.slice(mount.prefix.length);
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  let root: string;
  try {
    root = realpathSync(mount.dir);
  } catch {
    return { status: 404 };
  }
  const candidate = path.resolve(root, rel);
  if (!inside(root, candidate)) return { status: 403 };
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    return { status: 404 };
  }
  // A symbolic link inside the folder that points out of it is refused.
  if (!inside(root, real)) return { status: 403 };
  return { file: real };
}

/** Starts serving; resolves once listening. */
export function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const urlPath = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
    const answer = (status: number, text: string): void => {
      res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(method === 'HEAD' ? undefined : text);
      opts.onRequest?.(method, urlPath, status);
    };
    if (method !== 'GET' && method !== 'HEAD') return answer(405, 'only GET and HEAD');
    const resolved = resolveRequest(urlPath, opts);
    if ('status' in resolved) return answer(resolved.status, resolved.status === 403 ? 'forbidden' : 'not found');
    let size: number;
    try {
      const st = statSync(resolved.file);
      if (!st.isFile()) return answer(404, 'not found');
      size = st.size;
    } catch {
      return answer(404, 'not found');
    }
    res.writeHead(200, {
      ...ISOLATION_HEADERS,
      'Content-Type': TYPES[path.extname(resolved.file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': String(size),
    });
    opts.onRequest?.(method, urlPath, 200);
    if (method === 'HEAD') return res.end();
    createReadStream(resolved.file).on('error', () => res.destroy()).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const host = opts.host ?? '127.0.0.1';
      const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      resolve({
        url: `http://${shown}:${port}/`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
