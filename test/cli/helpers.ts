/**
 * Fixtures of the CLI tests: a tiny randomly initialised model saved like `train` saves one
 * (weights + `.json` sidecar), small generated PNGs, and a runner for the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { RetinaNet } from '../../src/model/model.js';
import { demoConfig } from '../../src/train/demo_config.js';

/** The built CLI entry point (dist/src/cli/main.js). */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `retinanet ...args` in a child process (so exit codes and stderr are the real ones). */
export function cli(...args: string[]): CliRun {
  return cliIn(undefined, ...args);
}

/** Runs `retinanet ...args` in a child process started in `cwd`. */
export function cliIn(cwd: string | undefined, ...args: string[]): CliRun {
  // CI=1 keeps the progress bar to plain lines even if the test runner has a terminal.
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The repository root (for files such as .npmrc). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A stack-trace line such as `at run (file.js:12:3)`: user errors must never print one. */
export const STACK_LINE = /^\s+at .*:\d+:\d+\)?$/m;

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `rn-cli-${prefix}-`));
}

/**
 * Saves the demo architecture (ResNet-18, 64-channel FPN, 4 synthetic classes) at 64 px,
 * randomly initialised, to `dir/tiny.safetensors` + `dir/tiny.json`; returns the weights path.
 * 64 px keeps every forward pass to milliseconds.
 */
export async function tinyModel(dir: string): Promise<string> {
  const cfg = demoConfig(64);
  const model = new RetinaNet(cfg, 0);
  const file = path.join(dir, 'tiny.safetensors');
  await model.saveWeights(file, { classNames: cfg.classNames, categoryIds: [1, 2, 3, 4] });
  await model.dispose();
  return file;
}

/** Writes a `width` x `height` RGB PNG of seeded noise with a bright square in it. */
export async function noisePng(file: string, width: number, height: number, seed: number): Promise<void> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < px.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    px[i] = s >>> 24;
  }
  for (let y = height >> 2; y < (3 * height) >> 2; y++) for (let x = width >> 2; x < (3 * width) >> 2; x++) px.fill(250, 3 * (y * width + x), 3 * (y * width + x) + 3);
  await sharp(px, { raw: { width, height, channels: 3 } }).png().toFile(file);
}

/** A file with an image extension that is not an image. */
export function corruptPng(file: string): void {
  writeFileSync(file, 'this is not a PNG\n');
}
