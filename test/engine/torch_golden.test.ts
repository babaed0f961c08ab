import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Executable, Graph, grad, op } from '../../src/engine/index.js';
import { ParameterStore, conv2d } from '../../src/nn/index.js';
import { bottleneck } from '../../src/nn/resnet.js';
import { sigmoidFocalLoss } from '../../src/detection/losses.js';

interface T {
  shape: number[];
  data: number[];
}
interface Fixture {
  x: T;
  targets: T;
  params: Record<string, T>;
  buffers: Record<string, T>;
  features: T;
  loss: number;
  grad_x: T;
  grads: Record<string, T>;
}

const fixturePath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/engine/bottleneck_focal.json');
const fx = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;

function assertClose(actual: ArrayLike<number>, expected: readonly number[], rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!) - rtol * Math.abs(expected[i]!);
    worst = Math.max(worst, err);
    assert.ok(err <= atol, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

test('bottleneck + frozen BN + focal loss: value and gradients match PyTorch autograd', async () => {
  const g = new Graph();
  const store = new ParameterStore();
  const s = { graph: g, store };
  const x = g.param('x', fx.x.shape);
  const feats = bottleneck(s, 'block', x, 4, 2);
  const logits = conv2d(s, 'head', feats, 3, 1);
  const [n, k, h, w] = logits.shape as [number, number, number, number];
  const flat = op.reshape(op.transpose(logits, [0, 2, 3, 1]), [n, h * w, k]);
  const targets = g.input('targets', 'float32', fx.targets.shape);
  const numPos = Math.max(1, fx.targets.data.reduce((a, b) => a + b, 0));
  const loss = op.div(op.reduceSum(sigmoidFocalLoss(flat, targets)), op.scalar(g, numPos));
  const names = Object.keys(fx.params);
  const wrt = [x, ...names.map((nm) => g.inputs.get(nm)!)];
  const grads = grad(loss, wrt);
  const exe = await Executable.create(g, [feats, loss, ...grads], { threads: 1 });
  const feeds = new Map<string, Float32Array>([['x', Float32Array.from(fx.x.data)], ['targets', Float32Array.from(fx.targets.data)]]);
  for (const [nm, t] of [...Object.entries(fx.params), ...Object.entries(fx.buffers)]) {
    assert.deepEqual([...store.info.get(nm)!.shape], t.shape, `shape of ${nm}`);
    feeds.set(nm, Float32Array.from(t.data));
  }
  const out = await exe.run(feeds);
  assertClose(out[0] as Float32Array, fx.features.data, 1e-4, 1e-5, 'features');
  assert.ok(Math.abs((out[1] as Float32Array)[0]! - fx.loss) <= 1e-5 * fx.loss, `loss ${(out[1] as Float32Array)[0]} vs torch ${fx.loss}`);
  assertClose(out[2] as Float32Array, fx.grad_x.data, 1e-3, 1e-6, 'd loss / d x');
  names.forEach((nm, i) => assertClose(out[i + 3] as Float32Array, fx.grads[nm]!.data, 1e-3, 1e-6, `d loss / d ${nm}`));
});
