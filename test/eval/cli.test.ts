import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../../src/core/errors.js';
import { evalCommand } from '../../src/cli/eval.js';
import { ROOT, SHARED, skipUnlessShared } from './helpers.js';

const cli = path.join(ROOT, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'eval', ...args], { encoding: 'utf8' });

interface GoldenCase {
  name: string;
  gt: unknown;
  dets: unknown;
  opts: Record<string, unknown>;
  expected: { stats: number[]; summaryText: string };
}

function tmpCase(): { dir: string; gt: string; dets: string; expected: GoldenCase['expected'] } {
  const golden = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/eval/coco_golden.json'), 'utf8')) as { cases: GoldenCase[] };
  const c = golden.cases.find((x) => x.name === 'random seed 1')!;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rn-eval-'));
  writeFileSync(path.join(dir, 'gt.json'), JSON.stringify(c.gt));
  writeFileSync(path.join(dir, 'dets.json'), JSON.stringify(c.dets));
  return { dir, gt: path.join(dir, 'gt.json'), dets: path.join(dir, 'dets.json'), expected: c.expected };
}

test('eval prints the pycocotools 12-line summary, --json the 12 named stats, --report writes files', () => {
  const c = tmpCase();
  try {
    // The golden case has results on a category the ground truth lacks (999), as pycocotools allows.
    const text = run('--gt', c.gt, '--dets', c.dets, '--allow-unknown-categories');
    assert.equal(text.status, 0, text.stderr);
    assert.equal(text.stdout.trimEnd(), c.expected.summaryText);

    const json = run('--gt', c.gt, '--dets', c.dets, '--allow-unknown-categories', '--json', '--per-class', '--report', path.join(c.dir, 'rep'));
    assert.equal(json.status, 0, json.stderr);
    const obj = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(obj), ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl', 'perClass', 'perClassAP50']);
    assert.equal(obj.AP, c.expected.stats[0]);
    assert.equal(Object.keys(obj.perClass as object).length, 5);
    // AP averages IoU 0.5:0.95, whose precision at every recall is at most that at IoU 0.5.
    const ap = obj.perClass as Record<string, number>;
    const ap50 = obj.perClassAP50 as Record<string, number>;
    assert.deepEqual(Object.keys(ap50), Object.keys(ap));
    for (const k of Object.keys(ap)) assert.ok(ap50[k]! >= ap[k]! && ap50[k]! <= 1, `${k}: AP50 ${ap50[k]} vs AP ${ap[k]}`);
    for (const f of ['report.md', 'report.html', 'metrics.json', 'pr_overall.svg', 'pr_overall.png', 'f1_curve.png', 'confusion_matrix.png', 'errors/overall.png']) assert.ok(existsSync(path.join(c.dir, 'rep', f)), f);
    assert.match(readFileSync(path.join(c.dir, 'rep', 'pr_overall.svg'), 'utf8'), /^<svg[\s\S]*class="mark-line role-mark[\s\S]*<\/svg>$/);
    assert.match(readFileSync(path.join(c.dir, 'rep', 'report.md'), 'utf8'), /\| class \| AP \| AP50 \|/);
  } finally {
    rmSync(c.dir, { recursive: true, force: true });
  }
});

test('eval user errors are InputErrors; the CLI prints them without a stack trace and exits 2', async () => {
  const c = tmpCase();
  try {
    const bad = JSON.parse(readFileSync(c.dets, 'utf8')) as { image_id: number }[];
    bad[3]!.image_id = 987654;
    writeFileSync(c.dets, JSON.stringify(bad));
    for (const [args, msg] of [
      [['--gt', c.gt, '--dets', c.dets, '--allow-unknown-categories'], /image id\(s\) that are not in the ground truth.*987654/],
      [['--gt', c.gt, '--dets', c.dets], /result\(s\) use category id\(s\) 999 that are not in the ground truth/],
      [['--gt', path.join(c.dir, 'missing.json'), '--dets', c.dets], /cannot read ground-truth file/],
      [['--gt', c.gt], /needs both --gt/],
      [['--gt', c.gt, '--dets', c.dets, '--iou-type', 'segm'], /only 'bbox'/],
      [['--weights', 'w.safetensors', '--data', 'coco'], /--weights w\.safetensors not found/],
    ] as const) {
      await assert.rejects(evalCommand.run([...args]), (e: unknown) => e instanceof InputError && msg.test(e.message), args.join(' '));
    }
    // One real process for the exit code and the message format (spawning is slow, so only one).
    const r = run('--gt', c.gt, '--dets', c.dets, '--allow-unknown-categories');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^retinanet eval: results reference 1 image id/m);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  } finally {
    rmSync(c.dir, { recursive: true, force: true });
  }
});

test('eval --voc-gt on voc100 prints per-class AP and mAP', { skip: skipUnlessShared('voc100') }, () => {
  const d = path.join(SHARED, 'voc100');
  const r = run('--voc-gt', path.join(d, 'gts/pascalvoc_format'), '--voc-dets', path.join(d, 'dets/abs_xyx2y2'), '--names', path.join(d, 'voc.names'), '--json', '--per-class');
  assert.equal(r.status, 0, r.stderr);
  const obj = JSON.parse(r.stdout) as { mAP: number; mAP11: number; perClass: Record<string, { AP: number }> };
  assert.equal(Object.keys(obj.perClass).length, 20);
  assert.ok(obj.mAP > 0.6 && obj.mAP < 0.62);
});
