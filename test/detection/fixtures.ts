import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

// Tests run from dist/test/detection; fixtures stay in the source tree.
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(here, '../../../test/fixtures/detection');

/** Parsed golden fixture written by scripts/fixtures/gen_detection.py. */
export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as T;
}

/** Asserts |actual - expected| <= atol + rtol * |expected| element-wise, reporting the first miss. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** Asserts exact float32 equality (expected values are float32 printed with 9 digits). */
export function assertF32Equal(actual: ArrayLike<number>, expected: ArrayLike<number>, what = 'values'): void {
  assertClose(actual, Array.from(expected, (v) => Math.fround(v)), 0, 0, what);
}
