import { parseArgs } from 'node:util';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Command, UserError } from './command.js';
import { INFERENCE_FLAGS, MODEL_FLAGS, configSources, inferenceOptions, isDirectory, loadSource, numberFlag, stringFlag } from './common.js';
import { ProgressBar } from './progress.js';
import { writeAtomic } from '../core/atomic.js';
import { MAX_OPSET, MIN_OPSET, OPSET } from '../engine/onnx.js';
import { detectFormat } from '../data/datasets/index.js';
import { loadImage, type RgbImage } from '../io/image.js';
import { architectureNames } from '../model/config.js';
import { RetinaNet } from '../model/model.js';
import { exportDetector } from '../model/export.js';
import { exportDetectorInt8 } from '../model/quantize.js';

const DEFAULT_CALIBRATION_IMAGES = 64;

const help = `Usage: retinanet export --weights W.safetensors --out model.onnx [options]
       retinanet export --weights W.safetensors --out model_int8.onnx --int8 --calibrate DATASET [options]

Exports a model as ONE self-contained ONNX file for inference anywhere ONNX Runtime runs
(Python, C++, onnxruntime-web): input "image", uint8 RGB [height, width, 3] of any size;
outputs "boxes" float32 [D, 4] (x1, y1, x2, y2 in the input's pixels), "scores" float32 [D]
(best first) and "labels" int64 [D]. Resizing, normalisation, padding, the network, box
decoding, score threshold, top-k, class-wise NMS and the best D detections are in the graph,
with standard ONNX operators only; class names and the config are in its metadata_props.
'retinanet detect' and 'retinanet eval' accept the .onnx file as --weights.

Model (as for 'retinanet detect'):
  --weights FILE           weights (safetensors, torchvision state_dict names); a FILE.json
                           sidecar written by 'train' supplies the config and class names
  --arch NAME              ${architectureNames().join(', ')}
  --config FILE            JSON config ({"arch": NAME, ...overrides})
  --num-classes N          number of classes (torchvision COCO weights: 91)
  --min-size N             short side after resizing (default: the sidecar's or the architecture's)
  --max-size N             long side limit (likewise)

Built into the model (default: the config's, as 'retinanet detect' uses):
  --score-thresh S         minimum score (default 0.05)
  --nms-thresh T           IoU threshold of class-wise NMS (default 0.5)
  --detections-per-img N   detections kept per image (default 100; torchvision uses 300)

Output:
  --out FILE               the .onnx file to write (required)
  --opset N                ONNX opset, ${MIN_OPSET} to ${MAX_OPSET} (default ${OPSET})
  --dynamic                input of any height and width (the default; the flag only says so)
  --fixed-size HxW         declare the input as exactly H x W pixels ([H, W, 3]) instead: the
                           graph is the same, other sizes are rejected by the runtime, and
                           runtimes that want static shapes can plan for them

int8 (static post-training quantization, QDQ: QuantizeLinear/DequantizeLinear around every
convolution; ONNX Runtime runs them as integer kernels):
  --int8                   quantize: int8 per-channel symmetric weights, uint8 activations with
                           ranges calibrated (min/max) on --calibrate images
  --calibrate PATH         calibration images: a dataset (COCO .json, VOC folder, CSV, YOLO
                           folder) or a folder of images; use images the model was trained on,
                           not the ones you will evaluate it on
  --calibrate-split NAME   split of the calibration dataset (e.g. train)
  --calibrate-images N     images used, evenly spaced over the set (default ${DEFAULT_CALIBRATION_IMAGES})
  --threads N              threads for ONNX Runtime during calibration (default: all cores)
  --quiet                  no progress bar

Examples:
  retinanet export --weights runs/bccd/model.safetensors --out bccd.onnx
  retinanet export --weights runs/bccd/model.safetensors --out bccd_int8.onnx --int8 \\
      --calibrate ../shared/data/bccd --calibrate-split train --calibrate-images 100
  retinanet detect photos/ --weights bccd.onnx --out dets.json`;

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.bmp']);

/** `HxW` as [height, width]. */
function sizeFlag(raw: string | undefined): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*(\d+)\s*[xX]\s*(\d+)\s*$/.exec(raw);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`--fixed-size must be HEIGHTxWIDTH in pixels, e.g. 480x640, got '${raw}'`);
  return [Number(m[1]), Number(m[2])];
}

/** `count` indices spread evenly over `length` items (all of them when count >= length). */
function evenlySpaced(length: number, count: number): number[] {
  if (count >= length) return [...Array(length).keys()];
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * length) / count));
}

