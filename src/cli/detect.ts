import { parseArgs } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, UserError } from './command.js';
import { INFERENCE_FLAGS, MODEL_FLAGS, configSources, inferenceOptions, isDirectory, stringFlag } from './common.js';
import { ProgressBar } from './progress.js';
import { architectureNames } from '../model/config.js';
import { loadDetector } from '../model/detector.js';
import { toCocoResults } from '../model/evaluate.js';
import { loadImage } from '../io/image.js';
import { drawDetections } from '../io/draw.js';
import type { CocoResult } from '../eval/types.js';

const help = `Usage: retinanet detect <image or folder...> --weights W.safetensors|model.onnx [options]

Detects objects and writes COCO results JSON (image_id, category_id, bbox = [x, y, w, h] in
original pixels, score).

Options:
  --weights FILE           weights (safetensors, torchvision state_dict names); a FILE.json
                           sidecar written by 'train' supplies the config and class names.
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
  --draw DIR               save each image with its boxes, class names and scores
  --threads N              threads for ONNX Runtime (default: all cores)

Unreadable images are reported and skipped; the others are still processed.`;

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp', '.gif']);

function expandInputs(inputs: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of inputs) {
    if (!existsSync(p)) throw new UserError(`${p}: no such file or folder`);
    if (isDirectory(p)) {
      const entries = readdirSync(p)
        .filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase()))
        .sort();
      if (entries.length === 0) process.stderr.write(`warning: ${p} holds no images\n`);
      files.push(...entries.map((f) => path.join(p, f)));
    } else {
      files.push(p);
    }
  }
  return files;
}

function idsFromGt(gtFile: string): Map<string, number> {
  let gt: { images?: { id: number; file_name?: string }[] };
  try {
    gt = JSON.parse(readFileSync(gtFile, 'utf8')) as typeof gt;
  } catch (err) {
    throw new UserError(`cannot read --gt ${gtFile}: ${(err as Error).message}`);
  }
  if (!Array.isArray(gt.images)) throw new UserError(`--gt ${gtFile} has no "images" list`);
  const ids = new Map<string, number>();
  for (const im of gt.images) if (im.file_name) ids.set(path.basename(im.file_name), im.id);
  return ids;
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
    },
  });
  if (positionals.length === 0) throw new UserError(`give at least one image or folder\n\n${help}`);
  const weights = stringFlag(values, 'weights');
  if (!weights) throw new UserError('--weights is required (a safetensors file with torchvision state_dict names)');
  if (!existsSync(weights)) throw new UserError(`--weights ${weights} not found`);
  const sources = configSources(values);
  const inference = inferenceOptions(values);
  const files = expandInputs(positionals);
  const gtFile = stringFlag(values, 'gt');
  const gtIds = gtFile ? idsFromGt(gtFile) : undefined;
  const out = stringFlag(values, 'out') ?? 'detections.json';
  const drawDir = stringFlag(values, 'draw');
  if (drawDir) await mkdir(drawDir, { recursive: true });

  const model = await loadDetector(weights, sources);
  const classNames = model.classNames ?? [];
  const categoryIds = model.categoryIds ?? Array.from({ length: model.numClasses }, (_, i) => i);
  const results: CocoResult[] = [];
  const imageList: { id: number; file_name: string; width: number; height: number }[] = [];
  const bar = files.length > 1 ? new ProgressBar(files.length, 'detect') : undefined;
  let failed = 0;
  for (const [k, file] of files.entries()) {
    let id = k + 1;
    if (gtIds) {
      const known = gtIds.get(path.basename(file));
      if (known === undefined) {
        process.stderr.write(`\nwarning: ${file} is not in ${gtFile}; skipped\n`);
        failed++;
        continue;
      }
      id = known;
    }
    let image;
    try {
      image = await loadImage(file);
    } catch (err) {
      process.stderr.write(`\nwarning: ${(err as Error).message}; skipped\n`);
      failed++;
      continue;
    }
    const [det] = await model.detect([image], inference);
    results.push(...toCocoResults(det!, id, categoryIds));
    imageList.push({ id, file_name: path.basename(file), width: image.width, height: image.height });
    if (drawDir) {
      const target = path.join(drawDir, path.basename(file).replace(/\.[^.]+$/, '') + '.png');
      await drawDetections(image, { boxes: det!.boxes, labels: det!.labels, scores: det!.scores }, target, { classNames, minScore: 0.3 });
    }
    bar?.update(k + 1, `${results.length} detections`);
  }
  bar?.done();
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeFile(out, JSON.stringify(results) + '\n');
  if (!gtIds) await writeFile(out.replace(/\.json$/, '') + '.images.json', JSON.stringify(imageList, null, 1) + '\n');
  await model.dispose();
  process.stdout.write(`${results.length} detections on ${imageList.length} image(s) written to ${out}${drawDir ? `; drawn images in ${drawDir}` : ''}${failed ? `; ${failed} image(s) skipped` : ''}\n`);
  return failed > 0 && imageList.length === 0 ? 1 : 0;
}

export const detectCommand: Command = { name: 'detect', summary: 'detect objects in images with trained weights', help, run };
