/**
 * Where the queue lives: a Redis server named by a `redis://[user:password@]host:port[/db]` URL
 * (`rediss://` for TLS). Every connection retries for ever once established (a restarting Redis
 * is waited for, not an error); the first connection is checked with a PING so that a wrong
 * address is an InputError at once.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import { InputError } from '../core/errors.js';

/** A parsed Redis URL. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL without its password, for messages. */
  display: string;
}

/** Parses `redis://[user:password@]host[:port][/db]` (or `rediss://`); InputError otherwise. */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`--queue expects a Redis URL such as redis://localhost:6379, got '${url}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new InputError(`--queue expects a redis:// or rediss:// URL, got '${url}'`);
  if (!u.hostname) throw new InputError(`--queue ${url} names no host`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new InputError(`--queue ${url}: the database after the '/' must be a number, got '${dbText}'`);
  const masked = new URL(url);
  if (masked.password) masked.password = '***';
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:',
    display: masked.toString(),
  };
}

/**
 * ioredis options for `target`: commands wait while the server is away (BullMQ's workers need
 * `maxRetriesPerRequest: null`), reconnecting every 0.2-2 s.
 */
export function redisOptions(target: RedisTarget): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    username: target.username,
    password: target.password,
    ...(target.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/** The same options in the form BullMQ's Queue and Worker take (they open their own connections). */
export function bullConnection(target: RedisTarget): ConnectionOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/**
 * A connection to `target`, checked with a PING within `timeoutMs`: an unreachable or refusing
 * server is an InputError naming the URL.
 */
export async function connectRedis(target: RedisTarget, timeoutMs = 5000): Promise<Redis> {
  // No retries until the first PING is answered: a refused connection is an error at once.
  let up = false;
  const retry = redisOptions(target).retryStrategy!;
  const client = new Redis({ ...redisOptions(target), lazyConnect: true, retryStrategy: (times: number) => (up ? retry(times) : null) });
  let lastError = '';
  const onError = (err: Error): void => {
    lastError = err.message;
  };
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(lastError || `no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    await Promise.race([client.connect().then(() => client.ping()), timeout]);
    up = true;
  } catch (err) {
    client.disconnect();
    throw new InputError(`cannot reach Redis at ${target.display}: ${lastError || (err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}
