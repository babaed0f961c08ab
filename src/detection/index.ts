/** Host-side RetinaNet detection core: anchors, box ops, box coder, matcher, NMS, post-processing. */
export * from './anchors.js';
export * from './boxes.js';
export * from './box_coder.js';
export * from './matcher.js';
export * from './anchor_index.js';
export * from './targets.js';
export * from './nms.js';
export * from './postprocess.js';
export * from './losses.js';
export * from './loss_targets.js';
export * from './ohem.js';
