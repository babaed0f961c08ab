/**
 * Detection and evaluation over a BullMQ queue on a real redis-server: the outputs of 1 and 3
 * workers equal a local run exactly; a worker SIGKILLed mid-shard loses no image and duplicates
 * none; unreadable images are recorded as failed, not retried; errors are one line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { CLI, STACK_LINE, cli, corruptPng, noisePng, tempDir, tinyModel } from '../cli/helpers.js';
import { REDIS_SKIP, type TestRedis, startRedis } from './redis.js';

const skip = REDIS_SKIP;
let dir = '';
let weights = '';
let images = '';
let data = '';
let redis: TestRedis | undefined;
const children: ChildProcess[] = [];

interface Done {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `retinanet ...args` (or another node script) without waiting. */
function start(script: string, args: string[]): { proc: ChildProcess; done: Promise<Done>; out: () => string } {
  const proc = spawn(process.execPath, [script, ...args], { env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Done>((resolve) => proc.on('close', (status) => resolve({ status, stdout, stderr })));
  return { proc, done, out: () => stdout + stderr };
}

function workers(n: number, extra: string[] = []): ChildProcess[] {
  return Array.from({ length: n }, () => start(CLI, ['worker', '--queue', redis!.url, '--threads', '1', '--stall-timeout', '1', '--quiet', ...extra]).proc);
}

async function stop(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map((p) => {
      if (p.exitCode !== null || p.signalCode !== null) return undefined;
      const exited = new Promise((resolve) => p.once('exit', resolve));
      p.kill('SIGKILL');
      return exited;
    }),
  );
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const json = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));
const COMMON = ['--score-thresh', '0', '--detections-per-img', '3'];

before(async () => {
  if (skip) return;
  dir = tempDir('queue');
  weights = await tinyModel(dir);
  images = path.join(dir, 'images');
  mkdirSync(images);
  for (let i = 0; i < 9; i++) await noisePng(path.join(images, `img${i}.png`), 64 + 8 * (i % 3), 64, i + 1);
  corruptPng(path.join(images, 'broken.png'));
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 6, imageSize: 64, seed: 9 });
  const rdir = path.join(dir, 'redis');
  mkdirSync(rdir);
  redis = await startRedis(rdir);
});

