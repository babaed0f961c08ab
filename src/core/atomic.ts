import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * Writes `file` through a temporary name and a rename, so readers never see a half-written
 * file: when the write fails (a full disk), `file` keeps its previous content and the
 * temporary file is removed.
 */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
