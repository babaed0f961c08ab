/**
 * The standard hooks of a training run (detectron2's `engine/hooks.py` in miniature): the
 * learning-rate schedule with the time budget, the NaN guard, the JSONL log and loss plot,
 * validation keeping the best weights, and checkpoints with the final weights.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../core/atomic.js';
import { InputError } from '../core/errors.js';
import type { CocoStats } from '../eval/coco.js';
import { evaluateModel } from '../model/evaluate.js';
import type { SampleSource } from '../data/source.js';
import { saveCheckpoint, type TrainState } from './checkpoint.js';
import { assertNoRun } from './run_dir.js';
import { type StepRecord, parseLogLine, parseStepLog, parseValLog } from './log.js';
import { resultsCsv, resultsSpec } from './plot.js';
import { writeFigure } from '../plot/render.js';
import { type LrSchedule, learningRate, paperSchedule } from './schedule.js';
import { TimeBudget } from './time_budget.js';
import { NonFiniteLossError, type ResolvedTrainOptions, type StepLosses, type TrainHook, type TrainResult, type Trainer } from './trainer.js';

/**
 * The paper's schedule (warmup, x0.1 at 2/3 and 8/9) over the run's length. With a time budget,
 * the length is re-fitted after every step from the measured step time, and the schedule with
 * it until its first x0.1 point; from there only the end moves (time_budget.ts says why).
 */
export class ScheduleHook implements TrainHook {
  private schedule: LrSchedule;
  /** The length the schedule's warmup and x0.1 points are placed for. */
  private scheduleIters: number;
  /** Time-budget runs: the schedule no longer follows the planned length (its first x0.1 point was reached). */
  private scheduleFrozen = false;
  private readonly budget: TimeBudget | undefined;
  private lastTime = 0;

  constructor(private readonly o: Pick<ResolvedTrainOptions, 'lr' | 'iters' | 'warmupIters' | 'steps' | 'timeBudget'>) {
    this.scheduleIters = o.iters;
    this.schedule = this.scheduleFor(o.iters);
    this.budget = o.timeBudget !== undefined ? new TimeBudget(o.timeBudget, o.iters) : undefined;
  }

  private scheduleFor(iters: number): LrSchedule {
    const base = paperSchedule(this.o.lr, iters, this.o.warmupIters);
    return this.o.steps ? { ...base, steps: this.o.steps } : base;
  }

  beforeTrain(t: Trainer): void {
    this.lastTime = t.elapsed();
  }

  beforeStep(t: Trainer): void {
    t.lr = learningRate(this.schedule, t.iteration);
  }

  afterStep(t: Trainer, record: StepRecord): void {
    if (this.budget) {
      this.budget.record(record.time - this.lastTime);
      t.planned = this.budget.fit(t.iteration, t.elapsed());
      if (!this.scheduleFrozen && this.budget.steady()) {
        this.scheduleIters = t.planned;
        this.schedule = this.scheduleFor(t.planned);
        if (t.iteration >= (this.schedule.steps[0] ?? Infinity)) this.scheduleFrozen = true;
      }
    }
    this.lastTime = record.time;
  }

  state(t: Trainer): Partial<TrainState> {
    return { plan: { planned: t.planned, scheduleIters: this.scheduleIters, scheduleFrozen: this.scheduleFrozen } };
  }

  loadState(t: Trainer, state: TrainState): void {
    if (!state.plan) return;
    // A budget run's length is what was fitted so far; a fixed-length run's is its `iters`
    // (which a resume may have made longer).
    if (this.budget) t.planned = state.plan.planned;
    this.scheduleIters = state.plan.scheduleIters;
    this.scheduleFrozen = state.plan.scheduleFrozen;
    this.schedule = this.scheduleFor(this.scheduleIters);
  }
}

/** Stops the run before the update when a loss is not finite, naming the step and the last checkpoint. */
export class NanGuard implements TrainHook {
  afterLoss(t: Trainer, { classification, box }: StepLosses): void {
    if (Number.isFinite(classification) && Number.isFinite(box)) return;
    const where = t.lastCheckpoint ? `; the last good checkpoint (step ${t.lastCheckpoint.iteration}) is in ${t.lastCheckpoint.dir}` : '; no checkpoint was saved yet';
    throw new NonFiniteLossError(
      `loss became ${Number.isNaN(classification + box) ? 'NaN' : 'infinite'} at step ${t.iteration} (classification ${classification}, box ${box}); weights were not updated${where}`,
    );
  }
}

/**
 * `log.jsonl` (a line per step and per validation) and, at the end, `results.csv` and
 * `results.png` / `results.svg` (losses, learning rate, validation AP) from the whole log.
 */
export class JsonlLogHook implements TrainHook {
  readonly file: string;
  private resumed = false;

  constructor(private readonly outDir: string) {
    this.file = path.join(outDir, 'log.jsonl');
  }

  /** A new run refuses a folder holding another run's files: its log would be appended to. */
  async beforeTrain(): Promise<void> {
    if (!this.resumed) assertNoRun(this.outDir);
    await mkdir(this.outDir, { recursive: true });
  }

  async afterStep(_t: Trainer, record: StepRecord): Promise<void> {
    await appendFile(this.file, JSON.stringify(record) + '\n');
  }

  async afterValidation(t: Trainer, stats: CocoStats, time: number): Promise<void> {
    await appendFile(this.file, JSON.stringify({ iter: t.iteration, type: 'val', ...stats, time }) + '\n');
  }

