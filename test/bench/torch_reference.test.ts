import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestTorch, torchPythons } from '../../bench/detection_common.js';
import { nms } from '../../src/detection/nms.js';
import { Rng } from '../../src/core/random.js';

// The benchmarks compare with every torch found (Debian's 1.13, a torch 2 venv whose CUDA
// torchvision wheel has no CPU ops and gets bench/torch_compat.py's NMS); the reference must
// give torchvision's answer on each. Python is never a dependency: without it, this skips.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pythons = torchPythons();

test('every torch reference the benchmarks use gives our NMS result', { skip: pythons.length === 0 ? 'no python3 with torch and torchvision (set TORCH_PYTHON to compare)' : false }, () => {
  const rng = new Rng(7);
  const n = 300;
  const boxes = new Float32Array(n * 4);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = rng.next() * 200;
    const y = rng.next() * 200;
    boxes.set([x, y, x + 5 + rng.next() * 60, y + 5 + rng.next() * 60], i * 4);
    scores[i] = Math.round(rng.next() * 50) / 50; // ties: the order among equal scores matters too
  }
  const ours = Array.from(nms(boxes, scores, 0.5));
  const script = [
    'import sys, json',
    `sys.path.insert(0, ${JSON.stringify(path.join(repo, 'bench'))})`,
    'from torch_compat import ensure_torchvision',
    'tv = ensure_torchvision()',
    'import torch',
    'd = json.loads(sys.stdin.read())',
    'keep = tv.ops.nms(torch.tensor(d["boxes"]).view(-1, 4), torch.tensor(d["scores"]), 0.5)',
    'print(json.dumps(keep.tolist()))',
  ].join('\n');
  for (const py of pythons) {
    const r = spawnSync(py.python, ['-c', script], { input: JSON.stringify({ boxes: Array.from(boxes), scores: Array.from(scores) }), encoding: 'utf8' });
    assert.equal(r.status, 0, `${py.python}: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), ours, `torch ${py.torch} (nms: ${py.nms})`);
  }
});

test('newestTorch picks the highest torch version, numerically and ignoring local tags', () => {
  const found = [
    { python: '/usr/bin/python3', torch: '1.13.1' },
    { python: 'venv/bin/python3', torch: '2.13.0+cpu' },
    { python: 'old/bin/python3', torch: '2.9.1' },
  ];
  assert.equal(newestTorch(found)?.python, 'venv/bin/python3');
  assert.equal(newestTorch([found[0]!, found[2]!])?.python, 'old/bin/python3');
  assert.equal(newestTorch([]), undefined);
});
