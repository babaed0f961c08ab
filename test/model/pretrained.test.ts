import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DownloadError, type DownloadFailure } from '../../src/io/download.js';
import { InputError } from '../../src/core/errors.js';
import {
  PRETRAINED, type PretrainedEntry, COCO_CATEGORIES, cachePretrained, fetchWeights, locateWeights, resolveWeights,
  sha256PrefixOf, weightsHome,
} from '../../src/model/pretrained.js';
import { startWeightsServer, type WeightsServer } from './weights_server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtureFile = path.join(root, 'test/fixtures/io/torch/torch113_sd_zip.pt');
const fixture = new Uint8Array(readFileSync(fixtureFile));
interface ExpectedTensor { name: string; dtype: string; shape: number[]; sha256: string }
const expected = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/io/torch/expected.json'), 'utf8')) as Record<string, { tensors: ExpectedTensor[] }>)['torch113_sd_zip.pt']!.tensors;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** The fixture's SHA-256 prefix, as torchvision would put it in the file name. */
const PREFIX = sha256(fixture).slice(0, 8);
const FILE = `tiny-${PREFIX}.pth`;
const registry: PretrainedEntry[] = [
  { name: 'tiny', kind: 'backbone', url: `https://download.invalid/models/${FILE}`, description: 'a small torchvision-style state_dict' },
  { name: 'tiny_wrong_sha', kind: 'backbone', url: `https://download.invalid/models/tiny-00000000.pth`, description: 'published under another checksum' },
];

let server: WeightsServer;
before(async () => {
  server = await startWeightsServer(fixture);
});
after(async () => {
  await server.close();
});

/** A fresh RETINANET_HOME, and RETINANET_WEIGHTS_MIRROR set to `mode` of the local server. */
function env(mode: string): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rn-weights-home-'));
  process.env['RETINANET_HOME'] = home;
  process.env['RETINANET_WEIGHTS_MIRROR'] = `${server.base}/${mode}/`;
  return home;
}

function cacheFiles(home: string): string[] {
  const dir = path.join(home, 'weights');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The bytes of each tensor of a safetensors file, straight from the file, by name. */
function tensorBytes(file: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const b = new Uint8Array(readFileSync(file));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return new Map(
    Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape, bytes: b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) }]),
  );
}

function assertBitIdentical(file: string): void {
  const got = tensorBytes(file);
  assert.deepEqual([...got.keys()], expected.map((t) => t.name), 'names in state_dict order');
  for (const e of expected) {
    const t = got.get(e.name)!;
    assert.equal(t.dtype, e.dtype, e.name);
    assert.deepEqual(t.shape, e.shape, e.name);
    assert.equal(sha256(t.bytes), e.sha256, `${e.name}: bytes differ from the state_dict's`);
  }
}

async function expectFailure(p: Promise<unknown>, reason: DownloadFailure, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DownloadError, `a DownloadError, got ${String(err)}`);
    assert.ok(err instanceof InputError);
    assert.equal(err.reason, reason, err.message);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return true;
  });
}

test('the published names are torchvision\'s, each with the SHA-256 prefix of its file name', () => {
  const byName = new Map(PRETRAINED.map((e) => [e.name, e]));
  for (const name of ['retinanet_resnet50_fpn_coco', 'retinanet_resnet50_fpn_v2_coco', 'resnet18', 'resnet34', 'resnet50', 'resnet101']) assert.ok(byName.has(name), name);
  assert.equal(byName.get('retinanet_resnet50_fpn_coco')!.url, 'https://download.pytorch.org/models/retinanet_resnet50_fpn_coco-eeacb38b.pth');
  assert.equal(byName.get('resnet50')!.url, 'https://download.pytorch.org/models/resnet50-0676ba61.pth');
  for (const e of PRETRAINED) assert.match(sha256PrefixOf(e.url) ?? '', /^[0-9a-f]{8}$/, e.name);
  // The detectors come with their architecture and torchvision's 91 COCO names (label = category id).
  const coco = byName.get('retinanet_resnet50_fpn_coco')!.sidecar!();
  assert.equal(coco.config.name, 'retinanet_resnet50_fpn');
  assert.equal(coco.config.numClasses, 91);
  assert.equal(coco.config.backbone.bnEps, 0, 'torchvision loads COCO_V1 with overwrite_eps(model, 0.0)');
  assert.equal(COCO_CATEGORIES.length, 91);
  assert.deepEqual([COCO_CATEGORIES[0], COCO_CATEGORIES[1], COCO_CATEGORIES[12], COCO_CATEGORIES[90]], ['__background__', 'person', 'N/A', 'toothbrush']);
  assert.deepEqual(coco.categoryIds, [...Array(91).keys()]);
  const v2 = byName.get('retinanet_resnet50_fpn_v2_coco')!.sidecar!();
  assert.equal(v2.config.name, 'retinanet_resnet50_fpn_v2');
  assert.equal(v2.config.backbone.bnEps, 1e-5);
});