  /** A resumed run's log is cut back to the checkpoint, so steps after it are not logged twice. */
  async loadState(_t: Trainer, state: TrainState): Promise<void> {
    this.resumed = true;
    if (!existsSync(this.file)) return;
    // A step record's `iter` is the step's index (the checkpoint holds steps 0 .. iteration - 1);
    // a validation record's is the number of steps done when it ran. A run killed between a
    // step's log line and its checkpoint leaves a line that the resumed run writes again.
    // A line torn by a kill mid-write (or any line that is not a record) is dropped too.
    const kept = (l: string): boolean => {
      const r = parseLogLine(l);
      if (!r || typeof r.iter !== 'number') return false;
      return r.type === 'val' ? r.iter <= state.iteration : r.iter < state.iteration;
    };
    const lines = (await readFile(this.file, 'utf8')).split('\n').filter((l) => l.trim() && kept(l));
    await writeFile(this.file, lines.map((l) => l + '\n').join(''));
  }

  async afterTrain(_t: Trainer, result: TrainResult): Promise<void> {
    if (result.stopped === 'nan' || !existsSync(this.file)) return;
    const text = await readFile(this.file, 'utf8');
    const records = parseStepLog(text);
    const vals = parseValLog(text);
    await writeAtomic(path.join(this.outDir, 'results.csv'), resultsCsv(records, vals));
    if (records.length > 0) await writeFigure(this.outDir, 'results', resultsSpec(records, vals));
  }
}

/**
 * COCO AP on a validation set every `every` iterations and at the end; the best weights so far
 * in `outDir/best.safetensors` when there is an output folder. Model labels are matched to the
 * validation set's categories by class name, so a validation split that lacks a class (or
 * orders them differently) is still scored right.
 */
export class ValidationHook implements TrainHook {
  /** Validation-set category id per model label (-1: a class the validation set lacks). */
  categoryIds: number[] = [];

  constructor(
    private readonly val: SampleSource,
    private readonly every: number,
    private readonly outDir?: string,
  ) {}

  beforeTrain(t: Trainer): void {
    const byName = new Map(this.val.classNames.map((name, i) => [name, this.val.categoryIds[i]!]));
    this.categoryIds = Array.from({ length: t.model.config.numClasses }, (_, label) => byName.get(t.train.classNames[label] ?? '') ?? -1);
    if (this.categoryIds.every((id) => id < 0)) {
      throw new InputError(`the validation set's classes (${this.val.classNames.slice(0, 8).join(', ')}) share no name with the training set's (${t.train.classNames.slice(0, 8).join(', ')})`);
    }
  }

  async afterStep(t: Trainer): Promise<void> {
    if (t.iteration % this.every !== 0 && !t.finished()) return;
    const time = t.elapsed();
    const { result } = await evaluateModel(t.model, this.val, {
      threads: t.opts.threads,
      feedParams: true,
      categoryIds: this.categoryIds,
      onSkip: t.opts.strict ? undefined : (message) => t.warn(`validation: ${message}`),
    });
    // The inference sessions of the validation images' shapes are not needed until the next
    // validation: their memory goes back to training.
    await t.model.dispose();
    const stats = result.stats;
    await t.emitValidation(stats, time);
    if (!t.best || stats.AP > t.best.ap) {
      t.best = { ap: stats.AP, iteration: t.iteration };
      if (this.outDir !== undefined) await t.model.saveWeights(path.join(this.outDir, 'best.safetensors'), { iteration: t.iteration, AP: stats.AP });
    }
  }
}

/**
 * Resumable checkpoints in `outDir/checkpoint` every `every` iterations, at the end and when
 * the run is stopped; the final weights in `outDir/model.safetensors` unless the run ended on a
 * non-finite loss.
 */
export class CheckpointHook implements TrainHook {
  readonly dir: string;

  constructor(
    private readonly outDir: string,
    private readonly every: number,
  ) {
    this.dir = path.join(outDir, 'checkpoint');
  }

  private async save(t: Trainer): Promise<void> {
    await saveCheckpoint(this.dir, t.checkpointState(), t.model.store.values, t.model.parameterShapes(), t.sgd.momentum);
    t.lastCheckpoint = { iteration: t.iteration, dir: this.dir };
  }

  async afterStep(t: Trainer): Promise<void> {
    if (t.iteration % this.every !== 0 && !t.finished() && !t.stopRequested()) return;
    await this.save(t);
  }

  /** An error ended the run: the last completed step is saved, unless it already was. */
  async onError(t: Trainer): Promise<void> {
    if (t.lastCheckpoint?.iteration === t.iteration || t.iteration === 0) return;
    await this.save(t);
  }

  async afterTrain(t: Trainer, result: TrainResult): Promise<void> {
    if (result.stopped === 'nan') return;
    await t.model.saveWeights(path.join(this.outDir, 'model.safetensors'), { iteration: t.iteration });
  }
}

/**
 * The hooks a run gets from its options, in order: schedule, NaN guard, log, the caller's
 * hooks, validation, checkpoints (validation before the checkpoint, which records the best AP).
 */
export function defaultHooks(o: ResolvedTrainOptions): TrainHook[] {
  const hooks: TrainHook[] = [new ScheduleHook(o), new NanGuard()];
  if (o.outDir !== undefined) hooks.push(new JsonlLogHook(o.outDir));
  hooks.push(...(o.hooks ?? []));
  if (o.val) hooks.push(new ValidationHook(o.val, o.valEvery, o.outDir));
  if (o.outDir !== undefined) hooks.push(new CheckpointHook(o.outDir, o.checkpointEvery));
  return hooks;
}
