/**
 * `retinanet train` without weights, config or architecture: the automatic from-scratch recipe
 * prints its choices with reasons, flags override them, and --resume rebuilds the same run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticCoco } from '../../src/data/synthetic.js';
import { STACK_LINE, cli, tempDir } from './helpers.js';

let dir = '';
let data = '';

before(async () => {
  dir = tempDir('auto');
  data = path.join(dir, 'data');
  await writeSyntheticCoco(data, { count: 4, imageSize: 64, seed: 1 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('train with no model flags prints the automatic recipe, each choice with its reason, and flags override it', () => {
  const out = path.join(dir, 'run');
  // 64 px keeps the step to milliseconds: --min-size/--max-size override the recipe's 256 px floor.
  const r = cli('train', '--data', data, '--iters', '1', '--min-size', '64', '--max-size', '64', '--batch', '2', '--threads', '1', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /no weights given: training from scratch with the automatic recipe/);
  assert.match(r.stderr, /GroupNorm in the backbone, FPN and heads.*\n\s+because no pretrained weights/);
  assert.match(r.stderr, /input: short side 64 px, long side at most 64 px\n\s+because --min-size, --max-size given/);
  assert.match(r.stderr, /batch 2, learning rate 0\.01,.*\n\s+because --batch given; otherwise:/);
  assert.match(r.stderr, /model: ResNet-18 width (32|64)/);
  assert.match(r.stderr, /training retinanet_resnet18_fpn_scratch .* of 2 -> /);
  const sidecar = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')) as { config: { backbone: { norm: string; baseWidth: number }; fpn: { norm: string }; transform: { minSize: number } } };
  assert.equal(sidecar.config.backbone.norm, 'group_norm');
  assert.equal(sidecar.config.fpn.norm, 'group_norm');
  assert.equal(sidecar.config.transform.minSize, 64);
  assert.ok(existsSync(path.join(out, 'auto_config.json')));
  assert.match(readFileSync(path.join(out, 'auto_recipe.txt'), 'utf8'), /because/);

  // --resume replays the choice as the flags it stands for: same model, same batch.
  const again = cli('train', '--resume', out, '--iters', '2', '--quiet');
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /automatic recipe/);
  const log = readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n');
  assert.equal(log.length, 2);
});

test('train --data D --val V --time-budget 15m: the choice is sized for the budget and printed with its reasons; --lr and --no-augment override theirs', () => {
  const out = path.join(dir, 'budget');
  // --iters 1 ends the run after one step; the recipe is still chosen for the 15-minute budget.
  const r = cli('train', '--data', data, '--val', data, '--time-budget', '15m', '--iters', '1', '--min-size', '64', '--max-size', '64', '--lr', '0.002', '--no-augment', '--threads', '1', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /training from scratch with the automatic recipe, for a 15\.0-minute budget on 1 core /);
  // 4 images of 64 px: thousands of passes in 15 minutes, so the wider model.
  assert.match(r.stderr, /model: ResNet-18 width 64, FPN 128 channels.*\n\s+because in 15\.0 min on 1 core the width-64 model would see each of the 4 training images about \d+ times/);
  assert.match(r.stderr, /batch 4, learning rate 0\.002, gradient norm clipped at 5.*\n\s+because --lr given; otherwise:/);
  assert.match(r.stderr, /augmentation: no flips, no scale jitter; batches padded to multiples of 32\n\s+because --no-augment given; otherwise:/);
  assert.match(r.stderr, /estimate: ~[\d.]+ training images\/s, ~\d+ passes over the 4 images in the budget/);
  assert.match(r.stderr, /for 15\.0 min \(length fitted to the step time, at most 1 iterations\), batches of 4/);
  assert.match(r.stdout + r.stderr, /validation at iteration 1: AP [\d.]+, AP50 [\d.]+/);
  // What was printed is saved with the run; the saved choice carries the overrides.
  const saved = readFileSync(path.join(out, 'auto_recipe.txt'), 'utf8');
  assert.ok(r.stderr.includes(saved.trim()), 'auto_recipe.txt holds the printed choice');
  const state = JSON.parse(readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8')) as { options: { cli?: Record<string, unknown> } };
  assert.equal(state.options.cli?.['lr'], '0.002');
  assert.equal(state.options.cli?.['scale-jitter'], undefined);
});

test('--recipe: auto or paper; auto cannot be combined with a model choice', () => {
  for (const [args, message] of [
    [['--recipe', 'fast'], /--recipe must be auto or paper, got 'fast'/],
    [['--recipe', 'auto', '--arch', 'retinanet_resnet50_fpn'], /--recipe auto chooses the model itself from scratch; it cannot be combined with --arch/],
  ] as [string[], RegExp][]) {
    const r = cli('train', '--data', data, '--iters', '1', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  }
});
