import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSyntheticCoco } from '../../bench/synthetic_coco.js';
import { evaluateCoco } from '../../src/eval/index.js';

test('the benchmark set generator is seeded, well-formed and evaluable', () => {
  const a = makeSyntheticCoco({ images: 60 });
  const b = makeSyntheticCoco({ images: 60 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(makeSyntheticCoco({ images: 60, seed: 7 }).dets.slice(0, 5), a.dets.slice(0, 5));
  assert.equal(a.gt.categories.length, 80);
  const perImage = new Map<number, number>();
  for (const d of a.dets) perImage.set(d.image_id, (perImage.get(d.image_id) ?? 0) + 1);
  assert.ok([...perImage.values()].every((n) => n <= 100));
  const r = evaluateCoco(a.gt, a.dets);
  assert.ok(r.stats.AP > 0.1 && r.stats.AP < 0.9, `AP ${r.stats.AP}`);
  assert.equal(r.counts.detsDropped, 0);
});
