import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'data', ...args], { encoding: 'utf8' });

test('retinanet data check: statistics, problems, exit codes, --json, --strict', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'check-'));
  try {
    await mkdir(path.join(dir, 'img'));
    const png = await sharp(Buffer.alloc(200 * 100 * 3), { raw: { width: 200, height: 100, channels: 3 } }).png().toBuffer();
    await writeFile(path.join(dir, 'img/a.png'), png);
    await writeFile(path.join(dir, 'img/b.png'), png);
    const csv = path.join(dir, 'train.csv');
    await writeFile(csv, 'img/a.png,10,10,60,60,cat\nimg/a.png,0,0,2,2,dog\nimg/b.png,,,,,\n');
    const ok = run('check', csv, '--draw', path.join(dir, 'drawn'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /drew 2 images/);
    assert.equal((await sharp(path.join(dir, 'drawn', 'a.png')).metadata()).width, 200);
    assert.match(ok.stdout, /images: 2 \(1 without boxes\)/);
    assert.match(ok.stdout, /boxes: 2 /);
    assert.match(ok.stdout, /1 of 2 boxes \(50\.0%\) have no anchor with IoU >= 0\.5/);
    assert.match(ok.stdout, /problems: none/);

    await writeFile(csv, 'img/a.png,10,10,60,60,cat\nimg/a.png,10,10,300,60,cat\nimg/a.png,1,x\n');
    const warn = run('check', csv, '--json');
    assert.equal(warn.status, 1);
    const report = JSON.parse(warn.stdout) as { stats: { boxes: number }; problems: { line: number; message: string }[] };
    assert.equal(report.stats.boxes, 2);
    assert.deepEqual(report.problems.map((p) => p.line), [2, 3]);

    const strict = run('check', csv, '--strict');
    assert.equal(strict.status, 2);
    assert.match(strict.stderr, /train\.csv:3: expected 6 fields/);
    assert.doesNotMatch(strict.stderr, /at .*\.js:\d+/);

    const bad = run('check', path.join(dir, 'nothing-here'));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /no such file or folder/);
    assert.equal(run('frobnicate').status, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
