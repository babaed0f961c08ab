/**
 * The report of a training run, written after its last step (never during training, so steps
 * are not slowed): the final model is evaluated on the validation set and `report.html` gathers
 * `results.png`, the evaluation figures (PR, F1 / P / R against the score, confusion matrix,
 * error analysis), the validation image grids, the model's config and the command.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { SampleSource } from '../data/source.js';
import type { CocoEvalResult } from '../eval/coco.js';
import type { DetectionAnalysis } from '../eval/report.js';
import { writeModelReport } from '../model/report.js';
import type { PageSection } from '../plot/page.js';
import type { TrainHook, TrainResult, Trainer } from './trainer.js';

export interface ReportHookOptions {
  /** The command that started the run, shown in the report. */
  command?: string;
  /** Score threshold of the confusion matrix and image grids (default: the best-F1 threshold). */
  reportScore?: number;
  /** Images per grid (default 8). */
  gridImages?: number;
  /** Told when the report starts and when it is written (the CLI prints it). */
  onProgress?: (message: string) => void;
}

/** Writes the run's `report.html` (and the figures) into `outDir` after training on `val`. */
export class ReportHook implements TrainHook {
  /** The evaluation behind the report, once written. */
  report?: { result: CocoEvalResult; analysis: DetectionAnalysis; html: string };

  constructor(
    private readonly outDir: string,
    private readonly val: SampleSource,
    private readonly opts: ReportHookOptions = {},
  ) {}

  async afterTrain(t: Trainer, result: TrainResult): Promise<void> {
    if (result.stopped !== 'done') return;
    // The run itself is done: a report that fails must not cost the hooks after this one
    // (the final weights), so the failure becomes a warning.
    try {
      await this.write(t);
    } catch (err) {
      t.warn(`report not written: ${(err as Error).message}`);
    }
  }

  private async write(t: Trainer): Promise<void> {
    this.opts.onProgress?.(`writing the report: evaluating the final model on ${this.val.length} validation images...`);
    // Model labels are matched to the validation set's categories by class name, as in validation.
    const byName = new Map(this.val.classNames.map((name, i) => [name, this.val.categoryIds[i]!]));
    const categoryIds = Array.from({ length: t.model.config.numClasses }, (_, label) => byName.get(t.train.classNames[label] ?? '') ?? -1);
    const before: PageSection[] = existsSync(path.join(this.outDir, 'results.png'))
      ? [{ heading: 'Training', text: `${t.iteration} iterations; losses, learning rate and validation AP (results.csv holds the numbers).`, figures: [{ src: 'results.png', href: 'results.svg' }] }]
      : [];
    const after: PageSection[] = [{ heading: 'Config', pre: JSON.stringify(t.model.config, null, 1) }];
    if (this.opts.command) after.push({ heading: 'Command', pre: this.opts.command });
    const { result: evalResult, analysis, files } = await writeModelReport(this.outDir, t.model, this.val, {
      threads: t.opts.threads,
      feedParams: true,
      categoryIds,
      onSkip: t.opts.strict ? undefined : (message) => t.warn(`report: ${message}`),
      reportScore: this.opts.reportScore,
      gridImages: this.opts.gridImages,
      title: `Training run: ${t.model.config.name}, ${t.iteration} iterations`,
      sectionsBefore: before,
      sectionsAfter: after,
    });
    await t.model.dispose();
    this.report = { result: evalResult, analysis, html: path.join(this.outDir, files.html) };
    const b = analysis.curves.best;
    this.opts.onProgress?.(`report: ${this.report.html} (AP ${evalResult.stats.AP.toFixed(3)}; best F1 ${b.f1.toFixed(3)} at score threshold ${b.threshold.toFixed(2)})`);
  }
}
