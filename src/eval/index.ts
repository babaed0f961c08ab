/** Public evaluation API: COCO (pycocotools-identical) and Pascal VOC metrics, reports and plots (PNG + SVG). */
export * from './types.js';
export { EvalInputError } from './errors.js';
export {
  COCO_AREA_LABELS,
  COCO_AREA_RANGES,
  COCO_IOU_THRS,
  COCO_REC_THRS,
  COCO_STAT_KEYS,
  MAX_EVAL_BYTES,
  checkCocoGroundTruth,
  evaluateCoco,
  type CocoCategoryMetrics,
  type CocoEvalOptions,
  type CocoEvalResult,
  type CocoStatKey,
  type CocoStats,
} from './coco.js';
export * from './analysis.js';
export * from './voc.js';
export * from './voc_io.js';
export * from './summary.js';
export * from './report.js';
export * from './remap.js';
