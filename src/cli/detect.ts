import { parseArgs } from 'node:util';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, UserError } from './command.js';
import { IMAGE_FLAGS, INFERENCE_FLAGS, MODEL_FLAGS, applyImageFlags, inferenceOptions, loadModel, numberFlag, stringFlag } from './common.js';
import { expandInputs, idsFromGt } from './inputs.js';
import { QUEUE_FLAGS, QUEUE_HELP, queueRequested } from './queue_common.js';
import { checkOutputDir, checkOutputFile } from '../core/output.js';
import { type ShardManifest, inShard, parseShard, shardManifestPath } from '../data/shard.js';
import { writeAtomic } from '../core/atomic.js';
import { InputError } from '../core/errors.js';
import { ProgressBar } from './progress.js';
import { architectureNames } from '../model/config.js';
import { toCocoResults } from '../model/evaluate.js';
import { loadImage } from '../io/image.js';
import { drawDetections } from '../io/draw.js';
import type { CocoResult } from '../eval/types.js';

const help = `Usage: retinanet detect <image, folder or list file...> --weights W|model.onnx [options]

Detects objects and writes COCO results JSON (image_id, category_id, bbox = [x, y, w, h] in
original pixels, score). Inputs are image files, folders (their images, sorted by name) and
list files (.txt, .lst, .list: one image path per line, relative to the list file's folder).

Options:
  --weights W              weights: a safetensors or .pth file with torchvision state_dict
                           names (a FILE.json sidecar written by 'train' supplies the config
                           and class names), or a NAME of 'retinanet weights list' such as
                           retinanet_resnet50_fpn_coco (downloaded on first use), or a URL
                           Or a model written by 'retinanet export' (.onnx, float32 or int8):
                           config and class names come from it, and its built-in post-processing
                           can only be tightened (higher --score-thresh, fewer detections)
  --arch NAME              ${architectureNames().join(', ')}
  --config FILE            JSON config ({"arch": NAME, ...overrides})
  --num-classes N          number of classes (torchvision COCO weights: 91)
  --min-size N             short side after resizing (default: the sidecar's or the
                           architecture's, 800 for the torchvision ones)
  --max-size N             long side limit (default: likewise, 1333)
  --score-thresh S         minimum score (default 0.05)
  --nms-thresh T           IoU threshold of class-wise NMS (default 0.5)
  --detections-per-img N   detections kept per image (default 100; torchvision uses 300)
  --gt FILE                COCO annotations: image ids are taken from it by file name
  --out FILE               results file (default detections.json); without --gt, image ids are
                           sequential and FILE's .images.json lists {id, file_name}
  --draw DIR               save each image with its boxes, class names and scores, as
                           DIR/<file name>.png (a.jpg -> a.jpg.png); DIR must not hold inputs
  --draw-score S           draw boxes scoring at least S (default: the detection threshold)
  --threads N              threads for ONNX Runtime (default: all cores)
  --quiet                  no progress bar (warnings are still printed)
  --shard K/N              process only shard K of N (by a hash of the file name: stable, every
                           image in exactly one shard); writes OUT and OUT.shard.json, which
                           'retinanet merge' joins into the output of a single run
  --max-pixels N           refuse images over N pixels (default 100000000)
  --max-memory SIZE        memory budget, e.g. 8G (default: 80% of the machine's memory): compiled
                           graphs (one per padded image shape) are released beyond it

${QUEUE_HELP}

Outputs are checked before any image is read. Results are appended to OUT.partial as images
are done and OUT is written (atomically) at the end, also when the run fails part way.
An image that cannot be read or detected on is reported and skipped; the others are still
processed.`;

/** Detections at least this confident are counted by class name in the last line. */
const SUMMARY_SCORE = 0.5;

/**
 * Where each input's drawing goes: `<file name with extension>.png` in the draw folder, so
 * `a.jpg` and `a.png` get `a.jpg.png` and `a.png.png`; the same name from two input folders
 * gets `-2`, `-3`, ...
 */