test('cache folder: RETINANET_HOME, else XDG_CACHE_HOME/retinanet-ts, else ~/.cache/retinanet-ts; the mirror replaces the published location', () => {
  assert.equal(weightsHome({ RETINANET_HOME: '/x/y' }), '/x/y');
  assert.equal(weightsHome({ XDG_CACHE_HOME: '/c' }), '/c/retinanet-ts');
  assert.equal(weightsHome({}), path.join(os.homedir(), '.cache', 'retinanet-ts'));
  const loc = locateWeights('resnet50', { home: '/h', mirror: 'http://mirror.local/files/' });
  assert.equal(loc.url, 'http://mirror.local/files/resnet50-0676ba61.pth');
  assert.equal(loc.file, '/h/weights/resnet50-0676ba61.safetensors');
  assert.equal(loc.sha256Prefix, '0676ba61');
  assert.equal(locateWeights('resnet50', { home: '/h', mirror: '' }).url, 'https://download.pytorch.org/models/resnet50-0676ba61.pth');
  assert.throws(() => locateWeights('resnet51', { home: '/h' }), /unknown weights name 'resnet51'; named weights: retinanet_resnet50_fpn_coco, .*resnet50/);
});

test('download through RETINANET_WEIGHTS_MIRROR into RETINANET_HOME: checked, converted bit for bit, cached once', async () => {
  const home = env('ok');
  const progress: number[] = [];
  const got = await fetchWeights('tiny', { registry, onProgress: (p) => progress.push(p.received) });
  assert.equal(got.fetched, true);
  assert.equal(got.file, path.join(home, 'weights', `tiny-${PREFIX}.safetensors`));
  assert.deepEqual(cacheFiles(home), [`tiny-${PREFIX}.safetensors`], 'only the converted file is left');
  assert.equal(progress.at(-1), fixture.byteLength);
  assertBitIdentical(got.file);
  assert.ok(server.requests.includes(`/ok/${FILE}`));
  // Second use: from the cache, no request.
  const count = server.requests.length;
  const again = await fetchWeights('tiny', { registry });
  assert.equal(again.fetched, false);
  assert.equal(server.requests.length, count);
  assert.deepEqual(await resolveWeights('tiny', { registry }), { file: got.file, entry: registry[0] });
});

