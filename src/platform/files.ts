/** Files on Node: node:fs and node:path themselves. Browser twin: files.browser.ts. */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { writeAtomic } from '../core/atomic.js';
import type { PlatformFiles, PlatformPath } from './types.js';

export const fs: PlatformFiles = { existsSync, statSync, readdirSync, readFileSync, readdir, readFile, writeFile, writeAtomic };

export const path: PlatformPath = nodePath;
