/** Machine facts on Node. Browser twin: system.browser.ts. */
import os from 'node:os';
import type { PlatformSystem } from './types.js';

export const system: PlatformSystem = {
  name: 'node',
  defaultThreads: () => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
  totalMemory: () => os.totalmem(),
  env: (name) => process.env[name],
};
