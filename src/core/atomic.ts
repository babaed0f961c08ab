import { rename, writeFile } from 'node:fs/promises';

/** Writes `file` through a temporary name and a rename, so readers never see a half-written file. */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