after(async () => {
  await stop(children);
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('detect --queue with 1 and with 3 workers writes exactly what a local detect writes', { skip }, async () => {
  const local = path.join(dir, 'local.json');
  const r = cli('detect', images, '--weights', weights, ...COMMON, '--quiet', '--out', local);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /broken\.png/);
  for (const n of [1, 3]) {
    const ws = workers(n);
    const out = path.join(dir, `queued${n}.json`);
    const p = await start(CLI, ['detect', images, '--weights', weights, ...COMMON, '--queue', redis!.url, '--shard-size', '2', '--out', out]).done;
    await stop(ws);
    assert.equal(p.status, 0, p.stderr);
    assert.deepEqual(json(out), json(local), `${n} worker(s)`);
    assert.deepEqual(json(out.replace(/\.json$/, '.images.json')), json(local.replace(/\.json$/, '.images.json')));
    // The unreadable image is recorded as failed once with its reason, and the producer says so.
    assert.match(p.stderr, /warning: .*broken\.png.*skipped/);
    assert.match(p.stdout, /on 9 image\(s\) written .*5 shard\(s\).*1 image\(s\) skipped/);
  }
});

test('a worker SIGKILLed mid-shard: another takes the shard over, every image exactly once', { skip }, async () => {
  const local = path.join(dir, 'local_killed.json');
  assert.equal(cli('detect', images, '--weights', weights, ...COMMON, '--quiet', '--out', local).status, 0);
  const stuck = start(path.join(path.dirname(fileURLToPath(import.meta.url)), 'stuck_worker.js'), [redis!.url]);
  const out = path.join(dir, 'killed.json');
  const producer = start(CLI, ['detect', images, '--weights', weights, ...COMMON, '--queue', redis!.url, '--shard-size', '4', '--run', 'killtest', '--out', out]);
  await until(() => /STUCK killtest \d+/.test(stuck.out()), 60_000, 'the first image of a shard');
  const shard = /STUCK killtest (\d+)/.exec(stuck.out())![1];
  // One image of the shard is stored, the rest are not: kill the worker there.
  assert.equal(await redis!.client.hlen('retinanet:run:killtest:results'), 1);
  await stop([stuck.proc]);
  const rescuer = start(CLI, ['worker', '--queue', redis!.url, '--threads', '1', '--stall-timeout', '1']);
  const p = await producer.done;
  await stop([rescuer.proc]);
  assert.equal(p.status, 0, p.stderr);
  assert.deepEqual(json(out), json(local));
  assert.deepEqual(json(out.replace(/\.json$/, '.images.json')), json(local.replace(/\.json$/, '.images.json')));
  // The rescuer took the killed worker's shard over, skipping the image already done.
  assert.match(rescuer.out(), new RegExp(`shard ${shard}/3: 4 image\\(s\\), 1 already done \\(taken over\\)`));
});

test('eval --queue gives the numbers of a local eval', { skip }, async () => {
  const local = cli('eval', '--weights', weights, '--data', data, '--json', '--quiet', '--score-thresh', '0');
  assert.equal(local.status, 0, local.stderr);
  const ws = workers(2);
  const p = await start(CLI, ['eval', '--weights', weights, '--data', data, '--json', '--quiet', '--score-thresh', '0', '--queue', redis!.url, '--shard-size', '2']).done;
  await stop(ws);
  assert.equal(p.status, 0, p.stderr);
  assert.deepEqual(JSON.parse(p.stdout), JSON.parse(local.stdout));
});

test('a worker refuses a shard whose weights changed on its disk; the producer reports the failed shard', { skip }, async () => {
  const other = path.join(dir, 'other');
  mkdirSync(other);
  const w = await tinyModel(other);
  const one = path.join(images, 'img0.png');
  const producer = start(CLI, ['detect', one, '--weights', w, '--queue', redis!.url, '--run', 'refused', '--quiet', '--out', path.join(dir, 'refused.json')]);
  // Another model at the same path, after the run was submitted.
  let submitted = false;
  const poll = setInterval(() => void redis!.client.exists('retinanet:run:refused').then((n) => (submitted = n === 1)), 50);
  await until(() => submitted, 30_000, 'the run on the queue').finally(() => clearInterval(poll));
  const { RetinaNet } = await import('../../src/model/model.js');
  const { demoConfig } = await import('../../src/train/demo_config.js');
  const m = new RetinaNet(demoConfig(64), 7);
  await m.saveWeights(w, { classNames: demoConfig(64).classNames, categoryIds: [1, 2, 3, 4] });
  await m.dispose();
  const ws = workers(1);
  const p = await producer.done;
  await stop(ws);
  assert.equal(p.status, 1);
  assert.match(p.stderr, /shard 1\/1 failed: .*refused .*SHA-256/);
  assert.doesNotMatch(p.stderr, STACK_LINE);
});

test('unreachable Redis and bad URLs are one-line errors', { skip }, () => {
  const r = cli('detect', images, '--weights', weights, '--queue', 'redis://127.0.0.1:1', '--out', path.join(dir, 'x.json'));
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  const w = cli('worker', '--queue', 'http://x');
  assert.equal(w.status, 2);
  assert.match(w.stderr, /redis:\/\/ or rediss:\/\/ URL/);
  const noQueue = cli('detect', images, '--weights', weights, '--run', 'abc');
  assert.equal(noQueue.status, 2);
  assert.match(noQueue.stderr, /need --queue/);
});

test('Redis restarted empty mid-run (no AOF): the producer puts the run back, the output is a local run\'s', { skip }, async () => {
  const local = path.join(dir, 'local_restart.json');
  assert.equal(cli('detect', images, '--weights', weights, ...COMMON, '--quiet', '--out', local).status, 0);
  const worker = start(path.join(path.dirname(fileURLToPath(import.meta.url)), 'stuck_worker.js'), [redis!.url, '300']);
  const out = path.join(dir, 'restart.json');
  const producer = start(CLI, ['detect', images, '--weights', weights, ...COMMON, '--queue', redis!.url, '--shard-size', '2', '--run', 'restart', '--out', out]);
  // Two shards done (the producer has journaled them), then Redis dies and comes back empty.
  await until(() => (worker.out().match(/IMAGE/g) ?? []).length >= 5, 60_000, 'five images');
  await redis!.kill('SIGKILL');
  await redis!.restart();
  const p = await producer.done;
  await stop([worker.proc]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stderr, /Redis no longer holds run restart .* put it back with the [1-9]\d* image outcome/);
  assert.deepEqual(json(out), json(local));
  assert.deepEqual(json(out.replace(/\.json$/, '.images.json')), json(local.replace(/\.json$/, '.images.json')));
});

test('Ctrl-C stops the producer only; the same run is re-attached by its id and finished', { skip }, async () => {
  const local = path.join(dir, 'local_attach.json');
  assert.equal(cli('detect', images, '--weights', weights, ...COMMON, '--quiet', '--out', local).status, 0);
  const out = path.join(dir, 'attach.json');
  const first = start(CLI, ['detect', images, '--weights', weights, ...COMMON, '--queue', redis!.url, '--run', 'attach', '--out', out]);
  await until(() => /run attach submitted/.test(first.out()), 60_000, 'the run submitted');
  first.proc.kill('SIGINT');
  const r1 = await first.done;
  assert.equal(r1.status, 130, r1.stderr);
  assert.match(r1.stderr, /stopped following run attach; the workers go on\. Re-attach with: retinanet detect --queue \S+ --run attach/);
  const ws = workers(2);
  const r2 = await start(CLI, ['detect', '--queue', redis!.url, '--run', 'attach', '--out', out, '--quiet']).done;
  await stop(ws);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(json(out), json(local));
  const bad = cli('detect', '--queue', redis!.url, '--run', 'nosuchrun', '--out', path.join(dir, 'y.json'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no run 'nosuchrun' on the queue/);
});

test('Redis with AOF restarted mid-run keeps the run itself: nothing is put back, the output is a local run\'s', { skip }, async () => {
  const local = path.join(dir, 'local_aof.json');
  assert.equal(cli('detect', images, '--weights', weights, ...COMMON, '--quiet', '--out', local).status, 0);
  const rdir = path.join(dir, 'redis-aof');
  mkdirSync(rdir);
  const aof = await startRedis(rdir, { aof: true });
  await aof.client.config('SET', 'appendfsync', 'always');
  try {
    const worker = start(path.join(path.dirname(fileURLToPath(import.meta.url)), 'stuck_worker.js'), [aof.url, '300']);
    const out = path.join(dir, 'aof.json');
    const producer = start(CLI, ['detect', images, '--weights', weights, ...COMMON, '--queue', aof.url, '--shard-size', '2', '--run', 'aof', '--out', out]);
    await until(() => (worker.out().match(/IMAGE/g) ?? []).length >= 5, 60_000, 'five images');
    await aof.kill('SIGKILL');
    await aof.restart();
    const p = await producer.done;
    await stop([worker.proc]);
    assert.equal(p.status, 0, p.stderr);
    assert.doesNotMatch(p.stderr, /no longer holds run/);
    assert.deepEqual(json(out), json(local));
  } finally {
    await aof.stop();
  }
});
