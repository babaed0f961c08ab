/**
 * The fuzzing harness. Cases run in a worker thread so that a hang can be stopped (a synchronous
 * loop cannot be interrupted in-process; `Worker#terminate` can) and a runaway heap ends the
 * worker rather than the test run. Per case the contract is:
 *
 *  1. the parser returns, or throws an `InputError` (any other exception is a bug);
 *  2. it finishes within `SLOW_MS_BASE + SLOW_MS_PER_BYTE * size` (the watchdog stops it later);
 *  3. no single allocation (typed arrays, ArrayBuffers, Buffers, `new Array(n)`, `repeat`/`padStart`)
 *     exceeds the target's slack + factor x input size: the worker replaces those constructors
 *     with checking ones before it loads the library, and records a violation even when the
 *     parser catches the error.
 *
 * Modes: `replay` (the corpus files as they are), `property` (the corpus, then fast-check: a fixed
 * number of mutated cases from a fixed seed, deterministic, shrinking on request) and `coverage` (the long run: V8
 * block coverage through node:inspector keeps each mutated input that reaches new code).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { FuzzTarget, TargetContext } from './targets.js';
import type { FuzzCase, Mutation } from './mutate.js';

/** The targets (test/fuzz/targets.ts), named here so that the main thread need not load the library. */
export const TARGET_NAMES: readonly string[] = [
  'safetensors', 'pytorch', 'pytorch-pickle', 'coco-dataset', 'coco-eval-gt', 'coco-eval-results', 'voc-dataset', 'csv-keras',
  'csv-headed', 'classes', 'yolo-labels', 'yolo-yaml', 'voc-eval-xml', 'voc-eval-dets', 'train-state', 'train-log', 'sidecar', 'config',
];

export const SLOW_MS_BASE = 1500;
export const SLOW_MS_PER_BYTE = 0.01; // 10 us per byte: 2.6 s more at the largest inputs (256 KiB)
/** The watchdog stops a case after this long (a hang). */
export const hangMs = (size: number): number => 2 * (SLOW_MS_BASE + SLOW_MS_PER_BYTE * size) + 3000;

export type BugKind = 'exception' | 'allocation' | 'slow' | 'hang' | 'crash';

export interface Bug {
  target: string;
  kind: BugKind;
  message: string;
  /** The input that broke the contract. */
  bytes: Uint8Array;
  /** How it was made: the seed file and the mutations (when known). */
  origin: string;
}

export interface TargetStats {
  executions: number;
  inputErrors: number;
  corpus: number;
  features: number;
  ms: number;
}

/** What the worker is asked to do. */
export interface Job {
  mode: 'replay' | 'property' | 'coverage';
  targets: string[];
  /** property: cases per target; coverage: unused. */
  runs?: number;
  seed?: number;
  /** property: shrink a failing case (slow when the case is slow). */
  shrink?: boolean;
  /** coverage: milliseconds per target. */
  msPerTarget?: number[];
  /** replay: these files instead of the corpus. */
  files?: string[];
  /** Scales the allocation and time bounds (the harness's self-test shrinks them to see it catch). */
  scale?: { alloc?: number; time?: number };
}

type FromWorker =
  | { type: 'ready'; targets: string[] }
  | { type: 'start'; target: string; bytes: Uint8Array; origin: string }
  | { type: 'end'; inputError: boolean }
  | { type: 'bug'; bug: Bug }
  | { type: 'stats'; target: string; stats: TargetStats }
  | { type: 'done' };

// ---- the allocation guard ------------------------------------------------------------------

interface Violation {
  what: string;
  bytes: number;
  limit: number;
  stack: string;
}

let allocLimit = Infinity;
let violation: Violation | undefined;

class AllocationLimitError extends RangeError {
  override name = 'AllocationLimitError';
}

function checkAlloc(what: string, bytes: number): void {
  if (!(bytes > allocLimit)) return;
  const stack = (new Error().stack ?? '').split('\n').slice(3, 12).join('\n');
  violation ??= { what, bytes, limit: allocLimit, stack };
  throw new AllocationLimitError(`fuzz guard: ${what} of ${bytes} bytes exceeds ${allocLimit}`);
}

const TYPED_ARRAYS = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'] as const;

