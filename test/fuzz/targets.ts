/**
 * The parsers that read user files, as fuzz targets: each takes the bytes of one file, puts them
 * where the parser reads them (in memory, or a file in a private temporary folder) and runs the
 * parser the way the library or the CLI does. Seeds are the files in test/fixtures/fuzz/<target>/
 * (small excerpts of real files; crash-* files are inputs that once broke the contract) plus, for
 * the PyTorch reader, the checkpoints in test/fixtures/io/torch/.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync, zipSync, type Unzipped } from 'fflate';
import sharp from 'sharp';
import { evalCommand } from '../../src/cli/eval.js';
import { readClassList } from '../../src/data/datasets/classes.js';
import { loadDataset, type LoadOptions } from '../../src/data/datasets/index.js';
import { parseVocDetections, parseVocXml } from '../../src/eval/voc_io.js';
import { decodeTorchCheckpoint } from '../../src/io/pytorch.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { loadConfigFile } from '../../src/model/config.js';
import { readSidecar, resolveConfig } from '../../src/model/weights.js';
import { loadCheckpoint, type TrainState } from '../../src/train/checkpoint.js';
import { JsonlLogHook } from '../../src/train/hooks.js';
import { parseStepLog, parseValLog } from '../../src/train/log.js';
import { resultsCsv, resultsSpec } from '../../src/train/plot.js';
import { COMMON_TOKENS, type JsonPart } from './mutate.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CORPUS_DIR = path.join(ROOT, 'test/fixtures/fuzz');

/** What one target needs at run time: a private folder to write its input into. */
export interface TargetContext {
  dir: string;
}

export interface FuzzTarget {
  name: string;
  /** The parser and the entry point used, for the docs and reports. */
  parser: string;
  /** Dictionary of the format: keywords and hostile strings the `insert` mutation puts in. */
  tokens: readonly string[];
  /** Where the `json` mutation edits when the JSON is embedded in a binary file. */
  jsonPart?: JsonPart;
  /** Seed files besides test/fixtures/fuzz/<name>/*. */
  extraSeeds?(): Uint8Array[];
  /**
   * Past crash inputs too big to keep as files, generated: replayed with the corpus, never
   * mutated. Each once broke the contract (see docs/reliability.md).
   */
  regressions?(): { name: string; bytes: Uint8Array }[];
  /** Prepares the target's folder (fixed companion files). */
  setup?(dir: string): Promise<void>;
  /** Runs the parser on one input; returns normally or throws. */
  run(bytes: Uint8Array, ctx: TargetContext): Promise<void>;
  /**
   * Largest single allocation allowed, in bytes per input byte on top of {@link ALLOC_SLACK_BYTES}
   * (default {@link DEFAULT_ALLOC_FACTOR}); see docs/reliability.md.
   */
  allocFactor?: number;
  /** Allocation slack when the format has a documented one (PyTorch: 16 MiB). */
  allocSlack?: number;
}

export const ALLOC_SLACK_BYTES = 4 << 20;
export const DEFAULT_ALLOC_FACTOR = 64;

const JSON_TOKENS = [...COMMON_TOKENS, '{', '}', '[', ']', ',', ':', 'null', 'true', '{}', '[]', '"x"', '1e999', '-0', '"\\u0000"', '"\\ud800"', '"valueOf"', '"__proto__":', '"toString":{}', '{"toString":1}'];
const XML_TOKENS = [
  ...COMMON_TOKENS, '<', '>', '</', '/>', '<a>', '</a>', '<object>', '</object>', '<name>x</name>', '<bndbox>', '</bndbox>', '<xmin>1</xmin>',
  '&amp;', '&lt;', '&#65;', '&#x41;', '&#99999999;', '&#x110000;', '&#xD800;', '&bogus;', '&', '<![CDATA[', ']]>', '<!--', '-->', '<?xml version="1.0"?>',
  '<!DOCTYPE a>', ' a="1"', " b='2'", ' c=', '="', '<difficult>1</difficult>', '<size><width>1e9</width><height>1e9</height></size>',
];
const CSV_TOKENS = [...COMMON_TOKENS, ',', ',,,,,', '""', '"a""b"', '"', '\r', '\n,', 'filename,width,height,class,xmin,ymin,xmax,ymax\n', 'path,x1,y1,x2,y2,class_name', '/abs.jpg', '../up.jpg', ' ', '1e308', '-5'];
const YAML_TOKENS = [...COMMON_TOKENS, 'names:', 'names: [', ']', '  - ', '  0: ', '  4294967294: x\n', '  99999999: x\n', '  1e3: y\n', '#', ': ', '- ', '\t', "'", '[a, b]', '  -\n'];

