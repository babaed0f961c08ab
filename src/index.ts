/**
 * retinanet-ts: RetinaNet (Lin et al., *Focal Loss for Dense Object Detection*) in TypeScript.
 *
 * ```ts
 * import { RetinaNet, loadImage } from 'retinanet-ts';
 * const model = await RetinaNet.fromWeights('runs/train/model.safetensors');
 * const [det] = await model.detect([await loadImage('photo.jpg')]);
 * // det.boxes: Float32Array [x1, y1, x2, y2, ...] in the photo's pixels; det.scores; det.labels
 * ```
 *
 * Conventions everywhere: images are RGB CHW float32 in [0, 1] (`RgbImage`); boxes are flat
 * `[x1, y1, x2, y2, ...]` in pixels of the image they belong to; labels are 0-based class
 * indices; COCO results use `bbox = [x, y, w, h]`. Errors caused by the caller's input are
 * `InputError`s with a message meant to be shown as it is.
 *
 * Subpaths hold the layers below: `retinanet-ts/engine` (graph builder, autodiff, runtime),
 * `retinanet-ts/detection` (anchors, matcher, box coder, losses, NMS), `retinanet-ts/eval`
 * (COCO and VOC evaluation), `retinanet-ts/data`, `retinanet-ts/model`, `retinanet-ts/train`.
 */

// Ground floor
export { InputError } from './core/errors.js';
export { Rng } from './core/random.js';

// The model
export { RetinaNet, type ImageDetections, type InferenceOptions } from './model/model.js';
export {
  type RetinaNetConfig,
  type DeepPartial,
  ARCHITECTURES,
  architectureNames,
  configFor,
  mergeConfig,
  loadConfigFile,
  validateConfig,
} from './model/config.js';
export { type ModelSidecar, type ConfigSources, type LoadWeightsOptions, type WeightsLoadReport, readSidecar, sidecarPath, resolveConfig } from './model/weights.js';
export {
  type PretrainedEntry,
  type FetchWeightsOptions,
  type FetchedWeights,
  PRETRAINED,
  COCO_CATEGORIES,
  fetchWeights,
  resolveWeights,
  importWeights,
  weightsHome,
} from './model/pretrained.js';
export { labelCategories, type LabelMapping, type CategoryTable } from './model/labels.js';
export { evaluateModel, toCocoResults, type EvaluateOptions } from './model/evaluate.js';
// Export to one ONNX file (float32 or int8) and detection with an exported model
export { exportDetector, type ExportOptions, type ExportMetadata, parseExportMetadata } from './model/export.js';
export { exportDetectorInt8, type Int8ExportOptions, type QuantizationReport } from './model/quantize.js';
export { type Detector, OnnxDetector, loadDetector } from './model/detector.js';

// Images and data
export { type RgbImage, ImageError, loadImage, decodeImage, saveImage, imageSize } from './io/image.js';
export { drawDetections, type DrawOptions, type DrawnBoxes } from './io/draw.js';
export { readSafetensors, writeSafetensors, SafetensorsError } from './io/safetensors.js';
export { type DetectionDataset, type DatasetImage } from './data/types.js';
export { loadDataset, detectFormat, DATASET_FORMATS, DatasetError, formatProblem, type DatasetFormat, type DatasetProblem, type LoadOptions, type LoadedDataset } from './data/datasets/index.js';
export { type Sample, type SampleSource, datasetSource, memorySource, cocoGroundTruth } from './data/source.js';
export { syntheticSources, SYNTHETIC_DEFAULTS } from './data/synthetic_source.js';
export { SYNTHETIC_CLASSES, generateSynthetic, writeSyntheticCoco } from './data/synthetic.js';

// Training
export {
  Trainer,
  NonFiniteLossError,
  type TrainOptions,
  type ResolvedTrainOptions,
  type TrainHook,
  type TrainResult,
  type StepLosses,
  type StepRecord,
} from './train/trainer.js';
export { paperRecipe, type TrainRecipe } from './train/recipe.js';
export { ScheduleHook, NanGuard, JsonlLogHook, ValidationHook, CheckpointHook, defaultHooks } from './train/hooks.js';
export { demoConfig, demoTrainOptions } from './train/demo_config.js';

// The focal loss family (graph ops; see retinanet-ts/engine to build graphs)
export {
  sigmoidFocalLoss,
  alphaBalancedCE,
  focalLossStar,
  retinanetLoss,
  l1Loss,
  smoothL1Loss,
  giouLoss,
  type FocalLossOptions,
  type FocalLossStarOptions,
  type ClassificationLoss,
  type BoxLoss,
} from './detection/losses.js';

// Evaluation
export {
  evaluateCoco,
  evaluateVoc,
  formatCocoSummary,
  cocoStatsJson,
  EvalInputError,
  COCO_STAT_KEYS,
  type CocoEvalResult,
  type CocoStats,
  type CocoDataset,
  type CocoResult,
  type VocObject,
  type VocDetection,
  type VocEvalResult,
} from './eval/index.js';
