/**
 * The exported model in onnxruntime-web (its WebAssembly backend, run here in Node): the same
 * file loads and gives RetinaNet.detect's detections. onnxruntime-web is not a dependency of
 * this package; the test runs when RETINANET_ORT_WEB names its Node entry (e.g.
 * .../node_modules/onnxruntime-web/dist/ort.node.min.mjs, after `npm install onnxruntime-web`
 * in a folder of your choice) or when 'onnxruntime-web' resolves from here, and is skipped
 * otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { chwToHwcBytes } from '../../src/io/image.js';
import { exportDetector } from '../../src/model/export.js';
import { compareDetections, hashImage, realImages, tinyHashModel } from './helpers.js';

/** The parts of onnxruntime-web's API this test uses. */
interface OrtWeb {
  env: { wasm: { numThreads: number } };
  Tensor: new (type: 'uint8', data: Uint8Array, dims: number[]) => unknown;
  InferenceSession: {
    create(model: Uint8Array, options: { executionProviders: string[] }): Promise<{
      run(feeds: Record<string, unknown>): Promise<Record<string, { data: ArrayLike<number | bigint>; dims: readonly number[] }>>;
      release(): Promise<void>;
    }>;
  };
}

async function loadOrtWeb(): Promise<OrtWeb | undefined> {
  const given = process.env['RETINANET_ORT_WEB'];
  const specs = given ? [given.startsWith('/') ? pathToFileURL(given).href : given] : ['onnxruntime-web'];
  for (const spec of specs) {
    try {
      return (await import(spec)) as OrtWeb;
    } catch {
      // not installed
    }
  }
  return undefined;
}

const web = await loadOrtWeb();

test('onnxruntime-web (WebAssembly) runs the exported model and gives RetinaNet.detect\'s detections', { skip: web ? false : 'onnxruntime-web not found (set RETINANET_ORT_WEB to its dist/ort.node.min.mjs)' }, async (t) => {
  web!.env.wasm.numThreads = 1;
  const model = tinyHashModel();
  const session = await web!.InferenceSession.create(exportDetector(model), { executionProviders: ['wasm'] });
  const images = [{ name: 'generated 400x100', image: hashImage(100, 400, 'web') }, ...((await realImages(3)) ?? [])];
  for (const { name, image } of images) {
    const [host] = await model.detect([image], { threads: 2 });
    const out = await session.run({ image: new web!.Tensor('uint8', chwToHwcBytes(image), [image.height, image.width, 3]) });
    const c = compareDetections(host!, { boxes: out['boxes']!.data as Float32Array, scores: out['scores']!.data as Float32Array, labels: out['labels']!.data as BigInt64Array }, 0.5, 1e-4);
    assert.deepEqual(c.problems, [], `${name}: ${c.problems.slice(0, 5).join('; ')}`);
    t.diagnostic(`${name}: ${c.matched}/${host!.scores.length} matched, max box error ${c.maxBoxError.toExponential(1)} px, max score error ${c.maxScoreError.toExponential(1)}`);
  }
  await session.release();
  await model.dispose();
});
