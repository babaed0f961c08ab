/**
 * A queue worker for `bench queue` (the library's QueueWorker, started as its own process so
 * workers run in parallel): `node queue_worker.js URL THREADS`; prints READY, stops on SIGTERM.
 */
import { parseRedisUrl } from '../src/queue/connection.js';
import { QueueWorker } from '../src/queue/worker.js';

const [url, threads] = process.argv.slice(2);
if (!url || !threads) throw new Error('usage: queue_worker.js redis://HOST:PORT THREADS');
const worker = await QueueWorker.start(parseRedisUrl(url), { threads: Number(threads) });
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
process.stdout.write('READY\n');
