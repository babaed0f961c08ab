/** The records of a training run's `log.jsonl`: one per step, one per validation. */
import type { CocoStats } from '../eval/coco.js';

/** One step of the JSONL log. */
export interface StepRecord {
  iter: number;
  loss: number;
  loss_cls: number;
  loss_box: number;
  lr: number;
  num_fg: number;
  /** Seconds since the run started (resumed runs continue the count). */
  time: number;
  /** Images of this step's planned batch that could not be read and were replaced (absent when none). */
  skipped?: number;
}

/** One validation of the JSONL log: the COCO stats after `iter` steps. */
export type ValRecord = { iter: number; type: 'val'; time: number } & CocoStats;

/**
 * A line of `log.jsonl` as an object, or undefined for a line that is not one: a run killed
 * mid-append leaves a torn last line, which readers of the log skip.
 */
export function parseLogLine(line: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** A loss as the log writes it: a number, or null for a non-finite one (JSON has no NaN). */
const isLoss = (v: unknown): boolean => typeof v === 'number' || v === null;

/** The per-step records of a `log.jsonl` text (validation records and torn or foreign lines left out). */
export function parseStepLog(text: string): StepRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map(parseLogLine)
    .filter((r) => r !== undefined && r.type !== 'val' && typeof r.iter === 'number' && isLoss(r.loss_cls) && isLoss(r.loss_box)) as unknown as StepRecord[];
}

/** The validation records of a `log.jsonl` text (torn or foreign lines left out). */
export function parseValLog(text: string): ValRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map(parseLogLine)
    .filter((r) => r !== undefined && r.type === 'val' && typeof r.iter === 'number' && typeof r.AP === 'number' && typeof r.AP50 === 'number') as unknown as ValRecord[];
}
