import type { Command } from './command.js';
import { evalCommand } from './eval.js';
import { dataCommand } from './data.js';

/** All sub-commands, in the order `retinanet --help` lists them. Add one import + one entry per command. */
export const commands: Command[] = [
  dataCommand,
  evalCommand,
];
