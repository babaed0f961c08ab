/**
 * Helpers of the tests in a real browser: Debian's Chromium (/usr/bin/chromium, or
 * RETINANET_CHROMIUM) driven by playwright-core (no browser download), headless; the bundle built
 * when missing; pages served by `retinanet serve`'s server (cross-origin isolated).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { BROWSER_DIR, BUNDLE, buildBrowser } from '../../scripts/build_browser.js';
import { type FolderMount, type StaticServer, startStaticServer } from '../../src/io/static_server.js';

export { BROWSER_DIR, BUNDLE };

/** The Chromium binary the tests drive, or undefined when there is none. */
export function chromiumPath(): string | undefined {
  const given = process.env['RETINANET_CHROMIUM'];
  for (const p of [given, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return undefined;
}

/** Why the browser tests are skipped here, or false when they run. */
export function skipBrowser(): string | false {
  return chromiumPath() ? false : 'Chromium not found (/usr/bin/chromium; `apt-get install chromium`, or set RETINANET_CHROMIUM): browser test skipped';
}

/** Builds the bundle unless `npm test` (or build:browser) has already. */
export async function ensureBundle(): Promise<void> {
  if (!existsSync(BUNDLE) || !existsSync(path.join(BROWSER_DIR, 'ort-wasm-simd-threaded.jsep.wasm'))) await buildBrowser();
}

export interface BrowserSession {
  browser: Browser;
  page: Page;
  server: StaticServer;
  /** Messages the page logged (console and uncaught errors), for failure messages. */
  log: string[];
  close(): Promise<void>;
}

/**
 * Serves dist/browser at `/` (plus `folders` and `files`), launches headless Chromium and opens
 * `page` (a URL path on that server: the page must come from the server to be cross-origin
 * isolated).
 */
export async function openBrowser(opts: { folders?: FolderMount[]; files?: Record<string, string>; page: string }): Promise<BrowserSession> {
  await ensureBundle();
  const { chromium } = await import('playwright-core');
  const server = await startStaticServer({ port: 0, folders: [{ prefix: '/', dir: BROWSER_DIR }, ...(opts.folders ?? [])], files: opts.files });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  await page.goto(new URL(opts.page, server.url).href);
  return {
    browser,
    page,
    server,
    log,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}

/** FNV-1a of the 8-bit values of an RGB CHW image in [0, 1] (the decoded bytes, exactly). */
export function pixelHash(data: Float32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= Math.round(data[i]! * 255);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

/** The same hash as page code (functions passed to page.evaluate cannot close over imports). */
export const PIXEL_HASH_SOURCE = pixelHash.toString();

/** Rejects with the page's log when `work` has not settled after `ms` (a hung page fails the test, with where it was). */
export async function within<T>(session: BrowserSession, work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not finish in ${ms / 1000} s; its log:\n${session.log.join('\n')}`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (err) {
    if ((err as Error).message.includes('its log:')) throw err;
    throw new Error(`${(err as Error).message}\nthe page's log:\n${session.log.join('\n')}`);
  } finally {
    clearTimeout(timer);
  }
}
