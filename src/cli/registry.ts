import type { Command } from './command.js';

/** All sub-commands, in the order `retinanet --help` lists them. Add one import + one entry per command. */
export const commands: Command[] = [];
