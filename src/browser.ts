/**
 * retinanet-ts in a browser: the bundle `dist/browser/retinanet.js` (docs/browser.md).
 *
 * ```js
 * import { RetinaNet } from './retinanet.js';
 * const model = await RetinaNet.fromWeights('model.safetensors');   // + model.json beside it
 * const det = await model.detect(document.querySelector('img'));
 * // det.boxes: Float32Array [x1, y1, x2, y2, ...] in the image's pixels; det.scores; det.labels
 * ```
 *
 * The same graphs, preprocessing, post-processing, target assignment and SGD as in Node, run by
 * onnxruntime-web; images decoded by the same decoder as sharp's (mozjpeg); files from URLs and
 * an in-memory file tree (src/platform/*.browser.ts).
 */
export { RetinaNet, type FromWeightsOptions, type LabelledImage, type LabelledSet, type FineTuneModelOptions, type SavedWeights } from './web/retinanet.js';
export { BrowserTrainer, type FineTuneOptions, type FineTuneStop } from './web/trainer.js';
export { initBackend, type Backend, type BackendOptions, type ExecutionProvider } from './web/backend.js';
export { toRgbImage, type ImageSource } from './web/pixels.js';
export { mountFiles, mountZip, unmount, type DatasetFile } from './web/datasets.js';
export { memoryFiles } from './platform/files.browser.js';
export { InputError } from './core/errors.js';
export { ImageError, decodeImage, type RgbImage } from './io/image.js';
export { loadDataset, detectFormat, formatProblem, type LoadedDataset, type DatasetProblem, type DatasetFormat } from './data/datasets/index.js';
export { datasetSource, memorySource, type Sample, type SampleSource } from './data/source.js';
export { toCocoResults } from './model/evaluate.js';
export type { ImageDetections, InferenceOptions } from './model/model.js';
export type { RetinaNetConfig } from './model/config.js';
export type { ModelSidecar } from './model/weights.js';
export type { StepRecord } from './train/log.js';
export type { CocoResult } from './eval/types.js';
