/**
 * `retinanet worker --queue URL`: processes shards of `detect --queue` and `eval --queue` runs
 * until stopped. Any number of workers, on any machines that see the images and weights at the
 * same paths; each loads a model once and keeps it for the next shards of any run.
 */
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { numberFlag, sizeFlag, stringFlag, weightsFile } from './common.js';

const help = `Usage: retinanet worker --queue redis://HOST:PORT [options]

Takes shards of 'retinanet detect --queue' and 'retinanet eval --queue' runs off the queue and
detects on their images, until stopped (Ctrl-C or SIGTERM: the shards in progress finish first;
twice: at once, and other workers take them over after the stall timeout). Start any number, on
any machines that see the images and the weights at the paths the producer gave (shared
storage): a worker hashes the weights (and their sidecar and config) and refuses a shard whose
model has another SHA-256 than its own files, recording the reason in the shard's job.

Each image's outcome is written to Redis when it is done, keyed by image: a shard taken over
from a killed worker skips the images already done and never duplicates a detection. An image
that cannot be read is recorded as failed with its reason and not retried.

Options:
  --queue URL          Redis of the queue, redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS)
  --concurrency N      shards at once (default 1): decoding and Redis traffic overlap with
                       inference, which runs one image at a time per model
  --threads T          threads for ONNX Runtime per inference (default: all cores). With several
                       workers on one machine, give each cores / workers
  --stall-timeout S    seconds after which a shard whose worker stopped renewing its lock
                       (killed, hung, cut off) goes to another worker (default 30); every worker
                       also checks this often. A shard that stalls 3 times is failed
  --max-memory SIZE    memory budget of the compiled graphs, e.g. 8G (default: 80% of the machine's memory)
  --name NAME          this worker's name in job records (default HOST:PID)
  --quiet              print only errors (default: a line per shard)

Example (one Redis, two machines, one producer):
  redis-server --appendonly yes --port 6379 &
  retinanet worker --queue redis://10.0.0.5:6379 --threads 8        # on each machine
  retinanet detect /shared/photos --weights /shared/model.safetensors --queue redis://10.0.0.5:6379 --out dets.json`;

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      queue: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      'stall-timeout': { type: 'string' },
      'max-memory': { type: 'string' },
      name: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  const url = stringFlag(values, 'queue');
  if (!url) throw new UserError(`--queue redis://HOST:PORT is required\n\n${help}`);
  const concurrency = numberFlag(values, 'concurrency', { integer: true, min: 1, max: 64 }) ?? 1;
  const threads = numberFlag(values, 'threads', { integer: true, min: 1 });
  const stall = numberFlag(values, 'stall-timeout', { min: 1 }) ?? 30;
  const maxMemory = sizeFlag(values, 'max-memory');
  const quiet = values.quiet === true;
  const { parseRedisUrl } = await import('../queue/connection.js');
  const { QueueWorker } = await import('../queue/worker.js');
  const target = parseRedisUrl(url);
  const say = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const worker = await QueueWorker.start(target, {
    concurrency,
    threads,
    stallTimeoutMs: stall * 1000,
    maxMemory,
    name: stringFlag(values, 'name'),
    resolveWeights: (spec) => weightsFile(spec, '--weights', 'retinanet', true),
    onEvent: (e) => {
      switch (e.type) {
        case 'shard-start':
          if (!quiet) say(`run ${e.run} shard ${e.shard}/${e.shards}: ${e.images} image(s)${e.alreadyDone ? `, ${e.alreadyDone} already done (taken over)` : ''}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
          break;
        case 'shard-done':
          if (!quiet) say(`run ${e.run} shard ${e.shard}/${e.shards}: done, ${e.processed} image(s) in ${e.seconds.toFixed(1)} s${e.failed ? `, ${e.failed} failed` : ''}`);
          break;
        case 'shard-failed':
          say(`error: run ${e.run} shard ${e.shard}/${e.shards}: ${e.error}${e.final ? '' : ' (will be retried)'}`);
          break;
        case 'image-failed':
          say(`warning: ${e.error}; recorded as failed`);
          break;
        case 'model-loaded':
          if (!quiet) say(`loaded ${e.file} (model ${e.hash.slice(0, 12)}) in ${e.seconds.toFixed(1)} s`);
          break;
        case 'error':
          say(`error: ${e.message}`);
          break;
      }
    },
  });
  if (!quiet) say(`worker ${worker.name} waiting for shards on ${target.display} (concurrency ${concurrency}${threads ? `, ${threads} thread(s)` : ''}, stall timeout ${stall} s)`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (name: NodeJS.Signals): void => {
      if (stopping) {
        say(`${name} again: stopping now; the shards in progress go to other workers after the stall timeout`);
        void worker.close(true).finally(() => process.exit(130));
        return;
      }
      stopping = true;
      say(`${name}: finishing the shards in progress (${name} again to stop at once)`);
      void worker.close().then(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  if (!quiet) say('worker stopped');
  return 0;
}

export const workerCommand: Command = { name: 'worker', summary: "process shards of 'detect --queue' and 'eval --queue' runs (BullMQ on Redis)", help, run };
