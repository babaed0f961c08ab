/**
 * `retinanet eval --weights W --data D --queue URL`: the dataset's images go on the queue in
 * shards, `retinanet worker` processes detect on them, and this process scores the merged
 * results on the dataset's annotations: the numbers of a local `eval --weights W --data D`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './command.js';
import { checkWeightsSpec, inferenceOptions, loadModel, loadSource, numberFlag, stringFlag } from './common.js';
import { describeJob, followRun, journalPath, queueUrl, refuseWithQueue } from './queue_common.js';
import { writeAtomic } from '../core/atomic.js';
import { cocoGroundTruth } from '../data/source.js';
import { type CocoEvalResult, evaluateCoco } from '../eval/coco.js';
import type { CocoDataset, CocoResult } from '../eval/types.js';
import { labelCategories } from '../model/labels.js';
import { parseRedisUrl } from '../queue/connection.js';
import { type RunSpec, checkRunId, newRunId, shardCount } from '../queue/run.js';
import { QueueRun, assembleRun } from '../queue/producer.js';

type Values = Record<string, string | boolean | undefined>;

/** `eval` with --queue: see the module comment. `printCoco` prints the result as `eval` does (--json, --per-class, --report). */
export async function runQueuedEval(v: Values, printCoco: (result: CocoEvalResult, v: Values, input: { gt: CocoDataset; dets: CocoResult[] }) => Promise<void>): Promise<number> {
  const url = queueUrl(v);
  refuseWithQueue(v, {
    gt: 'a queued evaluation runs a model on --data',
    dets: 'a queued evaluation runs a model on --data (score a results file without --queue)',
    'voc-gt': 'a queued evaluation is COCO evaluation of --weights on --data',
    'voc-dets': 'a queued evaluation is COCO evaluation of --weights on --data',
    'img-ids': 'use --max-images or a --split',
    'cat-ids': 'evaluate the merged --save-dets file with --cat-ids instead',
    shard: '--queue shards the images itself (--shard-size)',
    threads: "threads are each worker's ('retinanet worker --threads T')",
    'max-memory': "the memory budget is each worker's ('retinanet worker --max-memory SIZE')",
  });
  const target = parseRedisUrl(url);
  const weights = stringFlag(v, 'weights');
  const data = stringFlag(v, 'data');
  if (!weights || !data) throw new UserError('eval --queue needs --weights W and --data DATASET (also to re-attach: the dataset holds the ground truth)');
  if (data === 'synthetic') throw new UserError("--data synthetic is generated in memory, so workers cannot read its images: write it to disk first ('retinanet data' or writeSyntheticCoco) or evaluate without --queue");
  const runFlag = stringFlag(v, 'run');
  if (runFlag !== undefined) checkRunId(runFlag);
  checkWeightsSpec(weights, '--weights');
  const shardSize = numberFlag(v, 'shard-size', { integer: true, min: 1 }) ?? 16;
  const maxImages = numberFlag(v, 'max-images', { integer: true, min: 1 });
  const maxPixels = numberFlag(v, 'max-pixels', { integer: true, min: 1 });
  const inference = inferenceOptions(v);
  const saveDets = stringFlag(v, 'save-dets');
  const quiet = v['quiet'] === true;

  const source = await loadSource(data, v);
  const dataset = source.dataset;
  if (!dataset) throw new UserError(`--data ${data}: its images are not files workers can read`);
  const model = await loadModel(weights, v);
  let categoryIds: number[];
  try {
    model.checkOptions?.(inference);
    const mapping = labelCategories(model.numClasses, model.classNames, source);
    if (mapping.note) process.stderr.write(`note: ${mapping.note}\n`);
    categoryIds = [...mapping.categoryIds];
  } finally {
    await model.dispose();
  }
  const count = Math.min(source.length, maxImages ?? Infinity);
  const images = Array.from({ length: count }, (_, i) => ({ index: i, id: source.imageId(i), file: path.resolve(dataset.images[i]!.file) }));
  const { model: modelSpec, options, hash } = await describeJob(weights, v, inference, maxPixels, { categoryIds, dropNegative: true });
  const spec: RunSpec = { kind: 'eval', model: modelSpec, options, hash, idsFromGroundTruth: true, shardSize, images, created: new Date().toISOString() };
  const id = runFlag ?? newRunId();
  const run = await QueueRun.submit(target, id, spec, { journal: journalPath(id) });
  const reattach = `the same 'retinanet eval' command with --run ${run.id}`;
  try {
    const banner =
      `run ${run.id} ${run.submitted ? 'submitted' : 're-attached'}: ${images.length} image(s) in ${shardCount(spec)} shard(s) of up to ${shardSize} on ${target.display}, model ${spec.hash.slice(0, 12)}; ` +
      `start workers with 'retinanet worker --queue ${url}'; Ctrl-C stops waiting, ${reattach} re-attaches\n`;
    const outcome = await followRun(run, 'eval', quiet, reattach, banner);
    if (!outcome) return 130;
    const { merged, processed, failures } = assembleRun(run.spec, outcome.outcomes, outcome.failedShards);
    for (const f of failures.slice(0, 20)) process.stderr.write(`warning: ${f.error}; left out of the evaluation\n`);
    if (failures.length > 20) process.stderr.write(`warning: ... and ${failures.length - 20} more image(s) left out of the evaluation\n`);
    if (saveDets) {
      await mkdir(path.dirname(path.resolve(saveDets)), { recursive: true });
      await writeAtomic(saveDets, JSON.stringify(merged.results) + '\n');
      process.stderr.write(`${merged.results.length} detections on ${images.length} image(s) written to ${saveDets}\n`);
    }
    if (outcome.failedShards.length > 0) {
      for (const f of outcome.failedShards) process.stderr.write(`error: shard ${f.shard}/${shardCount(spec)} failed: ${f.reason}\n`);
      process.stderr.write(`${outcome.failedShards.length} shard(s) failed, so there are no numbers for the whole dataset. Fix the cause, then ${reattach} retries them\n`);
      return 1;
    }
    const gt = await cocoGroundTruth(source, processed);
    await printCoco(evaluateCoco(gt, merged.results), v, { gt, dets: merged.results });
    await run.finish();
    return 0;
  } finally {
    await run.close();
  }
}
