export * from './params.js';
export * from './layers.js';
