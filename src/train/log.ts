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

/** The per-step records of a `log.jsonl` text (validation records left out). */
export function parseStepLog(text: string): StepRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Partial<StepRecord> & { type?: string })
    .filter((r) => r.type !== 'val' && r.loss_cls !== undefined) as StepRecord[];
}

/** The validation records of a `log.jsonl` text. */
export function parseValLog(text: string): ValRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Partial<ValRecord>)
    .filter((r) => r.type === 'val') as ValRecord[];
}
