#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.js';
import { InputError } from '../core/errors.js';
import { TrainingFailedError } from './train_hooks.js';
import { commands } from './registry.js';

const VERSION = '0.1.0';

export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    `retinanet ${VERSION} - RetinaNet (focal loss) object detection in TypeScript`,
    '',
    'Usage: retinanet <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    "Run 'retinanet <command> --help' (or 'retinanet help <command>') for a command's options.",
  ].join('\n');
}

/** Entry point of the `retinanet` CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0] !== undefined) {
    const command = commands.find((c) => c.name === rest[0]);
    if (!command) {
      console.error(`retinanet help: unknown command '${rest[0]}'\n\n${usage()}`);
      return 2;
    }
    console.log(command.help);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(VERSION);
    return 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`retinanet: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log((await command.helpFor?.(rest)) ?? command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof InputError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`retinanet ${name}: ${err.message}`);
      return 2;
    }
    if (err instanceof TrainingFailedError) {
      // What failed and what was saved, in one line; the cause's stack for a bug report.
      console.error(`retinanet ${name}: ${err.message}`);
      if (process.env['RETINANET_DEBUG']) console.error(err.cause);
      return 1;
    }
    throw err;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