function drawingNames(files: readonly string[], drawDir: string): string[] {
  const used = new Set<string>();
  return files.map((file) => {
    const base = `${path.basename(file)}.png`;
    let name = base;
    for (let k = 2; used.has(name); k++) name = base.replace(/\.png$/, `-${k}.png`);
    used.add(name);
    return path.join(drawDir, name);
  });
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      weights: { type: 'string' },
      ...MODEL_FLAGS,
      ...INFERENCE_FLAGS,
      gt: { type: 'string' },
      out: { type: 'string' },
      draw: { type: 'string' },
      'draw-score': { type: 'string' },
      quiet: { type: 'boolean' },
      shard: { type: 'string' },
      ...IMAGE_FLAGS,
      ...QUEUE_FLAGS,
    },
  });
  applyImageFlags(values);
  if (queueRequested(values)) return (await import('./queue_detect.js')).runQueuedDetect(values, positionals);
  if (positionals.length === 0) throw new UserError(`give at least one image or folder\n\n${help}`);
  const weights = stringFlag(values, 'weights');
  if (!weights) throw new UserError("--weights is required (a safetensors or .pth file with torchvision state_dict names, or a NAME of 'retinanet weights list')");
  const inference = inferenceOptions(values);
  const drawScore = numberFlag(values, 'draw-score', { min: 0, max: 1 });
  const quiet = values.quiet === true;
  const files = expandInputs(positionals);
  const shardFlag = stringFlag(values, 'shard');
  const shard = shardFlag !== undefined ? parseShard(shardFlag) : undefined;
  // Image ids and positions come from the whole input, so shards merge into a single run's output.
  const items = files.map((file, index) => ({ file, index })).filter(({ file }) => !shard || inShard(path.basename(file), shard));
  const gtFile = stringFlag(values, 'gt');
  const gtIds = gtFile ? idsFromGt(gtFile) : undefined;
  // Every output is checked before the model is loaded or any image read.
  const out = stringFlag(values, 'out') ?? 'detections.json';
  checkOutputFile(out, '--out');
  const imagesOut = gtIds || shard ? undefined : out.replace(/\.json$/, '') + '.images.json';
  if (imagesOut) checkOutputFile(imagesOut, '--out');
  const manifestOut = shard ? shardManifestPath(out) : undefined;
  if (manifestOut) checkOutputFile(manifestOut, '--out');
  const drawDir = stringFlag(values, 'draw');
  if (drawDir) {
    checkOutputDir(drawDir, '--draw');
    const inside = files.find((f) => path.resolve(path.dirname(f)) === path.resolve(drawDir));
    if (inside) throw new UserError(`--draw ${drawDir} holds input images (e.g. ${path.basename(inside)}); drawings go to a folder of their own: choose another --draw`);
  }
  const drawTargets = drawDir ? drawingNames(files, drawDir) : [];

  const model = await loadModel(weights, values);
  model.checkOptions?.(inference);
  const classNames = model.classNames ?? [];
  const categoryIds = model.categoryIds ?? Array.from({ length: model.numClasses }, (_, i) => i);
  const drawMin = drawScore ?? inference.scoreThresh ?? model.scoreThresh;
  // Detections scoring at least SUMMARY_SCORE, counted by class for the last line.
  const confident = new Map<number, number>();
  if (drawDir) await mkdir(drawDir, { recursive: true });
  const results = new IncrementalResults(out);
  const imageList: { id: number; file_name: string; width: number; height: number }[] = [];
  const manifest: ShardManifest['images'] = [];
  const bar = items.length > 1 && !quiet ? new ProgressBar(items.length, 'detect') : undefined;
  const warn = (message: string): void => (bar ? bar.log(`warning: ${message}`) : void process.stderr.write(`warning: ${message}\n`));
  let failed = 0;
  try {
    for (const [done, { file, index: k }] of items.entries()) {
      bar?.update(done, `${results.count} detections`);
      let id = k + 1;
      if (gtIds) {
        const known = gtIds.get(path.basename(file));
        if (known === undefined) {
          warn(`${file} is not in ${gtFile}; skipped`);
          failed++;
          continue;
        }
        id = known;
      }
      // Any failure on one image (unreadable, degenerate, an error in the graph for its size) is
      // that image's: it is skipped with its reason, the others are still processed.
      try {
        const image = await loadImage(file);
        const [det] = await model.detect([image], inference);
        await results.add(toCocoResults(det!, id, categoryIds));
        det!.labels.forEach((label, j) => {
          if (det!.scores[j]! >= SUMMARY_SCORE) confident.set(label, (confident.get(label) ?? 0) + 1);
        });
        imageList.push({ id, file_name: path.basename(file), width: image.width, height: image.height });
        manifest.push({ index: k, id, file_name: path.basename(file), width: image.width, height: image.height });
        if (drawDir) await drawDetections(image, { boxes: det!.boxes, labels: det!.labels, scores: det!.scores }, drawTargets[k]!, { classNames, minScore: drawMin, caption: `score >= ${drawMin}` });
      } catch (err) {
        warn(`${err instanceof InputError ? err.message : `${file}: ${(err as Error).message}`}; skipped`);
        failed++;
      }
    }
    bar?.update(items.length, `${results.count} detections`);
  } finally {
    bar?.done();
    // Whatever happened, what was detected is written (atomically).
    await results.finish();
    if (imagesOut) await writeAtomic(imagesOut, JSON.stringify(imageList, null, 1) + '\n');
    if (manifestOut) await writeAtomic(manifestOut, JSON.stringify({ shard: shardFlag!, idsFromGroundTruth: gtIds !== undefined, images: manifest } satisfies ShardManifest) + '\n');
    await model.dispose();
  }
  const drawn = drawDir ? `; drawn images (boxes with score >= ${drawMin}) in ${drawDir}` : '';
  const top = [...confident].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 10);
  const summary = classNames.length > 0 && top.length > 0 ? `; scoring >= ${SUMMARY_SCORE}: ${top.map(([label, n]) => `${classNames[label] ?? label} ${n}`).join(', ')}` : '';
  const of = shard ? ` (shard ${shardFlag} of ${files.length} images; join the shards with 'retinanet merge')` : '';
  process.stdout.write(`${results.count} detections on ${imageList.length} image(s)${of} written to ${out}${drawn}${failed ? `; ${failed} image(s) skipped` : ''}${summary}\n`);
  return failed > 0 && imageList.length === 0 ? 1 : 0;
}

/**
 * COCO results written as they come: each image's detections are appended to `<out>.partial`
 * (one JSON array per line), and `finish` writes `out` atomically and removes the partial file,
 * so a run that fails late keeps everything detected before the failure.
 */
class IncrementalResults {
  private readonly partial: string;
  private readonly all: CocoResult[] = [];
  private started = false;

  constructor(private readonly out: string) {
    this.partial = `${out}.partial`;
  }

  get count(): number {
    return this.all.length;
  }

  async add(rs: CocoResult[]): Promise<void> {
    if (!this.started) {
      await mkdir(path.dirname(path.resolve(this.out)), { recursive: true });
      await writeFile(this.partial, '');
      this.started = true;
    }
    this.all.push(...rs);
    await appendFile(this.partial, JSON.stringify(rs) + '\n');
  }

  async finish(): Promise<void> {
    await mkdir(path.dirname(path.resolve(this.out)), { recursive: true });
    await writeAtomic(this.out, JSON.stringify(this.all) + '\n');
    await rm(this.partial, { force: true });
  }
}

export const detectCommand: Command = { name: 'detect', summary: 'detect objects in images with trained weights', help, run };
