/**
 * `retinanet detect --queue URL`: the images go on a BullMQ queue in shards, any number of
 * `retinanet worker` processes detect on them, and this process writes exactly the output of a
 * local `retinanet detect` (results in input order, the image list), however many workers ran
 * and whichever of them were killed on the way.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from './command.js';
import { inferenceOptions, loadModel, numberFlag, stringFlag } from './common.js';
import { expandInputs, idsFromGt } from './inputs.js';
import { describeJob, followRun, journalPath, queueUrl, refuseWithQueue, warnFailures } from './queue_common.js';
import { checkOutputFile } from '../core/output.js';
import { writeAtomic } from '../core/atomic.js';
import { parseRedisUrl } from '../queue/connection.js';
import { type RunImage, type RunSpec, checkRunId, newRunId, shardCount } from '../queue/run.js';
import { QueueRun, assembleRun } from '../queue/producer.js';

type Values = Record<string, string | boolean | undefined>;

/** Flags that define a run: on re-attach (no images given) the stored run's are used, so these are refused. */
const RUN_DEFINING = ['weights', 'gt', 'arch', 'config', 'num-classes', 'min-size', 'max-size', 'score-thresh', 'nms-thresh', 'detections-per-img', 'max-pixels', 'shard-size'] as const;

/** `detect` with --queue (and --shard-size, --run): see the module comment. */
export async function runQueuedDetect(values: Values, positionals: readonly string[]): Promise<number> {
  const url = queueUrl(values);
  refuseWithQueue(values, {
    draw: 'draw from the results file afterwards with a local detect',
    'draw-score': 'it applies to --draw',
    shard: '--queue shards the images itself (--shard-size)',
    threads: "threads are each worker's ('retinanet worker --threads T')",
    'max-memory': "the memory budget is each worker's ('retinanet worker --max-memory SIZE')",
  });
  const target = parseRedisUrl(url);
  const runFlag = stringFlag(values, 'run');
  if (runFlag !== undefined) checkRunId(runFlag);
  const quiet = values['quiet'] === true;
  const out = stringFlag(values, 'out') ?? 'detections.json';
  checkOutputFile(out, '--out');
  const imagesOut = out.replace(/\.json$/, '') + '.images.json';

  let run: QueueRun;
  let skipped = 0;
  if (positionals.length === 0) {
    if (runFlag === undefined) throw new UserError('give at least one image, folder or list file (or --run ID with --queue to re-attach to a run)');
    const given = RUN_DEFINING.find((f) => values[f] !== undefined);
    if (given) throw new UserError(`--${given} without images: re-attaching to run ${runFlag} takes it as it was submitted (give the images too to check they are the same run)`);
    run = await QueueRun.attach(target, runFlag, { journal: journalPath(runFlag) });
    if (run.spec.kind !== 'detect') {
      await run.close();
      throw new UserError(`run ${runFlag} is an evaluation: re-attach with 'retinanet eval --queue ${url} --run ${runFlag}' and its --weights and --data`);
    }
  } else {
    const weights = stringFlag(values, 'weights');
    if (!weights) throw new UserError("--weights is required (a safetensors or .pth file with torchvision state_dict names, or a NAME of 'retinanet weights list')");
    const shardSize = numberFlag(values, 'shard-size', { integer: true, min: 1 }) ?? 16;
    const inference = inferenceOptions(values);
    const maxPixels = numberFlag(values, 'max-pixels', { integer: true, min: 1 });
    const files = expandInputs(positionals);
    const gtFile = stringFlag(values, 'gt');
    const gtIds = gtFile ? idsFromGt(gtFile) : undefined;
    if (!gtIds) checkOutputFile(imagesOut, '--out');
    // Ids and positions as a local run assigns them; images missing from --gt are skipped here, as there.
    const images: RunImage[] = [];
    for (const [index, file] of files.entries()) {
      let id = index + 1;
      if (gtIds) {
        const known = gtIds.get(path.basename(file));
        if (known === undefined) {
          process.stderr.write(`warning: ${file} is not in ${gtFile}; skipped\n`);
          skipped++;
          continue;
        }
        id = known;
      }
      images.push({ index, id, file: path.resolve(file) });
    }
    if (images.length === 0) throw new UserError('no images to detect on');
    // The model is loaded here once: bad weights or options are this command's error, not every worker's.
    const model = await loadModel(weights, values);
    let categoryIds: number[];
    try {
      model.checkOptions?.(inference);
      categoryIds = model.categoryIds ?? Array.from({ length: model.numClasses }, (_, i) => i);
    } finally {
      await model.dispose();
    }
    const { model: modelSpec, options, hash } = await describeJob(weights, values, inference, maxPixels, { categoryIds });
    const spec: RunSpec = { kind: 'detect', model: modelSpec, options, hash, idsFromGroundTruth: gtIds !== undefined, shardSize, images, created: new Date().toISOString() };
    const id = runFlag ?? newRunId();
    run = await QueueRun.submit(target, id, spec, { journal: journalPath(id) });
  }

  const reattach = `retinanet detect --queue ${url} --run ${run.id} --out ${out}`;
  try {
    const banner =
      `run ${run.id} ${run.submitted ? 'submitted' : 're-attached'}: ${run.spec.images.length} image(s) in ${shardCount(run.spec)} shard(s) of up to ${run.spec.shardSize} on ${target.display}, model ${run.spec.hash.slice(0, 12)}; ` +
      `start workers with 'retinanet worker --queue ${url}'; Ctrl-C stops waiting, '${reattach}' re-attaches\n`;
    const outcome = await followRun(run, 'detect', quiet, reattach, banner);
    if (!outcome) return 130;
    const { merged, failures } = assembleRun(run.spec, outcome.outcomes, outcome.failedShards);
    warnFailures(failures);
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    await writeAtomic(out, JSON.stringify(merged.results) + '\n');
    if (!merged.idsFromGroundTruth) {
      checkOutputFile(imagesOut, '--out');
      await writeAtomic(imagesOut, JSON.stringify(merged.images, null, 1) + '\n');
    }
    const failedCount = failures.length + skipped;
    process.stdout.write(`${merged.results.length} detections on ${merged.images.length} image(s) written to ${out} (run ${run.id}, ${shardCount(run.spec)} shard(s))${failedCount ? `; ${failedCount} image(s) skipped` : ''}\n`);
    if (outcome.failedShards.length > 0) {
      for (const f of outcome.failedShards) process.stderr.write(`error: shard ${f.shard}/${shardCount(run.spec)} failed: ${f.reason}\n`);
      process.stderr.write(`${outcome.failedShards.length} shard(s) failed; the images done are written. Fix the cause, then '${reattach}' retries the failed shards\n`);
      return 1;
    }
    await run.finish();
    return failedCount > 0 && merged.images.length === 0 ? 1 : 0;
  } finally {
    await run.close();
  }
}
