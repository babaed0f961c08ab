import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Command, UserError } from './command.js';
import { stringFlag } from './common.js';
import { checkOutputFile } from '../core/output.js';
import { writeAtomic } from '../core/atomic.js';
import { type ShardManifest, parseShard, shardManifestPath } from '../data/shard.js';
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
  const shards = positionals.map((file) => {
    const manifest = readJson<ShardManifest>(shardManifestPath(file), 'shard manifest');
    if (!manifest || typeof manifest.shard !== 'string' || !Array.isArray(manifest.images)) throw new UserError(`${shardManifestPath(file)} is not a shard manifest`);
    const results = readJson<CocoResult[]>(file, 'results');
    if (!Array.isArray(results)) throw new UserError(`${file} is not a COCO results list`);
    return { file, manifest, shard: parseShard(manifest.shard), results };
  });
  const n = shards[0]!.shard.count;
  const seen = new Map<number, string>();
  for (const s of shards) {
    if (s.shard.count !== n) throw new UserError(`${s.file} is shard ${s.manifest.shard}, but ${shards[0]!.file} is of ${n} shards`);
    const other = seen.get(s.shard.index);
    if (other) throw new UserError(`${s.file} and ${other} are both shard ${s.manifest.shard}`);
    seen.set(s.shard.index, s.file);
  }
  const missing = Array.from({ length: n }, (_, k) => k + 1).filter((k) => !seen.has(k));
  if (missing.length > 0) throw new UserError(`shard(s) ${missing.map((k) => `${k}/${n}`).join(', ')} missing: every shard's results are needed`);
  const idsFromGroundTruth = shards[0]!.manifest.idsFromGroundTruth;

  // Images in the order of the whole input; each image's detections in the order its run wrote them.
  const images = shards.flatMap((s) => s.manifest.images.map((im) => ({ ...im, from: s.file })));
  images.sort((a, b) => a.index - b.index);
  for (let i = 1; i < images.length; i++) {
    if (images[i]!.index === images[i - 1]!.index) throw new UserError(`image ${images[i]!.file_name} is in two shards (${images[i - 1]!.from}, ${images[i]!.from})`);
  }
  const byImage = new Map<number, CocoResult[]>();
  for (const s of shards) for (const r of s.results) byImage.set(r.image_id, [...(byImage.get(r.image_id) ?? []), r]);
  const merged = images.flatMap((im) => byImage.get(im.id) ?? []);
  if (merged.length !== shards.reduce((a, s) => a + s.results.length, 0)) throw new UserError('some results are on images no shard manifest lists; were the files mixed up?');
  await writeAtomic(out, JSON.stringify(merged) + '\n');
  if (!idsFromGroundTruth) {
    const list = images.map(({ id, file_name, width, height }) => ({ id, file_name, width, height }));
    await writeAtomic(out.replace(/\.json$/, '') + '.images.json', JSON.stringify(list, null, 1) + '\n');
  }
  process.stdout.write(`${merged.length} detections on ${images.length} image(s) from ${n} shard(s) written to ${out}\n`);
  return 0;
}

export const mergeCommand: Command = { name: 'merge', summary: "join the results of 'detect --shard K/N' runs into one results file", help, run };
