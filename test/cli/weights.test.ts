import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CLI, REPO, STACK_LINE, noisePng, tempDir } from './helpers.js';
import { startWeightsServer, type WeightsServer } from '../model/weights_server.js';
import { RetinaNet } from '../../src/model/model.js';
import { configFor } from '../../src/model/config.js';
import { COCO_CATEGORIES, importWeights, locateWeights } from '../../src/model/pretrained.js';
import { sidecarPath } from '../../src/model/weights.js';

const torchDir = path.join(REPO, 'test/fixtures/io/torch');
const fixtureFile = path.join(torchDir, 'torch113_sd_zip.pt');
const fixture = new Uint8Array(readFileSync(fixtureFile));
interface ExpectedTensor { name: string; dtype: string; shape: number[]; sha256: string }
const expected = JSON.parse(readFileSync(path.join(torchDir, 'expected.json'), 'utf8')) as Record<string, { tensors: ExpectedTensor[] }>;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const PREFIX = sha256(fixture).slice(0, 8);

let dir = '';
let server: WeightsServer;
before(async () => {
  dir = tempDir('weights');
  server = await startWeightsServer(fixture);
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs the CLI asynchronously (the local server answers in this process) with extra environment. */
function run(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, CI: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function home(name: string): { RETINANET_HOME: string; RETINANET_WEIGHTS_MIRROR: string } {
  return { RETINANET_HOME: path.join(dir, name), RETINANET_WEIGHTS_MIRROR: '' };
}

function cacheFiles(h: string): string[] {
  const d = path.join(h, 'weights');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

/** Each tensor of a safetensors file as stored: dtype, shape and the SHA-256 of its bytes. */
function stored(file: string): { name: string; dtype: string; shape: number[]; sha256: string }[] {
  const b = new Uint8Array(readFileSync(file));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape, sha256: sha256(b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1])) }));
}

function expectOneLineError(r: Run, message: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, STACK_LINE);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

test('weights import FILE.pth --out FILE.safetensors keeps every tensor of the state_dict bit for bit (names, dtypes, num_batches_tracked)', async () => {
  const want = (file: string): ReturnType<typeof stored> => expected[file]!.tensors.map(({ name, dtype, shape, sha256: h }) => ({ name, dtype, shape, sha256: h }));
  const out = path.join(dir, 'sd.safetensors');
  const r0 = await run({}, 'weights', 'import', fixtureFile, '--out', out);
  assert.equal(r0.status, 0, r0.stderr);
  assert.match(r0.stdout, /^8 tensors from the zip torch\.save checkpoint .* written to .*sd\.safetensors\n$/);
  assert.deepEqual(stored(out), want('torch113_sd_zip.pt'));
  // The library function behind it, on the other formats and dtypes (F16, BF16, F64, integers, views).
  for (const file of ['torch113_sd_legacy.pt', 'torch2_sd_zip.pt', 'torch113_dtypes_zip.pt', 'torch2_dtypes_zip.pt', 'torch113_views_legacy.pt', 'torch113_wrapped_model.pt']) {
    const o = path.join(dir, `${file}.safetensors`);
    await importWeights(path.join(torchDir, file), o);
    assert.deepEqual(stored(o), want(file), file);
  }
  // DataParallel names: --strip-prefix gives torchvision's.
  const dp = path.join(dir, 'dp.safetensors');
  const r = await run({}, 'weights', 'import', path.join(torchDir, 'torch113_wrapped_state_dict_dp.pt'), '--out', dp, '--strip-prefix', 'module.');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(stored(dp).map((t) => t.name), expected['torch113_sd_zip.pt']!.tensors.map((t) => t.name));
  // Without --out: beside the input.
  const copy = path.join(dir, 'beside.pth');
  copyFileSync(fixtureFile, copy);
  assert.equal((await run({}, 'weights', 'import', copy)).status, 0);
  assert.ok(existsSync(path.join(dir, 'beside.safetensors')));
});

test('weights import errors are one line, exit 2: a refused pickle, a missing file, a bad --out', async () => {
  expectOneLineError(await run({}, 'weights', 'import', path.join(torchDir, 'torch113_malicious_zip.pt'), '--out', path.join(dir, 'evil.safetensors')), /refusing to load global 'posix\.system'/);
  assert.ok(!existsSync(path.join(dir, 'evil.safetensors')));
  expectOneLineError(await run({}, 'weights', 'import', path.join(dir, 'nope.pth')), /nope\.pth not found/);
  expectOneLineError(await run({}, 'weights', 'import', fixtureFile, '--out', path.join(dir, 'x.bin')), /--out must name a \.safetensors file/);
  expectOneLineError(await run({}, 'weights', 'get', 'resnet51'), /unknown weights name 'resnet51'/);
  expectOneLineError(await run({}, 'weights', 'get', 'resnet50', '--out', 'x'), /--out does not apply/);
});

