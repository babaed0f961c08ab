/** Machine facts in a browser. Node twin: system.ts. */
import type { PlatformSystem } from './types.js';

export const system: PlatformSystem = {
  name: 'browser',
  defaultThreads: () => globalThis.navigator?.hardwareConcurrency ?? 1,
  totalMemory: () => undefined,
  env: () => undefined,
};
