/** Public API of the data layer; see docs/data.md. */
export * from './types.js';
export * from '../io/image.js';
export * from './source.js';
export * from './synthetic_source.js';
export * from './transform.js';
export * from './augment.js';
export { Rng } from '../core/random.js';
export * from './stats.js';
export * from './synthetic.js';
export * from './datasets/index.js';
export { VOC_CLASSES, readClassList, type ClassList } from './datasets/classes.js';
export * from './anchor_search.js';
export * from './labels_plot.js';
