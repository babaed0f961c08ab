import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cocoRatios, splitOptions, syntheticRatios } from '../../bench/paper_data.js';
import { PRESETS, ROWS, rowConfig } from '../../bench/paper_spec.js';
import { syntheticSample } from '../../src/data/synthetic.js';

const COCO128 = '/work/shared/data/coco128';

test("the paper set's background:foreground anchor ratio is at least COCO's (~1000:1)", async () => {
  const preset = PRESETS.mini!;
  const cfg = rowConfig(preset, ROWS.find((r) => r.id === 'fl-g2-a0.25')!);
  const ours = syntheticRatios('paper set', `${preset.data.imageSize} px`, splitOptions(preset.data, 'train'), 60, cfg);
  // The demo's data (192 px, 2-6 objects): the set the earlier ablation used, for contrast.
  const demo = syntheticRatios('demo set', '192 px', { imageSize: 192, seed: 0 }, 60, rowConfig({ ...preset, data: { ...preset.data, imageSize: 192 } }, ROWS[1]!));
  const coco = existsSync(COCO128) ? await cocoRatios(COCO128) : undefined;
  for (const s of [ours, demo, coco]) if (s) console.log(`${s.name} (${s.setting}): ${s.anchorsPerImage.toFixed(0)} anchors/image, fg median ${s.foregroundPerImage.median}, bg:fg median ${s.ratio.median.toFixed(0)}:1, pooled ${s.ratio.pooled.toFixed(0)}:1`);
  assert.ok(ours.anchorsPerImage > 20000, `${ours.anchorsPerImage} anchors per image`);
  assert.ok(ours.ratio.pooled >= 1000, `pooled ratio ${ours.ratio.pooled}`);
  assert.ok(ours.ratio.median >= 1000, `median ratio ${ours.ratio.median}`);
  assert.ok(demo.ratio.pooled < ours.ratio.pooled / 3, `demo ${demo.ratio.pooled} vs ours ${ours.ratio.pooled}`);
  if (coco) {
    assert.ok(coco.ratio.pooled > 100 && coco.ratio.pooled < 10000, `COCO128 ${coco.ratio.pooled}`);
    assert.ok(ours.ratio.pooled >= coco.ratio.pooled, `ours ${ours.ratio.pooled} vs COCO128 ${coco.ratio.pooled}`);
  }
});

test('distractors: deterministic, unlabelled, off by default (images unchanged)', () => {
  const base = { imageSize: 128, seed: 5, maxObjectSize: 48 };
  const plain = syntheticSample(2, base);
  const zero = syntheticSample(2, { ...base, minDistractors: 0, maxDistractors: 0 });
  assert.deepEqual(zero.image.data, plain.image.data);
  const d1 = syntheticSample(2, { ...base, minDistractors: 3, maxDistractors: 3 });
  const d2 = syntheticSample(2, { ...base, minDistractors: 3, maxDistractors: 3 });
  assert.deepEqual(d1.image.data, d2.image.data);
  assert.deepEqual(d1.boxes, plain.boxes, 'distractors add no boxes and move none');
  let changed = 0;
  for (let i = 0; i < d1.image.data.length; i++) if (Math.abs(d1.image.data[i]! - plain.image.data[i]!) > 0.2) changed++;
  assert.ok(changed > 50, `${changed} values changed by distractors`);
});