/** The calibration images of --calibrate: a dataset's images, or the image files of a folder. */
async function calibrationImages(p: string, values: Record<string, string | boolean | undefined>, count: number): Promise<{ total: number; images: AsyncIterable<RgbImage> }> {
  if (!existsSync(p)) throw new UserError(`--calibrate ${p} not found`);
  let plainFolder = false;
  if (isDirectory(p)) {
    try {
      detectFormat(p);
    } catch {
      plainFolder = true;
    }
  }
  if (plainFolder) {
    if (values['calibrate-split'] !== undefined) throw new UserError(`--calibrate-split applies to a dataset; ${p} is a folder of images`);
    const files = readdirSync(p)
      .filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase()))
      .sort()
      .map((f) => path.join(p, f));
    if (files.length === 0) throw new UserError(`--calibrate ${p} is neither a dataset nor a folder of images`);
    const picked = evenlySpaced(files.length, count).map((i) => files[i]!);
    return {
      total: picked.length,
      images: (async function* () {
        for (const f of picked) yield await loadImage(f);
      })(),
    };
  }
  const source = await loadSource(p, values, 'calibrate-split');
  const picked = evenlySpaced(source.length, count);
  return {
    total: picked.length,
    images: (async function* () {
      for (const i of picked) yield (await source.get(i)).image;
    })(),
  };
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      weights: { type: 'string' },
      ...MODEL_FLAGS,
      ...INFERENCE_FLAGS,
      out: { type: 'string' },
      opset: { type: 'string' },
      dynamic: { type: 'boolean' },
      'fixed-size': { type: 'string' },
      int8: { type: 'boolean' },
      calibrate: { type: 'string' },
      'calibrate-split': { type: 'string' },
      'calibrate-images': { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}' (the weights go in --weights FILE)`);
  const weights = stringFlag(values, 'weights');
  if (!weights) throw new UserError('--weights is required (a safetensors file with torchvision state_dict names)');
  if (!existsSync(weights)) throw new UserError(`--weights ${weights} not found`);
  if (/\.onnx$/i.test(weights)) throw new UserError(`--weights ${weights} is already an exported model; give the safetensors weights it came from`);
  const out = stringFlag(values, 'out');
  if (!out) throw new UserError('--out FILE is required (the .onnx file to write)');
  const sources = configSources(values);
  const inference = inferenceOptions(values);
  const opset = numberFlag(values, 'opset', { integer: true, min: MIN_OPSET, max: MAX_OPSET });
  const fixedSize = sizeFlag(stringFlag(values, 'fixed-size'));
  if (fixedSize && values.dynamic) throw new UserError('give either --dynamic (any size, the default) or --fixed-size HxW, not both');
  const int8 = values.int8 === true;
  const calibrate = stringFlag(values, 'calibrate');
  const calibrateCount = numberFlag(values, 'calibrate-images', { integer: true, min: 1 }) ?? DEFAULT_CALIBRATION_IMAGES;
  if (int8 && !calibrate) throw new UserError('--int8 needs calibration images: --calibrate DATASET (e.g. the training set, --calibrate-split train)');
  if (!int8) {
    for (const flag of ['calibrate', 'calibrate-split', 'calibrate-images'] as const) if (values[flag] !== undefined) throw new UserError(`--${flag} applies to --int8 only`);
  }
  const calibration = int8 ? await calibrationImages(calibrate!, values, calibrateCount) : undefined;

  const model = await RetinaNet.fromWeights(weights, sources);
  const opts = { ...inference, opset, fixedSize };
  let bytes: Uint8Array;
  if (calibration) {
    const bar = values.quiet === true ? undefined : new ProgressBar(calibration.total, 'calibrate');
    try {
      ({ bytes } = await exportDetectorInt8(model, calibration.images, { ...opts, onProgress: (done) => bar?.update(done) }));
    } finally {
      bar?.done();
    }
  } else {
    bytes = exportDetector(model, opts);
  }
  await model.dispose();
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  await writeAtomic(out, bytes);
  const input = fixedSize ? `[${fixedSize[0]}, ${fixedSize[1]}, 3]` : '[height, width, 3]';
  process.stdout.write(
    `${out}: ${(bytes.length / 1e6).toFixed(1)} MB, ${int8 ? `int8 (calibrated on ${calibration!.total} images)` : 'float32'}, opset ${opset ?? OPSET}; ` +
      `input image uint8 ${input}; outputs boxes [D, 4], scores [D], labels [D]; ${model.numClasses} classes${model.classNames ? ` (${model.classNames.slice(0, 5).join(', ')}${model.classNames.length > 5 ? ', ...' : ''})` : ''}\n`,
  );
  return 0;
}

export const exportCommand: Command = { name: 'export', summary: 'export a model as one ONNX file (preprocessing, network, NMS), float32 or int8', help, run };
