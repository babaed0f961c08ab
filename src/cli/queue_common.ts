/**
 * What `detect --queue` and `eval --queue` share: the flags, where the producer's journal goes,
 * and following a run with one progress bar over every worker (Ctrl-C stops the following
 * only: the workers go on, and the same command with `--run ID` re-attaches).
 */
import path from 'node:path';
import { UserError } from './command.js';
import { ProgressBar } from './progress.js';
import { configSources, stringFlag, weightsFile } from './common.js';
import type { FlagValues } from '../core/flags.js';
import { isOnnxModelFile } from '../model/detector.js';
import { type JobOptions, type ModelSpec, contentHash, describeModel } from '../queue/model_spec.js';
import { weightsHome } from '../model/pretrained.js';
import type { QueueRun, RunOutcome } from '../queue/producer.js';

/** parseArgs definitions of the queue flags (detect, eval). */
export const QUEUE_FLAGS = {
  queue: { type: 'string' },
  'shard-size': { type: 'string' },
  run: { type: 'string' },
} as const;

/** Help lines of the queue flags. */
export const QUEUE_HELP = `Queue (sharded over any number of 'retinanet worker' processes, see docs/scaling.md):
  --queue URL              Redis of a BullMQ queue, redis://HOST:PORT[/DB]: the images are put
                           on it in shards and this process waits, with one progress bar over
                           every worker, then writes what a single run writes. Workers read the
                           images and weights at the same paths (shared storage) and check the
                           weights' SHA-256
  --shard-size N           images per shard (default 16)
  --run ID                 the run's id (default: a new one, printed): with the same command,
                           or with only --queue, --run and the outputs, re-attaches to the run
                           (after Ctrl-C, a crash, a Redis restart) and retries failed shards`;

/** Whether any queue flag was given. */
export function queueRequested(values: Record<string, unknown>): boolean {
  return Object.keys(QUEUE_FLAGS).some((k) => values[k] !== undefined);
}

/** The queue URL, required once any queue flag is given. */
export function queueUrl(values: Record<string, string | boolean | undefined>): string {
  const url = stringFlag(values, 'queue');
  if (url === undefined) throw new UserError('--run and --shard-size need --queue redis://HOST:PORT');
  return url;
}

/** Refuses flags that do not apply with --queue, each with the reason. */
export function refuseWithQueue(values: Record<string, unknown>, flags: Readonly<Record<string, string>>): void {
  for (const [flag, why] of Object.entries(flags)) if (values[flag] !== undefined) throw new UserError(`--${flag} cannot be combined with --queue: ${why}`);
}

/** Where the producer journals a run's finished shards: `$RETINANET_HOME/runs/<id>.jsonl`. */
export function journalPath(runId: string): string {
  return path.join(weightsHome(), 'runs', `${runId}.jsonl`);
}

/**
 * Follows `run` to its end with a progress bar (unless quiet); notes go above it. Ctrl-C or
 * SIGTERM stops the following and returns undefined, after saying how to re-attach. `banner`
 * (unless quiet) is written once Ctrl-C is handled, so whoever reacts to it cannot interrupt the
 * process before its handler is in place.
 */
export async function followRun(run: QueueRun, label: string, quiet: boolean, reattach: string, banner?: string): Promise<RunOutcome | undefined> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (banner !== undefined && !quiet) process.stderr.write(banner);
  const bar = quiet ? undefined : new ProgressBar(run.spec.images.length, label);
  const say = (line: string): void => (bar ? bar.log(line) : void process.stderr.write(`${line}\n`));
  try {
    return await run.wait({
      signal: controller.signal,
      onProgress: (p) => bar?.update(p.done, `${p.shardsDone}/${p.shards} shards${p.failed ? `, ${p.failed} failed image(s)` : ''}${p.shardsFailed ? `, ${p.shardsFailed} failed shard(s)` : ''}`),
      onNote: (n) => say(`${n.kind === 'shard-failed' ? 'error' : 'note'}: ${n.message}`),
    });
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    process.stderr.write(`stopped following run ${run.id}; the workers go on. Re-attach with: ${reattach}\n`);
    return undefined;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    bar?.done();
  }
}

/** The first `max` failures as warning lines, then a count of the rest. */
export function warnFailures(failures: readonly { error: string }[], max = 20): void {
  for (const f of failures.slice(0, max)) process.stderr.write(`warning: ${f.error}; skipped\n`);
  if (failures.length > max) process.stderr.write(`warning: ... and ${failures.length - max} more image(s) skipped\n`);
}

/**
 * What travels with every shard of a run: the model by content hash and the options that change
 * its output (only those given, so a worker's defaults fill the rest), and their joint hash.
 */
export async function describeJob(
  weights: string,
  values: FlagValues,
  inference: { scoreThresh?: number; nmsThresh?: number; detectionsPerImg?: number },
  maxPixels: number | undefined,
  extra: Pick<JobOptions, 'categoryIds'> & Partial<JobOptions>,
): Promise<{ model: ModelSpec; options: JobOptions; hash: string }> {
  const file = isOnnxModelFile(weights) ? weights : await weightsFile(weights, '--weights', 'retinanet', true);
  const model = await describeModel(weights, file, configSources(values));
  const options: JobOptions = {
    ...(inference.scoreThresh !== undefined ? { scoreThresh: inference.scoreThresh } : {}),
    ...(inference.nmsThresh !== undefined ? { nmsThresh: inference.nmsThresh } : {}),
    ...(inference.detectionsPerImg !== undefined ? { detectionsPerImg: inference.detectionsPerImg } : {}),
    ...(maxPixels !== undefined ? { maxPixels } : {}),
    ...extra,
  };
  return { model, options, hash: contentHash(model, options) };
}
