/**
 * The web app of `retinanet serve` (app/index.html): detect on images in the tab and fine-tune
 * the model on a small labelled set, with the browser bundle's API only (its import is the
 * bundle itself at run time: scripts/build_browser.ts maps '../src/browser.js' to
 * './retinanet.js').
 */
import {
  type CocoResult, type ImageDetections, type StepRecord, InputError, RetinaNet, datasetSource, loadDataset, mountFiles, mountZip, toCocoResults,
} from '../src/browser.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Shown {
  id: number;
  name: string;
  bitmap: ImageBitmap;
  det: ImageDetections;
}

let model: RetinaNet | undefined;
let shown: Shown[] = [];
let current = -1;
let nextImageId = 1;
let datasetFolder: string | undefined;
/** What the next fine-tuning trains on: the mounted dataset or the boxes drawn by hand. */
let trainOn: 'dataset' | 'hand' | undefined;

interface HandImage {
  file: File;
  bitmap: ImageBitmap;
  boxes: number[][];
  labels: number[];
}
const hand: HandImage[] = [];
let handCurrent = -1;
let dragFrom: [number, number] | undefined;
let stopTraining: AbortController | undefined;

function setStatus(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
}

function message(err: unknown): string {
  return err instanceof InputError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function download(name: string, data: BlobPart, type: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([data], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function describeModel(m: RetinaNet): string {
  return `${m.config.name}, ${m.model.classNames?.length ?? 0} classes · ${m.backend.description}`;
}

async function useModel(m: RetinaNet): Promise<void> {
  model = m;
  setStatus(describeModel(m));
  $<HTMLButtonElement>('train').disabled = trainOn === undefined;
  // Detections of the images on show, again with this model.
  for (const s of shown) s.det = await m.detect(s.bitmap);
  draw();
}

// ---- Detect view ----

function colour(label: number): string {
  return `hsl(${(label * 137.508) % 360} 80% 45%)`;
}

function draw(): void {
  const canvas = $<HTMLCanvasElement>('canvas');
  const ctx = canvas.getContext('2d')!;
  const s = shown[current];
  const threshold = Number($<HTMLInputElement>('score').value);
  $('score-value').textContent = threshold.toFixed(2);
  $<HTMLButtonElement>('download-json').disabled = shown.length === 0;
  if (!s || !model) {
    $('count').textContent = '';
    return;
  }
  canvas.width = s.bitmap.width;
  canvas.height = s.bitmap.height;
  ctx.drawImage(s.bitmap, 0, 0);
  const lw = Math.max(2, Math.round(s.bitmap.width / 400));
  ctx.lineWidth = lw;
  ctx.font = `${6 * lw + 6}px system-ui, sans-serif`;
  let drawn = 0;
  const { boxes, scores, labels } = s.det;
  for (let k = 0; k < scores.length; k++) {
    if (scores[k]! < threshold) continue;
    const [x1, y1, x2, y2] = [boxes[4 * k]!, boxes[4 * k + 1]!, boxes[4 * k + 2]!, boxes[4 * k + 3]!];
    const c = colour(labels[k]!);
    ctx.strokeStyle = c;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${model.model.classNames?.[labels[k]!] ?? labels[k]} ${scores[k]!.toFixed(2)}`;
    const w = ctx.measureText(text).width + 2 * lw;
    const h = 6 * lw + 10;
    const ty = y1 - h >= 0 ? y1 - h : y1;
    ctx.fillStyle = c;
    ctx.fillRect(x1, ty, w, h);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + lw, ty + h - 2 * lw - 1);
    drawn++;
  }
  $('count').textContent = `${drawn} of ${scores.length} detections shown`;
  $('count').dataset['shown'] = String(drawn);
}

async function addImages(files: Iterable<File>): Promise<void> {
  if (!model) return setStatus('load weights first', true);
  const select = $<HTMLSelectElement>('image-select');
  for (const file of files) {
    try {
      setStatus(`detecting on ${file.name}…`);
      const t0 = performance.now();
      const det = await model.detect(file);
      const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
      shown.push({ id: nextImageId++, name: file.name, bitmap, det });
      select.append(new Option(file.name, String(shown.length - 1)));
      current = shown.length - 1;
      select.value = String(current);
      setStatus(`${file.name}: ${det.scores.length} detections in ${Math.round(performance.now() - t0)} ms · ${describeModel(model)}`);
    } catch (err) {
      setStatus(`${file.name}: ${message(err)}`, true);
    }
  }
  draw();
  document.body.dataset['detected'] = String(shown.length);
}

function cocoResults(): { images: { id: number; file_name: string; width: number; height: number }[]; results: CocoResult[] } {
  const ids = model?.model.categoryIds ?? [];
  return {
    images: shown.map((s) => ({ id: s.id, file_name: s.name, width: s.bitmap.width, height: s.bitmap.height })),
    results: shown.flatMap((s) => toCocoResults(s.det, s.id, ids)),
  };
}

// ---- Fine-tune view ----

function plotLoss(records: readonly StepRecord[], iters: number): void {
  const losses = records.map((r) => r.loss);
  const max = Math.max(...losses, 1e-6);
  const pts = losses.map((l, i) => `${(10 + (620 * i) / Math.max(1, iters - 1)).toFixed(1)},${(230 - (220 * l) / max).toFixed(1)}`);
  $('loss-line').setAttribute('points', pts.join(' '));
}

async function mountDataset(mount: () => Promise<string>, name: string): Promise<void> {
  const out = $('data-status');
  try {
    const folder = await mount();
    const { dataset, format, problems } = await loadDataset(folder);
    datasetFolder = folder;
    trainOn = 'dataset';
    out.textContent = `${name}: ${format}, ${dataset.images.length} images, ${dataset.classNames.length} classes (${dataset.classNames.slice(0, 6).join(', ')}${dataset.classNames.length > 6 ? ', …' : ''})${problems.length ? `, ${problems.length} problems` : ''}`;
    out.className = '';
    $<HTMLButtonElement>('train').disabled = model === undefined;
  } catch (err) {
    out.textContent = `${name}: ${message(err)}`;
    out.className = 'error';
  }
}

// ---- Boxes drawn by hand ----

function handClasses(): string[] {
  return $<HTMLInputElement>('hand-classes').value.split(',').map((c) => c.trim()).filter((c) => c.length > 0);
}

function refreshHandClasses(): void {
  const select = $<HTMLSelectElement>('hand-class');
  const keep = select.value;
  select.replaceChildren(...handClasses().map((c, i) => new Option(c, String(i))));
  if (keep && Number(keep) < select.options.length) select.value = keep;
}

function drawHand(preview?: number[]): void {
  const canvas = $<HTMLCanvasElement>('hand-canvas');
  const h = hand[handCurrent];
  const boxes = hand.reduce((n, x) => n + x.boxes.length, 0);
  $('hand-status').textContent = `${boxes} boxes on ${hand.filter((x) => x.boxes.length > 0).length} of ${hand.length} images`;
  document.body.dataset['handBoxes'] = String(boxes);
  if (!h) return;
  canvas.width = h.bitmap.width;
  canvas.height = h.bitmap.height;
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(h.bitmap, 0, 0);
  ctx.lineWidth = Math.max(2, Math.round(h.bitmap.width / 300));
  const names = handClasses();
  ctx.font = `${5 * ctx.lineWidth + 6}px system-ui, sans-serif`;
  h.boxes.forEach((b, k) => {
    ctx.strokeStyle = ctx.fillStyle = colour(h.labels[k]!);
    ctx.strokeRect(b[0]!, b[1]!, b[2]! - b[0]!, b[3]! - b[1]!);
    ctx.fillText(names[h.labels[k]!] ?? String(h.labels[k]), b[0]! + 3, b[1]! + 5 * ctx.lineWidth + 6);
  });
  if (preview) {
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = '#000';
    ctx.strokeRect(preview[0]!, preview[1]!, preview[2]! - preview[0]!, preview[3]! - preview[1]!);
    ctx.setLineDash([]);
  }
}

/** A mouse position in the image's pixels. */
function handPoint(e: MouseEvent): [number, number] {
  const canvas = $<HTMLCanvasElement>('hand-canvas');
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
}

async function addHandImages(files: Iterable<File>): Promise<void> {
  const select = $<HTMLSelectElement>('hand-image');
  for (const file of files) {
    hand.push({ file, bitmap: await createImageBitmap(file, { imageOrientation: 'from-image' }), boxes: [], labels: [] });
    select.append(new Option(file.name, String(hand.length - 1)));
  }
  handCurrent = hand.length - 1;
  select.value = String(handCurrent);
  drawHand();
}

function wireHand(): void {
  refreshHandClasses();
  $<HTMLInputElement>('hand-classes').oninput = () => {
    refreshHandClasses();
    drawHand();
  };
  $<HTMLInputElement>('hand-input').onchange = (e) => void addHandImages((e.target as HTMLInputElement).files ?? []);
  $<HTMLSelectElement>('hand-image').onchange = (e) => {
    handCurrent = Number((e.target as HTMLSelectElement).value);
    drawHand();
  };
  $('hand-undo').onclick = () => {
    const h = hand[handCurrent];
    h?.boxes.pop();
    h?.labels.pop();
    drawHand();
  };
  const canvas = $<HTMLCanvasElement>('hand-canvas');
  const box = (a: [number, number], b: [number, number]): number[] => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
  canvas.onmousedown = (e) => {
    if (hand[handCurrent]) dragFrom = handPoint(e);
  };
  canvas.onmousemove = (e) => {
    if (dragFrom) drawHand(box(dragFrom, handPoint(e)));
  };
  canvas.onmouseup = (e) => {
    const h = hand[handCurrent];
    if (!dragFrom || !h) return;
    const b = box(dragFrom, handPoint(e));
    dragFrom = undefined;
    if (b[2]! - b[0]! >= 4 && b[3]! - b[1]! >= 4) {
      h.boxes.push(b);
      h.labels.push(Number($<HTMLSelectElement>('hand-class').value || 0));
      trainOn = 'hand';
      $<HTMLButtonElement>('train').disabled = model === undefined;
    }
    drawHand();
  };
}

async function fineTune(): Promise<void> {
  if (!model || trainOn === undefined) return;
  const iters = Math.max(1, Math.floor(Number($<HTMLInputElement>('iters').value)));
  const batchSize = Math.max(1, Math.floor(Number($<HTMLInputElement>('batch').value)));
  const lr = Number($<HTMLInputElement>('lr').value);
  const status = $('train-status');
  delete document.body.dataset['trained'];
  $<HTMLButtonElement>('train').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  stopTraining = new AbortController();
  try {
    const options = { iters, batchSize, lr, warmupIters: Math.min(10, Math.floor(iters / 5)) };
    let data: Parameters<RetinaNet['fineTune']>[0];
    if (trainOn === 'hand') {
      const labelled = hand.filter((h) => h.boxes.length > 0);
      data = { classNames: handClasses(), images: labelled.map((h) => ({ image: h.file, boxes: h.boxes, labels: h.labels })) };
    } else {
      data = datasetSource((await loadDataset(datasetFolder!)).dataset);
    }
    const { tuned, trainer } = await model.fineTune(data, options);
    status.textContent = `step 0 of ${iters}: compiling the training graph…`;
    const result = await trainer.run({
      signal: stopTraining.signal,
      onStep: (r) => {
        status.textContent = `step ${r.iter + 1} of ${iters}: loss ${r.loss.toFixed(4)} (classification ${r.loss_cls.toFixed(4)}, box ${r.loss_box.toFixed(4)}), ${r.time.toFixed(1)} s`;
        plotLoss(trainer.records, iters);
      },
    });
    document.body.dataset['losses'] = JSON.stringify(trainer.records.map((r) => r.loss));
    status.textContent += result.stopped === 'done' ? ' · done: detections now use the fine-tuned model' : ` · stopped (${result.message ?? result.stopped})`;
    if (trainer.records.length > 0 && result.stopped !== 'nan') {
      await useModel(tuned);
      $<HTMLButtonElement>('download-weights').disabled = false;
    }
    document.body.dataset['trained'] = result.stopped;
  } catch (err) {
    status.textContent = message(err);
    status.className = 'error';
  } finally {
    $<HTMLButtonElement>('train').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

// ---- Wiring ----

function showView(view: 'detect' | 'tune'): void {
  $('view-detect').hidden = view !== 'detect';
  $('view-tune').hidden = view !== 'tune';
  $('tab-detect').className = view === 'detect' ? 'on' : '';
  $('tab-tune').className = view === 'tune' ? 'on' : '';
}

async function loadPicked(files: FileList): Promise<void> {
  const list = [...files];
  const weights = list.find((f) => f.name.endsWith('.safetensors'));
  const sidecar = list.find((f) => f.name.endsWith('.json'));
  if (!weights) return setStatus('pick a .safetensors file (with its .json sidecar)', true);
  try {
    await useModel(await RetinaNet.fromBytes(weights, sidecar, { name: weights.name }));
  } catch (err) {
    setStatus(message(err), true);
  }
}

async function start(): Promise<void> {
  $('tab-detect').onclick = () => showView('detect');
  $('tab-tune').onclick = () => showView('tune');
  $<HTMLInputElement>('score').oninput = draw;
  $<HTMLSelectElement>('image-select').onchange = (e) => {
    current = Number((e.target as HTMLSelectElement).value);
    draw();
  };
  $<HTMLInputElement>('image-input').onchange = (e) => void addImages((e.target as HTMLInputElement).files ?? []);
  const drop = $('drop');
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.className = 'over';
  };
  drop.ondragleave = () => (drop.className = '');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.className = '';
    void addImages([...(e.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith('image/')));
  };
  $('download-json').onclick = () => download('detections.json', JSON.stringify(cocoResults().results), 'application/json');
  $<HTMLInputElement>('weights-input').onchange = (e) => void loadPicked((e.target as HTMLInputElement).files!);
  $<HTMLInputElement>('data-input').onchange = (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files?.length) void mountDataset(() => mountFiles(files), `${files.length} files`);
  };
  $<HTMLInputElement>('zip-input').onchange = (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void mountDataset(() => mountZip(file), file.name);
  };
  wireHand();
  $('train').onclick = () => void fineTune();
  $('stop').onclick = () => stopTraining?.abort();
  $('download-weights').onclick = async () => {
    if (!model) return;
    const saved = await model.saveWeights();
    download('model.safetensors', saved.weights as unknown as BlobPart, 'application/octet-stream');
    download('model.json', saved.sidecar, 'application/json');
  };
  // Weights served with the app (`retinanet serve --weights W`), else picked in the page.
  const served = await fetch('./model/model.safetensors', { method: 'HEAD' });
  if (served.ok) {
    setStatus('loading the model…');
    await useModel(await RetinaNet.fromWeights('./model/model.safetensors'));
  } else {
    $('weights-row').hidden = false;
    setStatus('no weights served: pick a .safetensors file');
  }
  document.body.dataset['ready'] = 'true';
}

start().catch((err: unknown) => setStatus(message(err), true));
