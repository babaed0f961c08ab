/**
 * A run killed with SIGKILL mid-step (no handler runs) continues with --resume from its last
 * checkpoint with nothing corrupted: the final weights equal those of a run never killed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { readSafetensors, toFloat32 } from '../../src/io/safetensors.js';
import { demoConfig } from '../../src/train/demo_config.js';
import { CLI, cli } from '../cli/helpers.js';

let dir = '';
let args: (out: string) => string[];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rn-crash-'));
  const data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 6, imageSize: 64, seed: 4 });
  const config = path.join(dir, 'tiny-config.json');
  const { classNames: _names, numClasses: _n, ...cfg } = demoConfig(64);
  writeFileSync(config, JSON.stringify({ ...cfg, arch: 'retinanet_resnet18_fpn_small' }));
  args = (out) => ['train', '--data', data, '--config', config, '--iters', '12', '--batch', '2', '--size-divisible', '32', '--threads', '1', '--checkpoint-every', '1', '--quiet', '--out', out];
});

after(() => rmSync(dir, { recursive: true, force: true }));

function checkpointIteration(out: string): number {
  try {
    return (JSON.parse(readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8')) as { iteration: number }).iteration;
  } catch {
    return -1;
  }
}

async function weights(file: string): Promise<Map<string, Float32Array>> {
  const st = await readSafetensors(file);
  return new Map([...st.tensors].map(([n, t]) => [n, toFloat32(t)]));
}

test('SIGKILL mid-run, then --resume: the run finishes with the weights of an uninterrupted run', async () => {
  const straight = path.join(dir, 'straight');
  const s = cli(...args(straight));
  assert.equal(s.status, 0, s.stderr);

  const killed = path.join(dir, 'killed');
  const child = spawn(process.execPath, [CLI, ...args(killed)], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // Kill it once a few checkpoints exist, at whatever point of a step it is.
  for (let i = 0; i < 600 && checkpointIteration(killed) < 3; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 37));
  child.kill('SIGKILL');
  await exited;
  const at = checkpointIteration(killed);
  assert.ok(at >= 3 && at < 12, `killed after checkpoint ${at}`);
  assert.ok(!existsSync(path.join(killed, 'model.safetensors')), 'the run did not finish');

  const r = cli('train', '--resume', killed, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  const a = await weights(path.join(straight, 'model.safetensors'));
  const b = await weights(path.join(killed, 'model.safetensors'));
  assert.equal(b.size, a.size);
  for (const [name, v] of a) assert.deepEqual(b.get(name), v, name);
  const log = readFileSync(path.join(killed, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { iter: number }).iter);
  assert.deepEqual(log, [...Array(12).keys()], 'each step logged once');
});
