/** Files in and out: images (decode, encode), safetensors, drawings of detections. */
export * from './image.js';
export * from './safetensors.js';
export * from './draw.js';
export * from './grid.js';
