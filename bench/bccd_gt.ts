/**
 * Writes the COCO ground truth of a VOC split as our reader sees it (ids, category ids, file
 * names), so that torchvision's detections (bench/bccd_torchvision.py) and ours are scored by the
 * same evaluator on the same ids. `node dist/bench/bccd_gt.js ../shared/data/bccd test out.json`
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadDataset } from '../src/data/datasets/index.js';
import { cocoGroundTruth, datasetSource } from '../src/data/source.js';
import { runIfScript } from './detection_common.js';

export async function main(argv: string[]): Promise<void> {
  const [root, split, out] = argv as [string, string, string];
  const { dataset } = await loadDataset(root, { split, format: 'voc', checkImages: 'header' });
  const gt = await cocoGroundTruth(datasetSource(dataset));
  const images = gt.images.map((im, i) => ({ ...im, file_name: path.basename(dataset.images[i]!.file) }));
  writeFileSync(out, JSON.stringify({ ...gt, images }));
  console.log(`${images.length} images, ${gt.annotations.length} boxes, categories ${gt.categories.map((c) => `${c.id}:${c.name}`).join(' ')} -> ${out}`);
}

runIfScript(import.meta.url, main);
