import type { Command } from './command.js';
import { evalCommand } from './eval.js';
import { dataCommand } from './data.js';
import { anchorsCommand } from './anchors.js';
import { trainCommand } from './train.js';
import { detectCommand } from './detect.js';
import { mergeCommand } from './merge.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { benchCommand } from './bench.js';
import { weightsCommand } from './weights.js';
import { workerCommand } from './worker.js';
import { exportTorchCommand } from './export_torch.js';
import { serveCommand } from './serve.js';

/** All sub-commands, in the order `retinanet --help` lists them. Add one import + one entry per command. */
export const commands: Command[] = [
  demoCommand,
  trainCommand,
  detectCommand,
  mergeCommand,
  workerCommand,
  exportCommand,
  exportTorchCommand,
  evalCommand,
  dataCommand,
  anchorsCommand,
  weightsCommand,
  serveCommand,
  benchCommand,
];
