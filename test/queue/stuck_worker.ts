/**
 * Queue workers for tests. `node stuck_worker.js URL`: stops for good after its first image
 * (prints `STUCK <run> <shard>` and hangs), so a test can SIGKILL it in the middle of a shard.
 * `node stuck_worker.js URL MS`: waits MS milliseconds after each image (prints `IMAGE <index>`),
 * so a test can act while a run is part done.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRedisUrl } from '../../src/queue/connection.js';
import { QueueWorker } from '../../src/queue/worker.js';

const [url, slowMs] = process.argv.slice(2);
// `node --test dist/test/` runs every file under test/ as a test file: without a URL (that run)
// this file does nothing.
if (url !== undefined) {
  await QueueWorker.start(parseRedisUrl(url), {
    threads: 1,
    stallTimeoutMs: 1000,
    afterImage: async (im) => {
      if (slowMs !== undefined) {
        process.stdout.write(`IMAGE ${im.index}\n`);
        await sleep(Number(slowMs));
        return;
      }
      process.stdout.write(`STUCK ${im.run} ${im.shard}\n`);
      await new Promise(() => undefined); // never resolves: the test kills this process
    },
  });
  process.stdout.write('READY\n');
}
