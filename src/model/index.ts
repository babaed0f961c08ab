/** The RetinaNet model: configs, the network graph, weights, detection and evaluation on a dataset. */
export * from './config.js';
export * from './model.js';
export * from './weights.js';
export * from './pretrained.js';
export * from './finetune.js';
export * from './labels.js';
export * from './evaluate.js';
export { anchorsFor, type AnchorSet } from './anchors.js';
export { buildRetinaNet, applyTrainableLayers, type RetinaNetOutputs } from './retinanet.js';
export * from './report.js';
export * from './loss_cdf.js';
export { type Detector, OnnxDetector, loadDetector, isOnnxModelFile } from './detector.js';
export {
  buildDetectionGraph,
  exportDetector,
  exportedInference,
  parseExportMetadata,
  EXPORT_METADATA,
  EXPORT_FORMAT,
  type DetectionGraph,
  type DetectionGraphOptions,
  type ExportOptions,
  type ExportMetadata,
  type ExportedInference,
} from './export.js';
export { exportDetectorInt8, type Int8ExportOptions, type QuantizationReport } from './quantize.js';
