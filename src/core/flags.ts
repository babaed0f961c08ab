/**
 * Checked values of command-line style options (`parseArgs` results): numbers within a range,
 * durations, lists. Each bad value is an InputError that names the flag and what it must be,
 * for the CLI and the benchmarks alike.
 */
import { InputError } from './errors.js';

/** Option values as `node:util` parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | undefined>;
type Values = FlagValues;

/** A numeric flag, checked: `--name` must be a number (integer if asked) within [min, max]. */
export function numberFlag(values: Values, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new InputError(`--${name} needs a value`);
  const v = Number(raw);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) throw new InputError(`--${name} must be ${opts.integer ? 'an integer' : 'a number'}, got '${raw}'`);
  if (opts.min !== undefined && v < opts.min) throw new InputError(`--${name} must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new InputError(`--${name} must be <= ${opts.max}, got ${v}`);
  return v;
}

/** A duration in seconds: `900`, `900s`, `15m`, `1.5h`. */
export function durationFlag(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new InputError(`--${name} needs a value`);
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(s|m|min|h)?\s*$/.exec(raw);
  const seconds = m ? Number(m[1]) * ({ s: 1, m: 60, min: 60, h: 3600 }[m[2] ?? 's'] ?? 1) : NaN;
  if (!(seconds > 0)) throw new InputError(`--${name} must be a positive duration such as 900, 900s, 15m or 1.5h, got '${raw}'`);
  return seconds;
}

export function stringFlag(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A comma-separated list of integers (e.g. `--scale-jitter 640,672,704`). */
export function intListFlag(values: Values, name: string): number[] | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new InputError(`--${name} must be a comma-separated list of positive integers, got '${raw}'`);
  return xs;
}


/** A size in bytes: `16G`, `12.5GB`, `800M`, `800MiB`, or plain bytes. */
export function sizeFlag(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new InputError(`--${name} needs a value`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(raw);
  const bytes = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!(bytes > 0)) throw new InputError(`--${name} must be a size such as 16G or 800M, got '${raw}'`);
  return Math.floor(bytes);
}
