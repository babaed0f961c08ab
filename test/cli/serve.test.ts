/**
 * `retinanet serve`'s server: loopback by default, the isolation headers on every answer, the
 * app and the given weights served, and nothing else: paths leaving the served folder are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStaticServer } from '../../src/io/static_server.js';

/** GET with the path sent exactly as given (fetch would normalise `..`). */
function rawGet(port: number, rawPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the server hands out its own files and the weights, with COOP/COEP, and refuses paths outside', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-serve-'));
  try {
    const app = path.join(dir, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'index.html'), '<!doctype html>app');
    writeFileSync(path.join(app, 'retinanet.js'), 'export {}');
    writeFileSync(path.join(dir, 'secret.txt'), 'secret');
    writeFileSync(path.join(dir, 'model.safetensors'), 'weights');
    symlinkSync(path.join(dir, 'secret.txt'), path.join(app, 'link.txt'));
    const server = await startStaticServer({ port: 0, folders: [{ prefix: '/', dir: app }], files: { '/model/model.safetensors': path.join(dir, 'model.safetensors') } });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback by default');
      const index = await rawGet(server.port, '/');
      assert.equal(index.status, 200);
      assert.equal(index.body, '<!doctype html>app');
      assert.equal(index.headers['cross-origin-opener-policy'], 'same-origin');
      assert.equal(index.headers['cross-origin-embedder-policy'], 'require-corp');
      assert.match(String(index.headers['content-type']), /text\/html/);
      assert.match(String((await rawGet(server.port, '/retinanet.js')).headers['content-type']), /javascript/);
      assert.equal((await rawGet(server.port, '/model/model.safetensors')).body, 'weights');
      for (const bad of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2E%2E%2Fsecret.txt', '/app/../../secret.txt', '/..\\secret.txt', '/link.txt', '/%00index.html', '/model/../secret.txt']) {
        const res = await rawGet(server.port, bad);
        assert.ok(res.status === 403 || res.status === 404, `${bad}: ${res.status}`);
        assert.notEqual(res.body, 'secret', bad);
      }
      assert.equal((await rawGet(server.port, '/missing.js')).status, 404);
      const post = await new Promise<number>((resolve) => http.request({ host: '127.0.0.1', port: server.port, path: '/', method: 'POST' }, (r) => resolve(r.statusCode ?? 0)).end());
      assert.equal(post, 405);
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('retinanet serve: prints its loopback address, serves the app and the weights, stops on SIGTERM; bad flags are one-line errors', async () => {
  const { spawn, spawnSync } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/cli/main.js');
  const bad = spawnSync(process.execPath, [cli, 'serve', '--port', '70000'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--port must be <= 65535/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  const missing = spawnSync(process.execPath, [cli, 'serve', '--weights', '/nonexistent/model.safetensors'], { encoding: 'utf8' });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no such file/);
  const browserDir = path.resolve(path.dirname(cli), '../../browser');
  if (!existsSync(path.join(browserDir, 'index.html'))) return; // the app is built by npm test (build:browser)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retinanet-serve-cli-'));
  writeFileSync(path.join(dir, 'm.safetensors'), 'weights');
  writeFileSync(path.join(dir, 'm.json'), '{"sidecar":true}');
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--quiet', '--weights', path.join(dir, 'm.safetensors')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const port = Number(new URL(url).port);
    const index = await rawGet(port, '/');
    assert.equal(index.status, 200);
    assert.match(index.body, /retinanet-ts/);
    assert.equal(index.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await rawGet(port, '/model/model.safetensors')).body, 'weights');
    assert.equal((await rawGet(port, '/model/model.json')).body, '{"sidecar":true}');
    assert.equal((await rawGet(port, '/../../package.json')).status, 403);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'serve stops cleanly on SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
