/**
 * `retinanet export-torch`: the files always; the generated script run with torchrun (2 CPU
 * processes, gloo) for a few iterations only where a python with torch >= 2 and torchvision is
 * found ($RETINANET_TORCH_PYTHON, else python3): its weights load back and detect, and weights
 * of this project go through PyTorch and back unchanged (identical detections).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { RetinaNet } from '../../src/model/model.js';
import { configFor } from '../../src/model/config.js';
import { STACK_LINE, cli, tempDir } from './helpers.js';

/** A python that can run the script under torchrun, or why the torch tests skip. */
function findTorchPython(): { python?: string; skip: string | false } {
  const candidates = [process.env['RETINANET_TORCH_PYTHON'], 'python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import sys, torch, PIL; v = torch.__version__.split("."); sys.exit(0 if int(v[0]) >= 2 else 3)'], { encoding: 'utf8', timeout: 60_000 });
    // torchvision itself is imported by the script (with its CPU fallback for a CUDA wheel).
    const tv = r.status === 0 ? spawnSync(python, ['-c', 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torchvision") else 1)'], { encoding: 'utf8' }) : undefined;
    if (r.status === 0 && tv?.status === 0) return { python, skip: false };
  }
  return { skip: `no python with torch >= 2, torchvision and Pillow (tried ${candidates.join(', ')}; set RETINANET_TORCH_PYTHON): the torchrun part of export-torch is not tested here` };
}

const torch = findTorchPython();
let dir = '';
let data = '';
let config = '';

/** The small config of these tests: ResNet-18 (64-wide stem, as torchvision), 64-channel FPN, 2 GroupNorm convs per subnet, 64 px. */
const TINY = { arch: 'retinanet_resnet18_fpn_small', fpn: { channels: 64 }, head: { convs: 2, groupNorm: true }, transform: { minSize: 64, maxSize: 64 } };

before(async () => {
  dir = tempDir('export-torch');
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 6, imageSize: 64, seed: 9 });
  config = path.join(dir, 'tiny.json');
  writeFileSync(config, JSON.stringify(TINY));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('export-torch writes the script, the sidecar, the recipe and the dataset manifest', () => {
  const out = path.join(dir, 'files');
  const r = cli('export-torch', '--config', config, '--data', data, '--out', out, '--iters', '7', '--batch', '3', '--scale-jitter', '56,64', '--no-augment');
  assert.equal(r.status, 0, r.stderr);
  const sidecar = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')) as { config: { name: string; numClasses: number; fpn: { channels: number } }; classNames: string[]; categoryIds: number[] };
  assert.equal(sidecar.config.name, 'retinanet_resnet18_fpn_small');
  assert.equal(sidecar.config.numClasses, 4);
  assert.equal(sidecar.config.fpn.channels, 64);
  assert.deepEqual(sidecar.classNames, ['circle', 'square', 'triangle', 'cross']);
  assert.deepEqual(sidecar.categoryIds, [1, 2, 3, 4]);
  const recipe = JSON.parse(readFileSync(path.join(out, 'recipe.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual([recipe['iters'], recipe['batchSize'], recipe['flip'], recipe['minSizes'], recipe['lr']], [7, 3, false, [56, 64], null]);
  const manifest = JSON.parse(readFileSync(path.join(out, 'dataset.json'), 'utf8')) as { images: { file: string; boxes: number[][]; labels: number[] }[] };
  const gt = JSON.parse(readFileSync(path.join(data, 'annotations', 'instances_train.json'), 'utf8')) as { annotations: unknown[] };
  assert.equal(manifest.images.length, 6);
  assert.equal(manifest.images.reduce((n, im) => n + im.boxes.length, 0), gt.annotations.length);
  assert.ok(manifest.images.every((im) => path.isAbsolute(im.file) && im.boxes.length === im.labels.length));
  const script = readFileSync(path.join(out, 'train_torchvision.py'), 'utf8');
  assert.match(script, /DistributedDataParallel/);
  assert.match(script, /from torchvision\.models\.detection import RetinaNet/);
  // A folder with files is refused.
  const again = cli('export-torch', '--config', config, '--data', data, '--out', out);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /holds files/);
});

test('configs torchvision cannot express are one-line errors', () => {
  const narrow = path.join(dir, 'narrow.json');
  writeFileSync(narrow, JSON.stringify({ ...TINY, backbone: { baseWidth: 32 } }));
  for (const [args, msg] of [
    [['--config', narrow], /baseWidth 32 has no torchvision equivalent/],
    [['--config', config, '--loss', 'focal-star'], /--loss must be focal or ce/],
    [['--config', config, '--iters', '2', '--epochs', '1'], /either --iters or --epochs/],
  ] as [string[], RegExp][]) {
    const r = cli('export-torch', ...args, '--data', data, '--out', path.join(dir, 'bad'));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});

test('torchrun --nproc_per_node 2 (gloo, CPU) trains a few iterations; the weights load back and detect; weights go through PyTorch unchanged', { skip: torch.skip, timeout: 600_000 }, async () => {
  // Weights of this project, the start of the PyTorch run.
  const cfg = configFor('retinanet_resnet18_fpn_small', { numClasses: 4, fpn: { channels: 64 }, head: { convs: 2, groupNorm: true }, transform: { minSize: 64, maxSize: 64 } });
  const model = new RetinaNet(cfg, 3);
  const ours = path.join(dir, 'ours.safetensors');
  await model.saveWeights(ours, { classNames: ['circle', 'square', 'triangle', 'cross'], categoryIds: [1, 2, 3, 4] });
  await model.dispose();
  const image = path.join(data, 'train', '000001.png');
  const detect = (weights: string, out: string): unknown => {
    const r = cli('detect', image, '--weights', weights, '--threads', '1', '--score-thresh', '0', '--detections-per-img', '10', '--quiet', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(out, 'utf8'));
  };
  const torchrun = (script: string, ...args: string[]): string => {
    const r = spawnSync(torch.python!, ['-m', 'torch.distributed.run', '--nproc_per_node', '2', script, '--device', 'cpu', '--workers', '0', '--log-every', '1', ...args], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      timeout: 480_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr.slice(-4000)}`);
    return r.stdout;
  };

  // Ours -> PyTorch (0 iterations) -> ours: the same detections.
  const round = path.join(dir, 'round');
  assert.equal(cli('export-torch', '--config', config, '--data', data, '--out', round, '--weights', ours, '--iters', '0').status, 0);
  const log0 = torchrun(path.join(round, 'train_torchvision.py'));
  assert.match(log0, /tensors loaded, 0 skipped \(\), 0 kept their initialisation/);
  assert.deepEqual(detect(path.join(round, 'out', 'model.safetensors'), path.join(dir, 'dets_round.json')), detect(ours, path.join(dir, 'dets_ours.json')));

  // A few iterations of DDP training from them: the loss is finite, the weights changed, load and detect.
  const trained = path.join(dir, 'trained');
  assert.equal(cli('export-torch', '--config', config, '--data', data, '--out', trained, '--weights', ours, '--iters', '3', '--batch', '1').status, 0);
  const log = torchrun(path.join(trained, 'train_torchvision.py'));
  assert.match(log, /3 iterations of 1 x 2 process\(es\) on cpu/);
  const last = /iter 3\/3 loss (\S+)/.exec(log);
  assert.ok(last && Number.isFinite(Number(last[1])), log);
  const after = detect(path.join(trained, 'out', 'model.safetensors'), path.join(dir, 'dets_trained.json')) as unknown[];
  assert.equal(after.length, 10);
  assert.notDeepEqual(after, detect(ours, path.join(dir, 'dets_ours2.json')));
});
