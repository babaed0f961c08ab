/** `retinanet-ts/plot`: Vega-Lite chart builders rendered to SVG and PNG, and the HTML report page. */
export * from './render.js';
export * from './charts.js';
export * from './page.js';
