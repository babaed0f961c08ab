/**
 * A real Redis for the queue tests: Debian's `redis-server` (or $REDIS_SERVER) started on a free
 * loopback port in a temporary folder, with or without its append-only file. Tests skip with
 * `REDIS_SKIP` as the reason when there is no redis-server.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/** The redis-server binary, or undefined. */
export function redisServerPath(): string | undefined {
  const env = process.env['REDIS_SERVER'];
  if (env) return existsSync(env) ? env : undefined;
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/** Why queue tests skip, or false when they run. */
export const REDIS_SKIP: string | false = redisServerPath() ? false : 'redis-server not found (apt-get install redis-server, or set REDIS_SERVER): queue tests skipped';

/** A free TCP port on 127.0.0.1 (free when asked; the server binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  port: number;
  url: string;
  /** A client (closed by stop). */
  client: Redis;
  /** Kills the server (SIGKILL by default: a crash). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder (reading its AOF when it has one). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(dir: string, opts: { aof?: boolean } = {}): Promise<TestRedis> {
  const bin = redisServerPath();
  if (!bin) throw new Error('no redis-server');
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', opts.aof ? 'yes' : 'no', '--appendfsync', 'everysec', '--logfile', path.join(dir, 'redis.log')];
    proc = spawn(bin, args, { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') {
          probe.disconnect();
          return;
        }
      } catch {
        // not up yet
      }
      probe.disconnect();
      await sleep(50);
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  await launch();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill(signal);
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    kill,
    restart: launch,
    async stop() {
      client.disconnect();
      await kill('SIGKILL');
    },
  };
}
