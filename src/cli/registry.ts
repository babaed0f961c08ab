import type { Command } from './command.js';
import { evalCommand } from './eval.js';
import { dataCommand } from './data.js';
import { trainCommand } from './train.js';
import { detectCommand } from './detect.js';
import { mergeCommand } from './merge.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { benchCommand } from './bench.js';
import { weightsCommand } from './weights.js';
import { serveCommand } from './serve.js';

/** All sub-commands, in the order `retinanet --help` lists them. Add one import + one entry per command. */
export const commands: Command[] = [
  demoCommand,
  trainCommand,
  detectCommand,
  mergeCommand,
  exportCommand,
  evalCommand,
  dataCommand,
  weightsCommand,
  serveCommand,
  benchCommand,
];
