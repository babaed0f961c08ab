/**
 * The web app of `retinanet serve` in Chromium: it loads the served weights, detects on a picked
 * (and on a dropped) photo and draws the boxes (the canvas differs from the bare photo), the score slider hides
 * them, the COCO results JSON downloads; then fine-tuning on a zipped VOC set runs a few steps
 * with a falling loss, and the weights download; then boxes drawn by hand (mouse drags) train a
 * one-class model for a few steps, which detection then uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { zipSync } from 'fflate';
import { startServe } from '../../src/cli/serve.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { SHARED_DATA, tinyHashModel } from '../export/helpers.js';
import { chromiumPath, ensureBundle, skipBrowser } from './helpers.js';

const BCCD = path.join(SHARED_DATA, 'bccd');
const PHOTO = path.join(BCCD, 'JPEGImages/BloodImage_00001.jpg');
const skip = skipBrowser() || (readable(PHOTO) ? false : `${PHOTO} not found: app test skipped`);

function readable(p: string): boolean {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
}

test('the web app: detect, draw, slider, COCO JSON; fine-tune with a falling loss, download weights; boxes drawn by hand', { skip, timeout: 600_000 }, async () => {
  await ensureBundle();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-app-'));
  const { chromium } = await import('playwright-core');
  const model = tinyHashModel();
  await model.saveWeights(path.join(dir, 'model.safetensors'));
  // A small VOC set (two BCCD images) as a zip, as a user would pick it.
  const names = ['BloodImage_00000', 'BloodImage_00001'];
  const files: Record<string, Uint8Array> = {};
  for (const n of names) {
    files[`bccd/JPEGImages/${n}.jpg`] = readFileSync(path.join(BCCD, 'JPEGImages', `${n}.jpg`));
    files[`bccd/Annotations/${n}.xml`] = readFileSync(path.join(BCCD, 'Annotations', `${n}.xml`));
  }
  const zip = path.join(dir, 'bccd-small.zip');
  (await import('node:fs')).writeFileSync(zip, zipSync(files));

  const server = await startServe({ weights: path.join(dir, 'model.safetensors'), port: 0 });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  const log: string[] = [];
  try {
    const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
    page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
    const fail = (what: string) => (err: Error) => {
      throw new Error(`${what}: ${err.message}\nstatus: ${log.join('\n')}`);
    };
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 }).catch(fail('app start'));
    assert.match(await page.textContent('#status') ?? '', /WebAssembly/, 'the backend is reported');

    // Detect: pick a photo; boxes drawn at a low threshold, none at 1.
    await page.setInputFiles('#image-input', PHOTO);
    await page.waitForSelector('body[data-detected="1"]', { timeout: 180_000 }).catch(fail('detect'));
    const setScore = (v: number) => page.$eval('#score', (el, value) => {
      (el as HTMLInputElement).value = String(value);
      el.dispatchEvent(new Event('input'));
    }, v);
    const canvasPixels = () => page.$eval('#canvas', (c) => {
      const cv = c as HTMLCanvasElement;
      return Array.from(cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data);
    });
    await setScore(1);
    const bare = await canvasPixels();
    assert.equal(await page.$eval('#count', (e) => (e as HTMLElement).dataset['shown']), '0');
    await setScore(0.05);
    const shown = Number(await page.$eval('#count', (e) => (e as HTMLElement).dataset['shown']));
    assert.ok(shown > 0, `detections drawn at 0.05: ${shown}`);
    const drawn = await canvasPixels();
    let changed = 0;
    for (let i = 0; i < drawn.length; i += 4) if (drawn[i] !== bare[i] || drawn[i + 1] !== bare[i + 1] || drawn[i + 2] !== bare[i + 2]) changed++;
    assert.ok(changed > 500, `boxes and labels change the drawing: ${changed} pixels`);
    const shot = await page.locator('#canvas').screenshot();
    assert.ok(shot.length > 10_000, 'the screenshot of the canvas is a real picture');

    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#download-json')]);
    const results = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { image_id: number; category_id: number; bbox: number[]; score: number }[];
    assert.equal(json.suggestedFilename(), 'detections.json');
    assert.equal(results.length, shown, 'the JSON holds every detection');
    assert.ok(results.every((r) => r.image_id === 1 && r.bbox.length === 4 && r.score >= 0.05 && (model.categoryIds ?? []).includes(r.category_id)));

    // A dropped image is detected on too.
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
      document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, readFileSync(path.join(BCCD, 'JPEGImages/BloodImage_00000.jpg')).toString('base64'));
    await page.waitForSelector('body[data-detected="2"]', { timeout: 180_000 }).catch(fail('drop'));
    assert.equal(await page.$eval('#image-select', (e) => (e as HTMLSelectElement).options.length), 2);

    // Fine-tune on the zipped VOC set.
    await page.click('#tab-tune');
    await page.setInputFiles('#zip-input', zip);
    await page.waitForFunction(() => /voc, 2 images/.test(document.getElementById('data-status')!.textContent ?? ''), undefined, { timeout: 60_000 }).catch(fail('dataset'));
    await page.fill('#iters', '8');
    await page.fill('#batch', '1');
    await page.fill('#lr', '0.01');
    await page.click('#train');
    await page.waitForSelector('body[data-trained]', { timeout: 400_000 }).catch(fail('fine-tune'));
    assert.equal(await page.$eval('body', (b) => (b as HTMLElement).dataset['trained']), 'done', await page.textContent('#train-status') ?? '');
    const losses = JSON.parse(await page.$eval('body', (b) => (b as HTMLElement).dataset['losses']!)) as number[];
    console.log(`# fine-tune losses in the app: ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    assert.equal(losses.length, 8);
    // The same two images alternate (batch 1): compare each image's loss at the start and the end.
    // (The two images hold RBC and WBC only: the classes are those present.)
    assert.ok(losses[6]! < losses[0]! && losses[7]! < losses[1]!, `the loss falls: ${losses.join(', ')}`);
    assert.ok((await page.$eval('#loss-line', (e) => e.getAttribute('points') ?? '')).split(' ').length === 8, 'the loss curve has a point per step');

    const downloads: { name: string; file: string }[] = [];
    page.on('download', async (d) => downloads.push({ name: d.suggestedFilename(), file: (await d.path())! }));
    await page.click('#download-weights');
    await page.waitForFunction(() => true);
    for (let k = 0; k < 100 && downloads.length < 2; k++) await new Promise((r) => setTimeout(r, 100));
    const weights = downloads.find((d) => d.name === 'model.safetensors');
    const sidecar = downloads.find((d) => d.name === 'model.json');
    assert.ok(weights && sidecar, `both files download: ${downloads.map((d) => d.name).join(', ')}`);
    assert.ok(decodeSafetensors(readFileSync(weights.file)).tensors.size > 0);
    assert.deepEqual((JSON.parse(readFileSync(sidecar.file, 'utf8')) as { classNames: string[] }).classNames, ['RBC', 'WBC']);

    // Boxes drawn by hand: one class, two boxes dragged on a photo, a few steps.
    await page.fill('#hand-classes', 'cell');
    await page.setInputFiles('#hand-input', PHOTO);
    await page.waitForSelector('body[data-hand-boxes="0"]');
    const area = (await page.locator('#hand-canvas').boundingBox())!;
    for (const [a, b, c, d] of [[0.1, 0.1, 0.4, 0.5], [0.5, 0.4, 0.8, 0.9]] as const) {
      await page.mouse.move(area.x + a * area.width, area.y + b * area.height);
      await page.mouse.down();
      await page.mouse.move(area.x + c * area.width, area.y + d * area.height, { steps: 4 });
      await page.mouse.up();
    }
    await page.waitForSelector('body[data-hand-boxes="2"]', { timeout: 10_000 }).catch(fail('drawing boxes'));
    await page.fill('#iters', '3');
    await page.click('#train');
    await page.waitForSelector('body[data-trained]', { timeout: 400_000 }).catch(fail('fine-tune on hand-drawn boxes'));
    assert.equal(await page.$eval('body', (b) => (b as HTMLElement).dataset['trained']), 'done', await page.textContent('#train-status') ?? '');
    const handLosses = JSON.parse(await page.$eval('body', (b) => (b as HTMLElement).dataset['losses']!)) as number[];
    console.log(`# fine-tune on hand-drawn boxes: ${handLosses.map((l) => l.toFixed(4)).join(' ')}`);
    assert.equal(handLosses.length, 3);
    assert.ok(handLosses.every(Number.isFinite));
    assert.match(await page.textContent('#status') ?? '', /1 classes/, 'detection now uses the one-class model');
  } finally {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
