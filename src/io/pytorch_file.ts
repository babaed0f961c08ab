import { fs } from '../platform/files.js';
import { decodeTorchCheckpoint, isTorchCheckpoint, TorchCheckpointError, type TorchReadOptions, type TorchStateDict } from './pytorch.js';
import { decodeSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.js';

/**
 * File access for the PyTorch checkpoint reader (through the platform's files): a thin wrapper,
 * so that src/io/pytorch.ts (and src/io/pickle.ts, src/io/zip.ts) stay free of file access.
 */

async function read(path: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    throw new TorchCheckpointError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Reads and decodes a `torch.save` checkpoint (.pth/.pt); errors name the file. See {@link decodeTorchCheckpoint}. */
export async function readTorchCheckpoint(path: string, options: Omit<TorchReadOptions, 'source'> = {}): Promise<TorchStateDict> {
  return decodeTorchCheckpoint(await read(path), { ...options, source: path });
}

/** A weights file read by {@link readTensorFile}: which format it was, and its tensors. */
export interface TensorFile extends SafetensorsFile {
  format: 'safetensors' | TorchStateDict['format'];
}

/**
 * Reads a weights file that is either safetensors or a PyTorch checkpoint, told apart by its
 * content ({@link isTorchCheckpoint}), not its name. `key` and `stripPrefix` apply to PyTorch
 * checkpoints only.
 */
export async function readTensorFile(path: string, options: Omit<TorchReadOptions, 'source'> = {}): Promise<TensorFile> {
  const bytes = await read(path);
  if (isTorchCheckpoint(bytes)) return decodeTorchCheckpoint(bytes, { ...options, source: path });
  let file: SafetensorsFile;
  try {
    file = decodeSafetensors(bytes, { keepF64: options.keepF64 ?? false, source: path });
  } catch (err) {
    // Say what it is not: a web page saved as .pth gets no safetensors-only diagnosis.
    if (err instanceof SafetensorsError) throw new SafetensorsError(`${path} is neither a PyTorch checkpoint (torch.save) nor a safetensors file (${err.message.replace(`${path}: `, '').replace(/^not a valid safetensors file: /, '')})`);
    throw err;
  }
  return { ...file, format: 'safetensors' };
}