const enc = new TextEncoder();
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

/** Console output of the CLI is discarded while a case runs. */
async function quietly(fn: () => Promise<unknown>): Promise<void> {
  const { log, error, warn } = console;
  const write = process.stderr.write;
  console.log = console.error = console.warn = () => undefined;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    Object.assign(console, { log, error, warn });
    process.stderr.write = write;
  }
}

function datasetTarget(name: string, parser: string, tokens: readonly string[], file: string, options: LoadOptions, setup?: (dir: string) => Promise<void>): FuzzTarget {
  return {
    name,
    parser,
    tokens,
    setup,
    async run(bytes, { dir }) {
      const p = path.join(dir, file);
      writeFileSync(p, bytes);
      const at = options.format === 'coco' || options.format === 'csv' ? p : dir;
      await loadDataset(at, { checkImages: 'none', ...options });
      await loadDataset(at, { checkImages: 'none', ...options, strict: true });
    },
  };
}

const tinyPng = (): Promise<Buffer> => sharp(Buffer.alloc(8 * 6 * 3, 90), { raw: { width: 8, height: 6, channels: 3 } }).png().toBuffer();

const TORCH_DIR = path.join(ROOT, 'test/fixtures/io/torch');
const torchFixtures = (): string[] => readdirSync(TORCH_DIR).filter((f) => f.endsWith('.pt')).sort();
/** The zip-format checkpoints, unzipped, with the name of their pickle. */
let zipped: { entries: Unzipped; pkl: string }[] | undefined;
function zipFixtures(): { entries: Unzipped; pkl: string }[] {
  zipped ??= torchFixtures()
    .map((f) => readFileSync(path.join(TORCH_DIR, f)))
    .filter((b) => b[0] === 0x50 && b[1] === 0x4b)
    .map((b) => {
      const entries = unzipSync(b);
      return { entries, pkl: Object.keys(entries).find((n) => n.endsWith('data.pkl'))! };
    });
  return zipped;
}

