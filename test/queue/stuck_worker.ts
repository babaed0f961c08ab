/**
 * A queue worker that stops for good after its first image (prints `STUCK <run> <shard>` and
 * hangs), so a test can SIGKILL it in the middle of a shard. Usage: node stuck_worker.js URL.
 */
import { parseRedisUrl } from '../../src/queue/connection.js';
import { QueueWorker } from '../../src/queue/worker.js';

const url = process.argv[2];
if (!url) throw new Error('usage: stuck_worker.js redis://HOST:PORT');
await QueueWorker.start(parseRedisUrl(url), {
  threads: 1,
  stallTimeoutMs: 1000,
  afterImage: async (im) => {
    process.stdout.write(`STUCK ${im.run} ${im.shard}\n`);
    await new Promise(() => undefined); // never resolves: the test kills this process
  },
});
process.stdout.write('READY\n');