test('a checksum mismatch, a server error, an interrupted or stalled transfer and an oversized file each leave nothing in the cache', async () => {
  let home = env('other');
  await expectFailure(fetchWeights('tiny', { registry }), 'checksum', new RegExp(`expected one starting with ${PREFIX}`));
  assert.deepEqual(cacheFiles(home), []);

  home = env('ok');
  await expectFailure(fetchWeights('tiny_wrong_sha', { registry }), 'checksum', /expected one starting with 00000000/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('error');
  await expectFailure(fetchWeights('tiny', { registry }), 'http', /HTTP 500/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('cut');
  await expectFailure(fetchWeights('tiny', { registry }), 'interrupted', /interrupted/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('stall');
  await expectFailure(fetchWeights('tiny', { registry, idleTimeoutMs: 300 }), 'timeout', /stalled: no data for 0.3 s/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('huge');
  await expectFailure(fetchWeights('tiny', { registry }), 'size', /announces 1000000 MB, more than the limit/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('chunked');
  await expectFailure(fetchWeights('tiny', { registry, maxBytes: 1000 }), 'size', /more than the limit/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('stall');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await expectFailure(fetchWeights('tiny', { registry, signal: ac.signal }), 'aborted', /aborted/);
  assert.deepEqual(cacheFiles(home), []);
});

test('a URL: its file name\'s SHA-256 prefix and --sha256 are checked; no Content-Length is fine', async () => {
  const home = env('ok');
  const got = await fetchWeights(`${server.base}/chunked/${FILE}`, { sha256: sha256(fixture) });
  assert.equal(got.file, path.join(home, 'weights', `tiny-${PREFIX}.safetensors`));
  assertBitIdentical(got.file);
  assert.deepEqual(cacheFiles(home), [`tiny-${PREFIX}.safetensors`]);
  // Cached already: --sha256 is checked against the digest recorded at conversion.
  await assert.rejects(fetchWeights(`${server.base}/ok/${FILE}`, { sha256: 'abcdef' }), /was converted from a download with SHA-256 [0-9a-f]{64}, not one starting with abcdef/);
  assert.equal((await fetchWeights(`${server.base}/ok/${FILE}`, { sha256: PREFIX })).fetched, false);
  // A name without a checksum: a web page instead of a checkpoint is refused, and not kept.
  const page = env('ok');
  await assert.rejects(fetchWeights(`${server.base}/html/model.pth`), /model\.pth is neither a PyTorch checkpoint \(torch\.save\) nor a safetensors file/);
  assert.deepEqual(cacheFiles(page), []);
  const other = env('ok');
  await expectFailure(fetchWeights(`${server.base}/ok/${FILE}`, { sha256: 'abcdef' }), 'checksum', /expected one starting with abcdef/);
  await expectFailure(fetchWeights(`${server.base}/ok/tiny-12345678.pth`), 'checksum', /expected one starting with 12345678/);
  assert.deepEqual(cacheFiles(other), []);
});

test('offline: the error says where to download the file and how to import it', async () => {
  const home = env('ok');
  // A port nothing listens on.
  const closed = await startWeightsServer(fixture);
  const base = closed.base;
  await closed.close();
  process.env['RETINANET_WEIGHTS_MIRROR'] = '';
  const loc = locateWeights('tiny', { registry, mirror: base });
  await expectFailure(fetchWeights('tiny', { registry, mirror: base }), 'network', new RegExp(`cannot download ${loc.url.replace(/[.]/g, '\\.')} \\(.*ECONNREFUSED.*\\)\\. .*download .* by hand .*'retinanet weights import ${FILE}'`));
  assert.deepEqual(cacheFiles(home), []);
});

test('a checkpoint put in the cache by hand, or imported, is checked and converted; a corrupt one is removed', async () => {
  let home = env('error'); // any download would fail
  mkdirSync(path.join(home, 'weights'), { recursive: true });
  copyFileSync(fixtureFile, path.join(home, 'weights', FILE));
  const before = server.requests.length;
  const got = await fetchWeights('tiny', { registry });
  assertBitIdentical(got.file);
  assert.deepEqual(cacheFiles(home), [`tiny-${PREFIX}.safetensors`]);
  assert.equal(server.requests.length, before, 'no download');

  home = env('error');
  mkdirSync(path.join(home, 'weights'), { recursive: true });
  writeFileSync(path.join(home, 'weights', FILE), fixture.subarray(0, 100));
  await assert.rejects(fetchWeights('tiny', { registry }), /does not have the expected checksum .* it was removed/);
  assert.deepEqual(cacheFiles(home), []);

  home = env('error');
  const cached = await cachePretrained(fixtureFile, { registry });
  assert.equal(cached?.name, 'tiny');
  assertBitIdentical(cached!.file);
  assert.equal(await cachePretrained(path.join(root, 'test/fixtures/io/torch/torch113_sd_legacy.pt'), { registry }), undefined, 'not a named checkpoint');
});
