/**
 * Runs a model over samples and scores its detections with the COCO evaluator.
 */
import { evaluateCoco } from '../eval/coco.js';
import { InputError } from '../core/errors.js';
import type { CocoEvalResult } from '../eval/coco.js';
import { type CocoDataset, type CocoResult, xyxyToCocoBox } from '../eval/types.js';
import { type SampleSource, cocoGroundTruth } from '../data/source.js';
import type { ImageDetections, InferenceOptions } from './model.js';
import type { Detector } from './detector.js';

/** Detections of one image as COCO results (`bbox` = [x, y, w, h] in original pixels). */
export function toCocoResults(det: ImageDetections, imageId: number, categoryIds: readonly number[]): CocoResult[] {
  const out: CocoResult[] = [];
  for (let k = 0; k < det.scores.length; k++) {
    out.push({ image_id: imageId, category_id: categoryIds[det.labels[k]!] ?? det.labels[k]!, bbox: xyxyToCocoBox(det.boxes, k), score: det.scores[k]! });
  }
  return out;
}

export interface EvaluateOptions extends InferenceOptions {
  /** Sample indices to evaluate (default all). */
  indices?: readonly number[];
  /** Called after each image. */
  onProgress?: (done: number, total: number) => void;
  /** Called for an image that cannot be read or detected on; it is left out of the evaluation. Default: rethrow. */
  onSkip?: (message: string) => void;
  /**
   * COCO category id per model label (default: the source's `categoryIds`, right when the
   * model was trained on this dataset). Labels mapped to a negative id are dropped, so a model
   * with classes the dataset lacks can still be scored on the shared ones.
   */
  categoryIds?: readonly number[];
}

/**
 * Detects on every sample and evaluates against its ground truth; also returns the detections,
 * the ground truth they were scored on and the sample indices evaluated (skipped ones left out).
 */
export async function evaluateModel(
  model: Detector,
  source: SampleSource,
  opts: EvaluateOptions = {},
): Promise<{ result: CocoEvalResult; detections: CocoResult[]; gt: CocoDataset; evaluated: number[] }> {
  const indices = opts.indices ?? [...Array(source.length).keys()];
  const detections: CocoResult[] = [];
  const evaluated: number[] = [];
  let done = 0;
  for (const i of indices) {
    // A failure on one image (unreadable, or an error in the graph for its size) leaves that
    // image out when the caller takes skips; its ground truth is left out with it.
    let dets: CocoResult[];
    try {
      const s = await source.get(i);
      const [det] = await model.detect([s.image], opts);
      dets = toCocoResults(det!, source.imageId(i), opts.categoryIds ?? source.categoryIds);
    } catch (err) {
      if (!opts.onSkip) throw err;
      opts.onSkip(`${err instanceof InputError ? err.message : `${source.describe(i)}: ${(err as Error).message}`}; left out of the evaluation`);
      opts.onProgress?.(++done, indices.length);
      continue;
    }
    evaluated.push(i);
    for (const r of dets) if (r.category_id >= 0) detections.push(r);
    opts.onProgress?.(++done, indices.length);
  }
  const gt = await cocoGroundTruth(source, evaluated);
  return { result: evaluateCoco(gt, detections), detections, gt, evaluated };
}