/** Replaces the allocating constructors with checking ones. Must run before the library is loaded. */
function installAllocationGuard(): void {
  const g = globalThis as unknown as Record<string, unknown>;
  const OrigArrayBuffer = ArrayBuffer;
  const sizeOf = (args: unknown[], bpe: number): number => {
    const a0 = args[0];
    if (typeof a0 === 'number') return a0 * bpe;
    if (a0 && typeof a0 === 'object' && !(a0 instanceof OrigArrayBuffer) && typeof (a0 as { length?: unknown }).length === 'number') {
      return (a0 as { length: number }).length * bpe;
    }
    return 0;
  };
  for (const name of TYPED_ARRAYS) {
    const C = g[name] as { new (...a: unknown[]): unknown; BYTES_PER_ELEMENT: number };
    g[name] = new Proxy(C, {
      construct(target, args, newTarget) {
        checkAlloc(`new ${name}`, sizeOf(args, C.BYTES_PER_ELEMENT));
        return Reflect.construct(target, args, newTarget) as object;
      },
    });
  }
  g.ArrayBuffer = new Proxy(OrigArrayBuffer, {
    construct(target, args, newTarget) {
      checkAlloc('new ArrayBuffer', Number(args[0]) || 0);
      return Reflect.construct(target, args, newTarget) as object;
    },
  });
  const OrigArray = Array;
  const arrayCheck = (args: unknown[]) => {
    if (args.length === 1 && typeof args[0] === 'number') checkAlloc('new Array', args[0] * 8);
  };
  g.Array = new Proxy(OrigArray, {
    construct(target, args, newTarget) {
      arrayCheck(args);
      return Reflect.construct(target, args, newTarget) as object;
    },
    apply(target, thisArg, args) {
      arrayCheck(args);
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  for (const fn of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const orig = Buffer[fn] as (...a: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[fn] = function (this: unknown, ...args: unknown[]) {
      checkAlloc(`Buffer.${fn}`, Number(args[0]) || 0);
      return orig.apply(this, args);
    };
  }
  const { repeat, padStart, padEnd } = String.prototype;
  String.prototype.repeat = function (this: string, count: number) {
    checkAlloc('String#repeat', this.length * count * 2);
    return repeat.call(this, count);
  };
  String.prototype.padStart = function (this: string, max: number, fill?: string) {
    checkAlloc('String#padStart', max * 2);
    return padStart.call(this, max, fill);
  };
  String.prototype.padEnd = function (this: string, max: number, fill?: string) {
    checkAlloc('String#padEnd', max * 2);
    return padEnd.call(this, max, fill);
  };
}

// ---- one case ------------------------------------------------------------------------------

export type Outcome = { ok: true; inputError: boolean } | { ok: false; kind: BugKind; message: string };

let InputErrorClass: new (...a: unknown[]) => Error;

/** Runs one input through a target and checks the contract. */
async function runCase(t: FuzzTarget, ctx: TargetContext, bytes: Uint8Array): Promise<Outcome> {
  const limit = ((t.allocSlack ?? ALLOC_SLACK) + (t.allocFactor ?? ALLOC_FACTOR) * bytes.length) * SCALE.alloc;
  violation = undefined;
  allocLimit = limit;
  const t0 = performance.now();
  let thrown: unknown;
  let threw = false;
  try {
    await t.run(bytes, ctx);
  } catch (err) {
    thrown = err;
    threw = true;
  } finally {
    allocLimit = Infinity;
  }
  const ms = performance.now() - t0;
  const v = violation as Violation | undefined;
  if (v) return { ok: false, kind: 'allocation', message: `${v.what} of ${v.bytes} bytes for a ${bytes.length}-byte input (limit ${v.limit})\n${v.stack}` };
  if (threw && !(thrown instanceof InputErrorClass)) {
    const e = thrown as Error;
    return { ok: false, kind: 'exception', message: `${e?.name ?? typeof e}: ${String(e?.message ?? e).slice(0, 500)}\n${(e?.stack ?? '').split('\n').slice(1, 9).join('\n')}` };
  }
  const bound = (SLOW_MS_BASE + SLOW_MS_PER_BYTE * bytes.length) * SCALE.time;
  if (ms > bound) return { ok: false, kind: 'slow', message: `took ${ms.toFixed(0)} ms for ${bytes.length} bytes (bound ${bound.toFixed(0)} ms)` };
  return { ok: true, inputError: threw };
}

// Set from the targets module once loaded (avoids loading the library in the main thread).
let ALLOC_SLACK = 0;
let ALLOC_FACTOR = 0;
let SCALE = { alloc: 1, time: 1 };

// ---- the worker ----------------------------------------------------------------------------

function describeCase(seedName: string, ms: readonly Mutation[]): string {
  return `${seedName} + ${JSON.stringify(ms)}`;
}

async function workerMain(job: Job): Promise<void> {
  const port = parentPort!;
  const send = (m: FromWorker) => port.postMessage(m);
  let coverage: Coverage | undefined;
  if (job.mode === 'coverage') coverage = await Coverage.start();
  installAllocationGuard();
  const fc = (await import('fast-check')).default;
  const mutate = await import('./mutate.js');
  const targets = await import('./targets.js');
  InputErrorClass = (await import('../../src/core/errors.js')).InputError as typeof InputErrorClass;
  ALLOC_SLACK = targets.ALLOC_SLACK_BYTES;
  ALLOC_FACTOR = targets.DEFAULT_ALLOC_FACTOR;
  SCALE = { alloc: job.scale?.alloc ?? 1, time: job.scale?.time ?? 1 };
  send({ type: 'ready', targets: targets.TARGETS.map((t) => t.name) });

  for (const [ti, name] of job.targets.entries()) {
    const t = targets.TARGETS.find((x) => x.name === name);
    if (!t) throw new Error(`no fuzz target '${name}'`);
    const dir = mkdtempSync(path.join(tmpdir(), `fuzz-${name}-`));
    const ctx = { dir };
    await t.setup?.(dir);
    const seeds = job.files ? job.files.map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(f)) })) : targets.seedsOf(t);
    const regressions = job.files ? [] : (t.regressions?.() ?? []).map((r) => ({ name: `${name}/${r.name} (generated)`, bytes: r.bytes }));
    const stats: TargetStats = { executions: 0, inputErrors: 0, corpus: seeds.length, features: 0, ms: 0 };
    const started = performance.now();
    const one = async (bytes: Uint8Array, origin: string): Promise<Outcome> => {
      send({ type: 'start', target: name, bytes, origin });
      const out = await runCase(t, ctx, bytes);
      send({ type: 'end', inputError: out.ok && out.inputError });
      stats.executions++;
      if (out.ok && out.inputError) stats.inputErrors++;
      return out;
    };
    const report = (out: Outcome, bytes: Uint8Array, origin: string) => {
      if (!out.ok) send({ type: 'bug', bug: { target: name, kind: out.kind, message: out.message, bytes, origin } });
    };
    try {
      for (const s of [...seeds, ...regressions]) report(await one(s.bytes, s.name), s.bytes, s.name);
      if (job.mode === 'property') {
        const input = (c: FuzzCase) => {
          const s = seeds[c.seed % seeds.length]!;
          return { bytes: mutate.applyMutations(s.bytes, c.mutations, t.tokens, t.jsonPart), origin: describeCase(s.name, c.mutations) };
        };
        const result = await fc.check(
          fc.asyncProperty(mutate.caseArb, async (c) => {
            const { bytes, origin } = input(c);
            return (await one(bytes, origin)).ok;
          }),
          { numRuns: job.runs ?? 100, seed: (job.seed ?? 0) + ti, endOnFailure: !job.shrink },
        );
        if (result.failed && result.counterexample) {
          const { bytes, origin } = input(result.counterexample[0]);
          const out = await one(bytes, origin);
          report(out.ok ? { ok: false, kind: 'exception', message: `flaky: ${String(result.errorInstance ?? 'failed once, passed on replay')}` } : out, bytes, origin);
        }
      } else if (job.mode === 'coverage') {
        await coverageLoop(t, ctx, seeds, job.msPerTarget?.[ti] ?? 10_000, job.seed ?? 0, coverage!, stats, one, report, mutate, fc);
      }
    } finally {
      stats.ms = performance.now() - started;
      send({ type: 'stats', target: name, stats });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  send({ type: 'done' });
}

/** V8 block coverage of the library (dist/src) through the inspector, as AFL-style features. */
class Coverage {
  private constructor(private readonly session: import('node:inspector').Session) {}

  static async start(): Promise<Coverage> {
    const { Session } = await import('node:inspector');
    const s = new Session();
    s.connect();
    const c = new Coverage(s);
    c.post('Profiler.enable');
    c.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    return c;
  }

  private post(method: string, params?: object): unknown {
    let out: unknown;
    let error: Error | null = null;
    this.session.post(method, params, (err, res) => {
      error = err;
      out = res;
    });
    if (error) throw error;
    return out;
  }

  /** Features hit since the last call: `script:start:end:bucket` for each block run (counts bucketed as AFL does). */
  take(): string[] {
    const res = this.post('Profiler.takePreciseCoverage') as { result: { url: string; functions: { ranges: { startOffset: number; endOffset: number; count: number }[] }[] }[] };
    const out: string[] = [];
    for (const script of res.result) {
      if (!script.url.includes('/dist/src/')) continue;
      const file = script.url.slice(script.url.lastIndexOf('/dist/src/') + 10);
      for (const f of script.functions) {
        for (const r of f.ranges) {
          if (r.count === 0) continue;
          const bucket = r.count < 4 ? r.count : r.count < 8 ? 4 : r.count < 16 ? 8 : r.count < 32 ? 16 : r.count < 128 ? 32 : 128;
          out.push(`${file}:${r.startOffset}:${r.endOffset}:${bucket}`);
        }
      }
    }
    return out;
  }
}

/** mulberry32: the long run's own seeded generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function coverageLoop(
  t: FuzzTarget,
  ctx: TargetContext,
  seeds: { name: string; bytes: Uint8Array }[],
  ms: number,
  seed: number,
  coverage: Coverage,
  stats: TargetStats,
  one: (bytes: Uint8Array, origin: string) => Promise<Outcome>,
  report: (out: Outcome, bytes: Uint8Array, origin: string) => void,
  mutate: typeof import('./mutate.js'),
  fc: typeof import('fast-check').default,
): Promise<void> {
  const corpus: { name: string; bytes: Uint8Array }[] = [];
  const seen = new Set<string>();
  const addIfNew = (features: string[]): boolean => {
    let fresh = false;
    for (const f of features) {
      if (!seen.has(f)) {
        seen.add(f);
        fresh = true;
      }
    }
    return fresh;
  };
  coverage.take();
  for (const s of seeds) {
    // The corpus was just run as it is: only its coverage is wanted here.
    await t.run(s.bytes, { dir: ctx.dir }).catch(() => undefined);
    addIfNew(coverage.take());
    corpus.push(s);
  }
  const random = rng(seed ^ 0x9e3779b9);
  const end = performance.now() + ms;
  const reported = new Set<string>();
  const mutationsArb = fc.array(mutate.mutationArb, { minLength: 1, maxLength: 4 });
  while (performance.now() < end) {
    // Recent finds first, as AFL's queue does: half the picks from the newest tenth of the corpus;
    // of two picks the smaller, so that runs stay fast and mutations stay local.
    const recent = random() < 0.5 ? Math.floor(corpus.length * 0.9) : 0;
    const pick = () => corpus[recent + Math.floor(random() * (corpus.length - recent))]!;
    const a = pick();
    const b = pick();
    const base = a.bytes.length <= b.bytes.length ? a : b;
    const ms_ = fc.sample(mutationsArb, { seed: Math.floor(random() * 2 ** 31), numRuns: 1 })[0]!;
    const bytes = mutate.applyMutations(base.bytes, ms_, t.tokens, t.jsonPart);
    const origin = describeCase(base.name, ms_);
    const out = await one(bytes, origin);
    const features = coverage.take();
    if (!out.ok) {
      // One report per bug site (first line of the message), not per input.
      const key = `${out.kind}:${out.message.split('\n').slice(0, 2).join('|')}`;
      if (!reported.has(key)) {
        reported.add(key);
        report(out, bytes, origin);
      }
      continue;
    }
    if (addIfNew(features) && corpus.length < 5000) corpus.push({ name: `${base.name}*`, bytes });
  }
  stats.corpus = corpus.length;
  stats.features = seen.size;
}

if (!isMainThread && (workerData as { fuzzJob?: Job } | undefined)?.fuzzJob) {
  await workerMain((workerData as { fuzzJob: Job }).fuzzJob);
}

// ---- the main-thread side ------------------------------------------------------------------

export interface FuzzReport {
  bugs: Bug[];
  stats: Map<string, TargetStats>;
  targets: string[];
}

/**
 * Runs a job in a worker with a watchdog. A case that runs past {@link hangMs} or a worker that
 * dies (out of memory) is a bug. The worker is then restarted: in coverage mode on the same
 * target for the rest of its time (at most 3 restarts per target), otherwise on the next target.
 */
export async function runJob(job: Job, opts: RunOptions = {}): Promise<FuzzReport> {
  const report: FuzzReport = { bugs: [], stats: new Map(), targets: [] };
  let remaining = [...job.targets];
  let budgets = job.msPerTarget ? [...job.msPerTarget] : undefined;
  const deaths = new Map<string, number>();
  while (remaining.length > 0) {
    const sub: Job = { ...job, targets: remaining, msPerTarget: budgets };
    const { finished, lost, usedMs } = await runWorker(sub, report, opts);
    if (finished) break;
    const i = Math.max(0, remaining.indexOf(lost!));
    deaths.set(lost!, (deaths.get(lost!) ?? 0) + 1);
    const left = budgets ? budgets[i]! - usedMs : 0;
    if (job.mode === 'coverage' && left > 3000 && deaths.get(lost!)! < 4) {
      remaining = remaining.slice(i);
      budgets = [left, ...budgets!.slice(i + 1)];
    } else {
      remaining = remaining.slice(i + 1);
      budgets = budgets?.slice(i + 1);
    }
  }
  return report;
}

export interface RunOptions {
  heapMb?: number;
  onBug?: (b: Bug) => void;
  onStats?: (t: string, s: TargetStats) => void;
}

function runWorker(job: Job, report: FuzzReport, opts: RunOptions): Promise<{ finished: boolean; lost?: string; usedMs: number }> {
  return new Promise((resolve) => {
    const w = new Worker(new URL(import.meta.url), {
      workerData: { fuzzJob: job },
      // The main thread's stack is about 1 MB (a worker's default is 4): overflows show as they would in the CLI.
      resourceLimits: { maxOldGenerationSizeMb: opts.heapMb ?? 2048, stackSizeMb: 1 },
      stdout: true,
      stderr: true,
    });
    w.stdout.resume();
    w.stderr.resume();
    let current: { target: string; bytes: Uint8Array; origin: string; since: number } | undefined;
    let done = false;
    let lastTarget = job.targets[0]!;
    // What the main thread saw of the current target, for when the worker dies before its stats.
    let seen = { executions: 0, inputErrors: 0, since: performance.now() };
    const bug = (b: Bug) => {
      report.bugs.push(b);
      opts.onBug?.(b);
    };
    const merge = (target: string, add: TargetStats) => {
      const prev = report.stats.get(target);
      const s = prev
        ? { executions: prev.executions + add.executions, inputErrors: prev.inputErrors + add.inputErrors, ms: prev.ms + add.ms, corpus: Math.max(prev.corpus, add.corpus), features: Math.max(prev.features, add.features) }
        : add;
      report.stats.set(target, s);
      opts.onStats?.(target, s);
    };
    const timer = setInterval(() => {
      if (current && performance.now() - current.since > hangMs(current.bytes.length)) {
        const c = current;
        current = undefined;
        bug({ target: c.target, kind: 'hang', message: `no result after ${hangMs(c.bytes.length).toFixed(0)} ms for ${c.bytes.length} bytes; worker stopped`, bytes: c.bytes, origin: c.origin });
        void w.terminate();
      }
    }, 100);
    w.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'ready':
          report.targets = m.targets;
          break;
        case 'start':
          if (m.target !== lastTarget) seen = { executions: 0, inputErrors: 0, since: performance.now() };
          current = { target: m.target, bytes: m.bytes, origin: m.origin, since: performance.now() };
          lastTarget = m.target;
          break;
        case 'end':
          current = undefined;
          seen.executions++;
          if (m.inputError) seen.inputErrors++;
          break;
        case 'bug':
          bug(m.bug);
          break;
        case 'stats':
          merge(m.target, m.stats);
          seen = { executions: 0, inputErrors: 0, since: performance.now() };
          break;
        case 'done':
          done = true;
          break;
      }
    });
    w.on('error', (err) => {
      if (current) {
        bug({ target: current.target, kind: 'crash', message: `worker died: ${err.name}: ${err.message}`, bytes: current.bytes, origin: current.origin });
        current = undefined;
      } else if (!done) {
        bug({ target: lastTarget, kind: 'crash', message: `worker failed outside a case: ${err.stack ?? err.message}`, bytes: new Uint8Array(0), origin: '' });
      }
    });
    w.on('exit', () => {
      clearInterval(timer);
      const usedMs = performance.now() - seen.since;
      if (done) return resolve({ finished: true, usedMs });
      merge(lastTarget, { executions: seen.executions, inputErrors: seen.inputErrors, ms: usedMs, corpus: 0, features: 0 });
      resolve({ finished: false, lost: lastTarget, usedMs });
    });
  });
}

/** A bug as a readable paragraph, with the input's start shown as text. */
export function formatBug(b: Bug): string {
  const head = Buffer.from(b.bytes.subarray(0, 300)).toString('latin1').replace(/[^\x20-\x7e\n]/g, '.');
  return `[${b.target}] ${b.kind}: ${b.message}\n  input (${b.bytes.length} bytes) from ${b.origin.slice(0, 600)}\n  begins: ${JSON.stringify(head)}`;
}
