/**
 * Downloads a file over HTTP(S) with Node's fetch: streamed to a temporary file beside the
 * destination while its SHA-256 is computed, checked (size, checksum), then renamed into place.
 * A failed, refused, interrupted or aborted download leaves nothing behind, and the destination
 * only ever appears complete and verified.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/errors.js';

/** Why a download failed. */
export type DownloadFailure = 'network' | 'http' | 'size' | 'interrupted' | 'checksum' | 'aborted' | 'timeout';

/** A download that did not complete; nothing was left at the destination. */
export class DownloadError extends InputError {
  override name = 'DownloadError';
  constructor(
    message: string,
    readonly url: string,
    readonly reason: DownloadFailure,
  ) {
    super(message);
  }
}

/** Progress of a download: bytes received so far, and the announced total when the server gave one. */
export interface DownloadProgress {
  received: number;
  total: number | undefined;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /**
   * Expected SHA-256 hex digests, each whole or a prefix (torchvision names its files with the
   * first 8 hex digits): the file is kept only when its digest starts with every one.
   */
  sha256?: readonly string[];
  /** Refuse a larger file, whether announced (Content-Length) or received (default 4 GiB). */
  maxBytes?: number;
  /** Called as data arrive (at most every 64 KiB received) and once at the end. */
  onProgress?: (p: DownloadProgress) => void;
  /** Stops the download; the temporary file is removed. */
  signal?: AbortSignal;
  /** Give up when no data arrive for this long, in milliseconds (default 60 000). */
  idleTimeoutMs?: number;
}

/** A finished download. */
export interface Downloaded {
  /** The file's SHA-256, hex. */
  sha256: string;
  bytes: number;
}

/** The default bound on a download's size. */
export const MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;

const PART = '.part';

/** The temporary name of a download of `dest` by this process. */
function partName(dest: string): string {
  return `${dest}.${process.pid}.${Math.random().toString(36).slice(2, 10)}${PART}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files of downloads of `dest` whose process is gone (killed mid-download). */
async function removeStaleParts(dest: string): Promise<void> {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(`${base}.`) || !n.endsWith(PART)) continue;
    const pid = Number(n.slice(base.length + 1).split('.')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) await rm(path.join(dir, n), { force: true });
  }
}

/** The hex digest check of {@link DownloadOptions.sha256}; returns the first expectation not met. */
export function unmetChecksum(digest: string, expected: readonly string[] = []): string | undefined {
  return expected.find((e) => !digest.startsWith(e.toLowerCase()));
}

function describeCause(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.message ?? e.cause?.code;
  return cause ? `${e.message ?? String(err)}: ${cause}` : (e.message ?? String(err));
}

function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}

/**
 * Downloads `url` to `dest` (its folder is created): the body is streamed to `dest.<pid>.<rand>.part`
 * while hashed, then checked — announced and received sizes within `maxBytes`, the received size
 * equal to the announced one, the digest against `sha256` — and renamed to `dest`. On any failure
 * (network, HTTP status, size, interrupted transfer, checksum, abort, idle timeout) the temporary
 * file is removed and a {@link DownloadError} says what happened. Temporary files left by killed
 * processes are removed first.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<Downloaded> {
  const maxBytes = opts.maxBytes ?? MAX_DOWNLOAD_BYTES;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  await mkdir(path.dirname(dest), { recursive: true });
  await removeStaleParts(dest);
  const ac = new AbortController();
  let timedOut = false;
  let idle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, idleMs);
  };
  const onAbort = (): void => ac.abort();
  if (opts.signal?.aborted) throw new DownloadError(`download of ${url} aborted`, url, 'aborted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const part = partName(dest);
  let fh: FileHandle | undefined;
  const fail = (reason: DownloadFailure, message: string): DownloadError => new DownloadError(message, url, reason);
  const stopped = (received: number): DownloadError =>
    timedOut
      ? fail('timeout', `download of ${url} stalled: no data for ${idleMs / 1000} s after ${megabytes(received)}`)
      : fail('aborted', `download of ${url} aborted after ${megabytes(received)}`);
  try {
    arm();
    let res: Response;
    try {
      res = await fetch(url, { signal: ac.signal, redirect: 'follow' });
    } catch (err) {
      if (ac.signal.aborted) throw stopped(0);
      throw fail('network', `cannot download ${url} (${describeCause(err)})`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw fail('http', `cannot download ${url}: the server answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    }
    const announced = res.headers.get('content-length');
    const total = announced !== null && /^\d+$/.test(announced.trim()) ? Number(announced) : undefined;
    if (total !== undefined && total > maxBytes) {
      await res.body.cancel().catch(() => undefined);
      throw fail('size', `refusing to download ${url}: the server announces ${megabytes(total)}, more than the limit of ${megabytes(maxBytes)}`);
    }
    fh = await open(part, 'wx');
    const hash = createHash('sha256');
    let received = 0;
    let reported = 0;
    const reader = res.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (ac.signal.aborted) throw stopped(received);
        throw fail('interrupted', `download of ${url} was interrupted after ${megabytes(received)}${total !== undefined ? ` of ${megabytes(total)}` : ''} (${describeCause(err)})`);
      }
      if (chunk.done) break;
      arm();
      received += chunk.value.byteLength;
      if (received > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw fail('size', `refusing to download ${url}: more than the limit of ${megabytes(maxBytes)}`);
      }
      hash.update(chunk.value);
      await fh.write(chunk.value);
      if (received - reported >= 65536) {
        reported = received;
        opts.onProgress?.({ received, total });
      }
    }
    if (ac.signal.aborted) throw stopped(received);
    if (total !== undefined && received !== total) {
      throw fail('interrupted', `download of ${url} was interrupted: ${received} of ${total} bytes received`);
    }
    opts.onProgress?.({ received, total });
    await fh.sync();
    await fh.close();
    fh = undefined;
    const digest = hash.digest('hex');
    const unmet = unmetChecksum(digest, opts.sha256);
    if (unmet !== undefined) {
      throw fail('checksum', `${url} does not have the expected checksum: its SHA-256 is ${digest}, expected one starting with ${unmet} (a corrupt download or a changed file; nothing was kept)`);
    }
    await rename(part, dest);
    return { sha256: digest, bytes: received };
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', onAbort);
    await fh?.close().catch(() => undefined);
    await rm(part, { force: true }).catch(() => undefined);
  }
}

/** The SHA-256 of a file, hex (streamed, for files of any size). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(file, 'r');
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
