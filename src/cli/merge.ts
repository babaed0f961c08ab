import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { stringFlag } from './common.js';
import { checkOutputFile } from '../core/output.js';
import { writeAtomic } from '../core/atomic.js';
import { type ShardManifest, type ShardResults, mergeShards, shardManifestPath } from '../data/shard.js';
import type { CocoResult } from '../eval/types.js';

const help = `Usage: retinanet merge SHARD.json... --out FILE

Joins the results of runs over shards ('detect --shard K/N', or 'eval --weights ... --shard K/N
--save-dets FILE') into exactly the output of a single run: FILE holds the COCO results in the
order one run writes them, and, for 'detect' without --gt, FILE's .images.json the image list.
Each SHARD.json needs the SHARD.shard.json its run wrote beside it.

Every shard of the N must be given once; an image in two shards, or shards of different N,
is an error.

Options:
  --out FILE     merged results (required)

Example (four processes, then one merge):
  for k in 1 2 3 4; do retinanet detect photos/ --weights W --shard $k/4 --out part$k.json & done; wait
  retinanet merge part1.json part2.json part3.json part4.json --out detections.json`;

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new UserError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' } } });
  const out = stringFlag(values, 'out');
  if (!out) throw new UserError(`--out is required\n\n${help}`);
  if (positionals.length === 0) throw new UserError(`give the shards' results files\n\n${help}`);
  checkOutputFile(out, '--out');
  const shards: ShardResults[] = positionals.map((file) => {
    const manifest = readJson<ShardManifest>(shardManifestPath(file), 'shard manifest');
    if (!manifest || typeof manifest.shard !== 'string' || !Array.isArray(manifest.images)) throw new UserError(`${shardManifestPath(file)} is not a shard manifest`);
    const results = readJson<CocoResult[]>(file, 'results');
    if (!Array.isArray(results)) throw new UserError(`${file} is not a COCO results list`);
    return { name: file, manifest, results };
  });
  const { results: merged, images, idsFromGroundTruth, count: n } = mergeShards(shards);
  await writeAtomic(out, JSON.stringify(merged) + '\n');
  if (!idsFromGroundTruth) {
    await writeAtomic(out.replace(/\.json$/, '') + '.images.json', JSON.stringify(images, null, 1) + '\n');
  }
  process.stdout.write(`${merged.length} detections on ${images.length} image(s) from ${n} shard(s) written to ${out}\n`);
  return 0;
}

export const mergeCommand: Command = { name: 'merge', summary: "join the results of 'detect --shard K/N' runs into one results file", help, run };
