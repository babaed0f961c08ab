/**
 * The long fuzz run: coverage-guided mutation of every parser that reads user files (see
 * test/fuzz/harness.ts and docs/reliability.md, "Fuzzing").
 *
 *   npm run build && node dist/scripts/fuzz.js --minutes 10 [--jobs 2] [--seed 1] [--target NAME ...] [--out fuzz-out]
 *   node dist/scripts/fuzz.js --target NAME --replay FILE...     (runs files through one target's contract)
 *
 * The time is shared equally by the targets; `--jobs` workers run side by side. Each input that
 * breaks the contract is written to `--out` (default fuzz-out/) as <target>-<kind>-<n>.bin with a
 * .txt describing it; the summary (executions per target, corpus, coverage features, bugs) is
 * printed as a Markdown table and written to <out>/summary.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatBug, runJob, TARGET_NAMES, type Bug, type TargetStats } from '../test/fuzz/harness.js';

const ALL: readonly string[] = TARGET_NAMES;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    jobs: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string', multiple: true },
    out: { type: 'string', default: 'fuzz-out' },
    replay: { type: 'string', multiple: true },
  },
});
const targets = values.target ?? [...ALL];
const unknown = targets.filter((t) => !ALL.includes(t));
if (unknown.length > 0) {
  console.error(`unknown target(s) ${unknown.join(', ')}; targets: ${ALL.join(', ')}`);
  process.exit(2);
}
const minutes = Number(values.minutes);
const jobs = Math.max(1, Math.min(Number(values.jobs), targets.length));
if (!(minutes > 0) || !Number.isInteger(jobs)) {
  console.error('--minutes must be a positive number and --jobs a positive integer');
  process.exit(2);
}
if (values.replay) {
  if (targets.length !== 1) {
    console.error('--replay needs exactly one --target');
    process.exit(2);
  }
  const r = await runJob({ mode: 'replay', targets, files: values.replay });
  for (const b of r.bugs) console.log(`${formatBug(b)}\n`);
  const s = r.stats.get(targets[0]!);
  console.log(`${s?.executions ?? 0} file(s) run, ${s?.inputErrors ?? 0} InputError(s), ${r.bugs.length} contract violation(s) in ${((s?.ms ?? 0) / 1000).toFixed(1)} s`);
  process.exit(r.bugs.length > 0 ? 1 : 0);
}
const out = path.resolve(values.out!);
mkdirSync(out, { recursive: true });

const groups: string[][] = Array.from({ length: jobs }, () => []);
targets.forEach((t, i) => groups[i % jobs]!.push(t));
const bugs: Bug[] = [];
const stats = new Map<string, TargetStats>();
const started = Date.now();
console.error(`fuzzing ${targets.length} target(s) for ${minutes} min in ${jobs} worker(s)`);

await Promise.all(groups.map((group, g) => {
  // Each worker's share of the time, split equally between its targets (minus ~2 s of start-up each).
  const ms = (minutes * 60_000) / group.length - 2000;
  return runJob(
    { mode: 'coverage', targets: group, seed: Number(values.seed) * 1000 + g, msPerTarget: group.map(() => Math.max(1000, ms)) },
    {
      onBug: (b) => {
        bugs.push(b);
        const base = path.join(out, `${b.target}-${b.kind}-${bugs.length}`);
        writeFileSync(`${base}.bin`, b.bytes);
        writeFileSync(`${base}.txt`, formatBug(b) + '\n');
        console.error(`\n${formatBug(b)}\n`);
      },
      onStats: (t, s) => {
        stats.set(t, s);
        console.error(`${t}: ${s.executions} executions in ${(s.ms / 1000).toFixed(0)} s, corpus ${s.corpus}, ${s.features} features`);
      },
    },
  );
}));

const rows = targets.map((t) => {
  const s = stats.get(t);
  const found = bugs.filter((b) => b.target === t);
  const kinds = [...new Set(found.map((b) => b.kind))].join(', ');
  return s
    ? `| ${t} | ${s.executions} | ${(s.executions / (s.ms / 1000)).toFixed(0)} | ${((100 * s.inputErrors) / Math.max(1, s.executions)).toFixed(0)}% | ${s.corpus} | ${s.features} | ${found.length}${kinds ? ` (${kinds})` : ''} |`
    : `| ${t} | - | - | - | - | - | ${found.length} |`;
});
const total = [...stats.values()].reduce((n, s) => n + s.executions, 0);
const summary = [
  `Fuzzed ${targets.length} target(s) for ${((Date.now() - started) / 60_000).toFixed(1)} min (${jobs} workers, seed ${values.seed}): ${total} executions, ${bugs.length} contract violation(s).`,
  '',
  '| target | executions | per second | InputError | corpus | features | violations |',
  '|---|---:|---:|---:|---:|---:|---|',
  ...rows,
].join('\n');
writeFileSync(path.join(out, 'summary.md'), summary + '\n');
console.log(summary);
process.exitCode = bugs.length > 0 ? 1 : 0;
