/**
 * Queue benchmark: images per second of detection over the BullMQ queue (src/queue) with 1 and
 * with N worker processes (T threads each) against one process with N x T threads
 * (RetinaNet.detect in this process), on the same generated images; a local redis-server is
 * started on a free loopback port (Debian's `redis-server`, or $REDIS_SERVER). Models are loaded
 * and graphs compiled before the timing (a warm-up run of one-image shards on every worker), so
 * the numbers are steady-state throughput: queue traffic, decoding and inference.
 * retinanet_resnet50_fpn with deterministic hash weights at the image size (speed only).
 * `retinanet bench queue [--images N] [--size HxW] [--workers N] [--threads T] [--shard-size S]`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { InputError } from '../src/core/errors.js';
import { numberFlag } from '../src/core/flags.js';
import { chwToHwcBytes, loadImage } from '../src/io/image.js';
import { configFor } from '../src/model/config.js';
import { RetinaNet } from '../src/model/model.js';
import { hashUniform, hashWeight } from '../src/nn/hash_init.js';
import { connectRedis, parseRedisUrl } from '../src/queue/connection.js';
import { contentHash, describeModel, type JobOptions } from '../src/queue/model_spec.js';
import { QueueRun } from '../src/queue/producer.js';
import type { RunSpec } from '../src/queue/run.js';
import { runIfScript } from './detection_common.js';

interface Options {
  images: number;
  h: number;
  w: number;
  workers: number;
  threads: number;
  shardSize: number;
}

function parse(argv: string[]): Options {
  const values: Record<string, string> = {};
  const known = ['--images', '--size', '--workers', '--threads', '--shard-size'];
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    if (!known.includes(flag) || argv[i + 1] === undefined) throw new InputError(`bench queue: unknown or incomplete option '${flag}' (takes ${known.map((k) => `${k} N`).join(', ')}; --size HxW)`);
    values[flag.slice(2)] = argv[i + 1]!;
  }
  const size = /^(\d+)x(\d+)$/.exec(values['size'] ?? '320x320');
  if (!size) throw new InputError(`--size must be HxW, got '${values['size']}'`);
  return {
    images: numberFlag(values, 'images', { integer: true, min: 1 }) ?? 24,
    h: Number(size[1]),
    w: Number(size[2]),
    workers: numberFlag(values, 'workers', { integer: true, min: 1 }) ?? 2,
    threads: numberFlag(values, 'threads', { integer: true, min: 1 }) ?? 1,
    shardSize: numberFlag(values, 'shard-size', { integer: true, min: 1 }) ?? 2,
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on a free loopback port; returns its URL and process. */
async function startRedis(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const bin = process.env['REDIS_SERVER'] ?? (spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim() || undefined);
  if (!bin) throw new InputError('bench queue needs redis-server (apt-get install redis-server, or set REDIS_SERVER)');
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      (await connectRedis(parseRedisUrl(url), 1000)).disconnect();
      return { url, proc };
    } catch (err) {
      if (i > 100) throw err;
      await sleep(50);
    }
  }
}

function startWorkers(n: number, url: string, threads: number): Promise<ChildProcess[]> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'queue_worker.js');
  return Promise.all(
    Array.from({ length: n }, () => {
      const p = spawn(process.execPath, [script, url, String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
      return new Promise<ChildProcess>((resolve, reject) => {
        p.stdout!.on('data', (b: Buffer) => b.toString().includes('READY') && resolve(p));
        p.once('exit', (code) => reject(new Error(`a worker exited (${code}) before it was ready`)));
      });
    }),
  );
}

async function stopWorkers(ps: ChildProcess[]): Promise<void> {
  await Promise.all(ps.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve(undefined) : (p.once('exit', resolve), p.kill('SIGTERM'))))));
}

/** Seconds for the queue to finish `files` as one run. */
async function queued(url: string, name: string, spec: Omit<RunSpec, 'images' | 'created' | 'shardSize'>, files: string[], shardSize: number): Promise<number> {
  const t0 = performance.now();
  const run = await QueueRun.submit(parseRedisUrl(url), name, { ...spec, shardSize, images: files.map((file, index) => ({ index, id: index + 1, file })), created: new Date().toISOString() });
  const outcome = await run.wait({ pollMs: 50 });
  const seconds = (performance.now() - t0) / 1000;
  await run.close();
  const failed = [...outcome.outcomes.values()].filter((o) => !o.ok).length + outcome.failedShards.length;
  if (failed > 0 || outcome.outcomes.size !== files.length) throw new Error(`queue run ${name}: ${failed} failure(s), ${outcome.outcomes.size}/${files.length} outcomes`);
  return seconds;
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-bench-queue-'));
  let redis: ChildProcess | undefined;
  let workers: ChildProcess[] = [];
  try {
    const cfg = configFor('retinanet_resnet50_fpn', { transform: { minSize: Math.min(o.h, o.w), maxSize: Math.max(o.h, o.w) } });
    const model = new RetinaNet(cfg);
    for (const [name, info] of model.store.info) model.store.values.set(name, hashWeight(name, info.shape));
    const weights = path.join(dir, 'model.safetensors');
    await model.saveWeights(weights);
    const files: string[] = [];
    for (let i = 0; i < o.images + 2 * o.workers; i++) {
      const file = path.join(dir, `img${i}.png`);
      const px = Float32Array.from(hashUniform(`bench-queue-${i}`, 3 * o.h * o.w));
      await sharp(chwToHwcBytes({ data: px, height: o.h, width: o.w }), { raw: { width: o.w, height: o.h, channels: 3 } }).png().toFile(file);
      files.push(file);
    }
    const warm = files.slice(o.images);
    const timed = files.slice(0, o.images);

    // One process, all the threads (what a single machine's `retinanet detect` does).
    const allThreads = o.workers * o.threads;
    await model.detect([await loadImage(warm[0]!)], { threads: allThreads });
    let t0 = performance.now();
    for (const f of timed) await model.detect([await loadImage(f)], { threads: allThreads });
    const localSeconds = (performance.now() - t0) / 1000;
    await model.dispose();

    const r = await startRedis(dir);
    redis = r.proc;
    const modelSpec = await describeModel(weights, weights);
    const options: JobOptions = { categoryIds: Array.from({ length: cfg.numClasses }, (_, i) => i) };
    const spec = { kind: 'detect' as const, model: modelSpec, options, hash: contentHash(modelSpec, options), idsFromGroundTruth: false };
    const rows: [string, number][] = [[`1 process, ${allThreads} thread(s), no queue`, localSeconds]];
    for (const n of [...new Set([1, o.workers])]) {
      workers = await startWorkers(n, r.url, o.threads);
      await queued(r.url, `warm${n}`, spec, warm.slice(0, 2 * n), 1);
      t0 = performance.now();
      const s = await queued(r.url, `timed${n}`, spec, timed, o.shardSize);
      rows.push([`queue, ${n} worker(s) x ${o.threads} thread(s)`, s]);
      await stopWorkers(workers);
      workers = [];
    }
    console.log(`bench queue: retinanet_resnet50_fpn (hash weights), ${o.images} ${o.h}x${o.w} PNG images, shards of ${o.shardSize}, ${os.availableParallelism()} core(s), warm (models loaded, graphs compiled)`);
    for (const [what, s] of rows) console.log(`  ${what.padEnd(40)}: ${(o.images / s).toFixed(2)} images/s (${s.toFixed(1)} s)`);
  } finally {
    await stopWorkers(workers);
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfScript(import.meta.url, main);