test('weights get URL: progress on stderr, the cached file on stdout; a named checkpoint whose bytes do not match is refused and nothing is cached', async () => {
  const env = home('get');
  const url = `${server.base}/ok/tiny-${PREFIX}.pth`;
  const r = await run(env, 'weights', 'get', url);
  assert.equal(r.status, 0, r.stderr);
  const file = path.join(env.RETINANET_HOME, 'weights', `tiny-${PREFIX}.safetensors`);
  assert.equal(r.stdout.trim(), file);
  assert.match(r.stderr, /downloading tiny-.*\.pth from http:\/\/127\.0\.0\.1/);
  assert.deepEqual(stored(file), expected['torch113_sd_zip.pt']!.tensors.map(({ name, dtype, shape, sha256: h }) => ({ name, dtype, shape, sha256: h })));
  assert.deepEqual(cacheFiles(env.RETINANET_HOME), [`tiny-${PREFIX}.safetensors`]);
  const again = await run(env, 'weights', 'get', url);
  assert.match(again.stderr, /in the cache already/);

  // resnet18 through a mirror that serves other bytes under its name: the SHA-256 prefix in the name catches it.
  const bad = { ...home('mismatch'), RETINANET_WEIGHTS_MIRROR: `${server.base}/ok` };
  const m = await run(bad, 'weights', 'get', 'resnet18');
  expectOneLineError({ ...m, stderr: m.stderr.split('\n').filter((l) => !l.startsWith('downloading') && !/ MB /.test(l)).join('\n') }, /resnet18-f37072fd\.pth does not have the expected checksum: .*expected one starting with f37072fd/);
  assert.deepEqual(cacheFiles(bad.RETINANET_HOME), []);
  // The same through a flag that takes weights.
  const t = await run(bad, 'train', '--data', 'synthetic', '--backbone-weights', 'resnet18', '--arch', 'retinanet_resnet18_fpn_small', '--iters', '1', '--quiet', '--out', path.join(dir, 'never'));
  assert.equal(t.status, 2);
  assert.match(t.stderr, /does not have the expected checksum/);
  assert.deepEqual(cacheFiles(bad.RETINANET_HOME), []);
});

test('weights list names torchvision\'s checkpoints and marks the cached ones; a flag given the wrong kind says which flag takes it', async () => {
  const env = home('list');
  const loc = locateWeights('resnet50', { home: env.RETINANET_HOME });
  mkdirSync(path.dirname(loc.file), { recursive: true });
  copyFileSync(path.join(REPO, 'test/fixtures/io/torch_tiny.safetensors'), loc.file);
  const r = await run(env, 'weights', 'list');
  assert.equal(r.status, 0);
  for (const name of ['retinanet_resnet50_fpn_coco', 'retinanet_resnet50_fpn_v2_coco', 'resnet18', 'resnet34', 'resnet50', 'resnet101']) assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'));
  assert.match(r.stdout, /^ {2}resnet50 +backbone +cached /m);
  assert.match(r.stdout, /^ {2}resnet18 +backbone {10}ResNet-18/m);
  expectOneLineError(await run(env, 'detect', fixtureFile, '--weights', 'resnet50'), /resnet50 is an ImageNet backbone, not a detector; .*--backbone-weights resnet50/);
  expectOneLineError(await run(env, 'train', '--data', 'synthetic', '--backbone-weights', 'retinanet_resnet50_fpn_coco'), /is a whole detector, not a backbone; start from it with --weights/);
  expectOneLineError(await run(env, 'train', '--data', 'synthetic', '--backbone-weights', 'resnet34', '--weights', 'retinanet_resnet50_fpn_coco'), /either --weights or --backbone-weights/);
  expectOneLineError(await run(env, 'train', '--data', 'synthetic', '--trainable-backbone-layers', '6'), /--trainable-backbone-layers must be <= 5/);
});

test('detect --weights NAME: a named detector in the cache loads with no other flag, with its COCO class names', async () => {
  const env = home('named');
  // Stands in for the converted download: a small model with the named checkpoint's 91 COCO classes.
  const loc = locateWeights('retinanet_resnet50_fpn_coco', { home: env.RETINANET_HOME });
  mkdirSync(path.dirname(loc.file), { recursive: true });
  const cfg = configFor('retinanet_resnet18_fpn_small', { numClasses: 91, classNames: [...COCO_CATEGORIES], transform: { minSize: 64, maxSize: 64 }, head: { priorProbability: 0.6 } });
  const model = new RetinaNet(cfg);
  await model.saveWeights(loc.file, { classNames: [...COCO_CATEGORIES], categoryIds: [...COCO_CATEGORIES.keys()] });
  await model.dispose();
  const image = path.join(dir, 'photo.png');
  await noisePng(image, 64, 64, 3);
  const out = path.join(dir, 'named.json');
  const r = await run(env, 'detect', image, '--weights', 'retinanet_resnet50_fpn_coco', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const summary = /detections on 1 image\(s\) written to .*; scoring >= 0\.5: (.*)$/m.exec(r.stdout);
  assert.ok(summary, r.stdout);
  const known = new Set(COCO_CATEGORIES);
  const names = summary[1]!.split(', ').map((part) => /^(.+) (\d+)$/.exec(part)?.[1]);
  assert.ok(names.length > 0 && names.every((n) => n !== undefined && known.has(n)), r.stdout);
  const dets = JSON.parse(readFileSync(out, 'utf8')) as { category_id: number }[];
  assert.ok(dets.every((d) => d.category_id >= 0 && d.category_id <= 90), 'category id = label');
  // A sidecar removed from the cache is written again from the name's entry.
  rmSync(sidecarPath(loc.file));
  const again = await run(env, 'detect', image, '--weights', 'retinanet_resnet50_fpn_coco', '--out', out, '--quiet');
  assert.equal(again.status, 2, 'the real sidecar (ResNet-50) does not fit the stand-in weights');
  assert.match(again.stderr, /do not fit retinanet_resnet50_fpn with 91 classes/);
});