/** safetensors: the 8-byte length, then the JSON header: the `json` mutation edits the header and fixes the length. */
export const safetensorsHeader: JsonPart = (b) => {
  if (b.length < 8) return undefined;
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  if (n > b.length - 8) return undefined;
  return {
    json: b.subarray(8, 8 + n),
    wrap(json) {
      const out = new Uint8Array(8 + json.length + (b.length - 8 - n));
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      out.set(b.subarray(8 + n), 8 + json.length);
      return out;
    },
  };
};

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'safetensors',
    parser: 'decodeSafetensors (src/io/safetensors.ts)',
    tokens: [...JSON_TOKENS, '"F16"', '"BF16"', '"I64"', '"BOOL"', '"F8_E4M3"', '"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '[0,0]', '[0,18446744073709551615]'],
    jsonPart: safetensorsHeader,
    extraSeeds: () => [readFileSync(path.join(ROOT, 'test/fixtures/io/torch_tiny.safetensors'))],
    async run(bytes) {
      decodeSafetensors(bytes, { source: 'fuzz.safetensors', keepF64: bytes.length % 2 === 0 });
    },
    allocFactor: 2, // F16/BF16 decode to float32: at most twice the data
  },
  {
    name: 'pytorch',
    parser: 'decodeTorchCheckpoint (src/io/pytorch.ts; zip and legacy torch.save files)',
    tokens: ['PK\x03\x04', 'PK\x01\x02', 'PK\x05\x06', 'PK\x06\x06', 'data.pkl', 'byteorder', '\x80\x02', '\x80\x05', '.', 'ctorch\n_rebuild_tensor_v2\n', 'ctorch\nFloatStorage\n', '\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19', '}', ']', '(', 't', 'R', 'b', 'Q', 'X\xff\xff\xff\x7f'],
    extraSeeds: () => torchFixtures().map((f) => readFileSync(path.join(TORCH_DIR, f))),
    async run(bytes) {
      decodeTorchCheckpoint(bytes, { source: 'fuzz.pth', keepF64: bytes.length % 2 === 0 });
    },
    allocFactor: 4, // the reader's own budget: decoded tensors <= 4x the file + 16 MiB
    allocSlack: 17 << 20,
  },
  {
    // The pickle inside zip checkpoints, mutated and re-zipped so that changes reach the pickle parser past the CRC.
    name: 'pytorch-pickle',
    parser: 'decodeTorchCheckpoint on zip checkpoints whose data.pkl is the input (src/io/pickle.ts)',
    tokens: ['\x80\x02', '}', ']', ')', '(', 't', 'R', 'b', 'Q', 'q\x00', 'h\x00', 'K\xff', 'M\xff\xff', 'J\xff\xff\xff\x7f', 'X\xff\xff\xff\x7f', '\x8c\xff', 'ctorch\n_rebuild_tensor_v2\n', 'ctorch\nFloatStorage\n', 'cposix\nsystem\n', 'ccollections\nOrderedDict\n', '\x95', '.'],
    extraSeeds: () => zipFixtures().map((z) => z.entries[z.pkl]!),
    async run(bytes) {
      const z = zipFixtures();
      const { entries, pkl } = z[bytes.length % z.length]!;
      decodeTorchCheckpoint(zipSync({ ...entries, [pkl]: bytes }, { level: 0 }), { source: 'fuzz.pth' });
    },
    allocFactor: 4,
    allocSlack: 17 << 20,
  },
  {
    ...datasetTarget('coco-dataset', 'loadDataset, COCO (src/data/datasets/coco.ts)', [...JSON_TOKENS, '"images"', '"annotations"', '"categories"', '"bbox"', '"iscrowd"', '"file_name"', '"image_id"', '"category_id"'], 'instances.json', { format: 'coco' }),
    // An image entry without an id, nested 6000 deep: its problem message ran JSON.stringify over it (stack overflow).
    regressions: () => [{ name: 'deep-image-entry', bytes: enc.encode(`{"images":[{"file_name":"a.jpg","x":${'['.repeat(6000)}${']'.repeat(6000)}}],"categories":[]}`) }],
  },
  {
    name: 'coco-eval-gt',
    parser: 'retinanet eval --gt (src/cli/eval.ts: JSON, remapResults, checks, evaluateCoco)',
    tokens: [...JSON_TOKENS, '"images"', '"annotations"', '"categories"', '"bbox"', '"area"', '"iscrowd"', '"ignore"', '"id"', '"image_id"', '"category_id"'],
    async setup(dir) {
      writeFileSync(path.join(dir, 'dets.json'), readFileSync(path.join(CORPUS_DIR, 'coco-eval-results/seed-results.json')));
    },
    async run(bytes, { dir }) {
      writeFileSync(path.join(dir, 'gt.json'), bytes);
      await quietly(() => evalCommand.run(['--gt', path.join(dir, 'gt.json'), '--dets', path.join(dir, 'dets.json'), '--json', '--per-class', '--allow-unknown-categories']));
    },
    // pycocotools' precision and scores arrays: 10 x 101 x 4 x 3 doubles per category, and a category takes >= 8 bytes of JSON.
    allocFactor: 12_200,
    regressions: () => [
      // 150 000 categories none of the results use: Math.min(...ids) overflowed the stack, and
      // the precision arrays would have taken 29 GB.
      {
        name: '150k-categories',
        bytes: enc.encode(JSON.stringify({
          ...(JSON.parse(readFileSync(path.join(CORPUS_DIR, 'coco-eval-gt/seed-val2014.json'), 'utf8')) as object),
          annotations: [],
          categories: Array.from({ length: 150_000 }, (_, i) => ({ id: 1000 + i })),
        })),
      },
      // 12 000 images x 12 000 categories: 2.3 GB of (category, image) buckets from 300 KB.
      { name: 'images-x-categories', bytes: enc.encode(JSON.stringify({ images: Array.from({ length: 12_000 }, (_, i) => ({ id: i })), annotations: [], categories: Array.from({ length: 12_000 }, (_, i) => ({ id: i })) })) },
    ],
  },
  {
    name: 'coco-eval-results',
    parser: 'retinanet eval --dets (results list or COCO object; src/cli/eval.ts, src/eval/remap.ts, src/eval/coco.ts)',
    tokens: [...JSON_TOKENS, '"image_id"', '"category_id"', '"bbox"', '"score"', '"annotations"', '"images"', '"categories"', '"file_name"', '"name"'],
    async setup(dir) {
      writeFileSync(path.join(dir, 'gt.json'), readFileSync(path.join(CORPUS_DIR, 'coco-eval-gt/seed-val2014.json')));
    },
    async run(bytes, { dir }) {
      writeFileSync(path.join(dir, 'dets.json'), bytes);
      const args = ['--gt', path.join(dir, 'gt.json'), '--dets', path.join(dir, 'dets.json'), '--json'];
      await quietly(() => evalCommand.run(args));
    },
    allocFactor: 64,
  },
  {
    ...datasetTarget('voc-dataset', 'loadDataset, Pascal VOC XML (src/data/datasets/voc.ts, xml.ts)', XML_TOKENS, 'Annotations/a.xml', { format: 'voc' }, async (dir) => {
      mkdirSync(path.join(dir, 'Annotations'), { recursive: true });
    }),
    // A 200 000-character attribute without '=': the attribute regex backtracked quadratically (minutes).
    regressions: () => [{ name: 'long-attribute', bytes: enc.encode(`<annotation ${'x'.repeat(200_000)}></annotation>`) }],
  },
  datasetTarget('csv-keras', 'loadDataset, keras-retinanet CSV (src/data/datasets/csv.ts)', CSV_TOKENS, 'ann.csv', { format: 'csv' }),
  {
    ...datasetTarget('csv-headed', 'loadDataset, headed CSV (src/data/datasets/csv.ts)', CSV_TOKENS, 'ann.csv', { format: 'csv' }),
    // A 130 KB header and 6000 short lines: each line's problem repeated the whole header (800 MB, 9 s).
    regressions: () => [{ name: 'long-header', bytes: enc.encode(`filename,class,xmin,ymin,xmax,ymax,${'extra,'.repeat(22_000)}\n${'a.jpg\n'.repeat(6000)}`) }],
  },
  {
    name: 'classes',
    parser: 'readClassList (src/data/datasets/classes.ts; --classes, classes.csv, *.names)',
    tokens: CSV_TOKENS,
    async run(bytes, { dir }) {
      const p = path.join(dir, 'classes.csv');
      writeFileSync(p, bytes);
      await readClassList(p);
    },
  },
  datasetTarget('yolo-labels', 'loadDataset, YOLO label files (src/data/datasets/yolo.ts)', [...CSV_TOKENS, ' ', '\t', '0 ', '0.5', '1e308', '-1', '3 0.5 0.5 1 1'], 'labels/x.txt', { format: 'yolo' }, async (dir) => {
    mkdirSync(path.join(dir, 'images'), { recursive: true });
    mkdirSync(path.join(dir, 'labels'), { recursive: true });
    writeFileSync(path.join(dir, 'images/x.png'), await tinyPng());
    writeFileSync(path.join(dir, 'classes.txt'), 'person\nbicycle\ncar\n');
  }),
  datasetTarget('yolo-yaml', 'loadDataset, YOLO data.yaml (src/data/datasets/yolo.ts namesFromYaml)', YAML_TOKENS, 'data.yaml', { format: 'yolo' }, async (dir) => {
    mkdirSync(path.join(dir, 'images'), { recursive: true });
    mkdirSync(path.join(dir, 'labels'), { recursive: true });
    writeFileSync(path.join(dir, 'images/x.png'), await tinyPng());
    writeFileSync(path.join(dir, 'labels/x.txt'), '0 0.5 0.5 0.25 0.5\n2 0.1 0.1 0.1 0.1\n');
  }),
  {
    name: 'voc-eval-xml',
    parser: 'parseVocXml (src/eval/voc_io.ts; retinanet eval --voc-gt)',
    tokens: XML_TOKENS,
    async run(bytes) {
      parseVocXml(text(bytes), 'fuzz');
    },
    // Lazy regexes retried from every start: unclosed <object>s, and spaces in an unclosed <name> (minutes each).
    regressions: () => [
      { name: 'unclosed-objects', bytes: enc.encode('<object>'.repeat(30_000)) },
      { name: 'spaces-in-name', bytes: enc.encode(`<object><name>${' '.repeat(100_000)}x</object>`) },
    ],
  },
  {
    name: 'voc-eval-dets',
    parser: 'parseVocDetections (src/eval/voc_io.ts; retinanet eval --voc-dets)',
    tokens: [...CSV_TOKENS, ' ', '\t', '14 ', '99999999999999999999 ', 'person ', '0.5 '],
    async run(bytes) {
      const names = ['person', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'];
      parseVocDetections(text(bytes), 'fuzz', bytes.length % 2 === 0 ? names : undefined);
    },
  },
  {
    name: 'train-state',
    parser: 'loadCheckpoint (src/train/checkpoint.ts; the training state.json)',
    tokens: [...JSON_TOKENS, '"version"', '"iteration"', '"weightsFile"', '"optimizerFile"', '"../weights-0000020.safetensors"', '"/etc/passwd"', '"options"', '"best"', '"plan"'],
    async setup(dir) {
      const w = encodeSafetensors(new Map([['w', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]]));
      writeFileSync(path.join(dir, 'weights-0000020.safetensors'), w);
      writeFileSync(path.join(dir, 'optimizer-0000020.safetensors'), w);
    },
    async run(bytes, { dir }) {
      writeFileSync(path.join(dir, 'state.json'), bytes);
      await loadCheckpoint(dir);
    },
  },
  {
    name: 'train-log',
    parser: 'parseStepLog + parseValLog + resultsCsv + resultsSpec, JsonlLogHook.loadState (src/train/log.ts, plot.ts, hooks.ts; a run\'s log.jsonl)',
    tokens: [...JSON_TOKENS, '\n', '{"iter":', '"loss_cls":', '"loss_box":', '"type":"val"', 'null'],
    async run(bytes, { dir }) {
      const steps = parseStepLog(text(bytes)), vals = parseValLog(text(bytes));
      resultsCsv(steps, vals);
      resultsSpec(steps, vals);
      writeFileSync(path.join(dir, 'log.jsonl'), bytes);
      await new JsonlLogHook(dir).loadState(undefined as never, { iteration: 20 } as TrainState);
    },
    // 130 000 steps: the plot spread the iterations into Math.max (stack overflow at the end of long runs).
    regressions: () => [{ name: '130k-steps', bytes: enc.encode(Array.from({ length: 130_000 }, (_, i) => `{"iter":${i},"loss_cls":0.5,"loss_box":0.25}\n`).join('')) }],
  },
  {
    name: 'sidecar',
    parser: 'readSidecar + resolveConfig (src/model/weights.ts; model.json beside model.safetensors)',
    tokens: [...JSON_TOKENS, '"config"', '"classNames"', '"categoryIds"', '"numClasses"', '"anchors"', '"sizes"'],
    async run(bytes, { dir }) {
      writeFileSync(path.join(dir, 'model.json'), bytes);
      const sidecar = readSidecar(path.join(dir, 'model.safetensors'));
      if (!sidecar) return;
      resolveConfig({ sidecar });
      resolveConfig({ sidecar, arch: 'retinanet_resnet18_fpn_small' });
    },
  },
  {
    name: 'config',
    parser: 'loadConfigFile / mergeConfig (src/model/config.ts; --config)',
    tokens: [...JSON_TOKENS, '"arch"', '"name"', '"toString"', '"constructor"', '"hasOwnProperty"', '"numClasses"', '"backbone"', '"anchors"', '"sizes"', '"aspectRatios"', '"classNames"', '"transform"'],
    async run(bytes, { dir }) {
      const p = path.join(dir, 'config.json');
      writeFileSync(p, bytes);
      loadConfigFile(p);
    },
  },
];

/** Seed files of a target: the corpus folder (seed-* and crash-*) and any extra seeds. */
export function seedsOf(t: FuzzTarget): { name: string; bytes: Uint8Array }[] {
  const dir = path.join(CORPUS_DIR, t.name);
  let files: string[] = [];
  try {
    files = readdirSync(dir).sort();
  } catch {
    // no corpus folder
  }
  const out: { name: string; bytes: Uint8Array }[] = files.map((f) => ({ name: `${t.name}/${f}`, bytes: new Uint8Array(readFileSync(path.join(dir, f))) }));
  (t.extraSeeds?.() ?? []).forEach((b, i) => out.push({ name: `${t.name}/extra-${i}`, bytes: b }));
  if (out.length === 0) out.push({ name: `${t.name}/empty`, bytes: enc.encode('') });
  return out;
}
