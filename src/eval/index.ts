/** Public evaluation API: COCO (pycocotools-identical) and Pascal VOC metrics, reports and plots. */
export * from './types.js';
export { EvalInputError } from './errors.js';
export * from './coco.js';
export * from './voc.js';
export * from './voc_io.js';
export * from './summary.js';
export * from './plot.js';
export * from './report.js';
export * from './remap.js';
