/**
 * Worker thread of BatchPrefetcher: decodes, augments, transforms and assigns targets for the
 * batches it is asked for, while the main thread is blocked inside ONNX Runtime.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchOptions, type PreparedBatch, prepareBatch } from './batches.js';
import { type Sample, type SampleSource, datasetSource, memorySource } from '../data/source.js';
import type { DetectionDataset } from '../data/types.js';
import { LOSS_TARGET_NAMES } from '../detection/loss_targets.js';
import { InputError } from '../core/errors.js';

interface Init {
  dataset?: DetectionDataset;
  classNames: string[];
  opts: BatchOptions;
}

export interface PrefetchRequest {
  id: number;
  iter: number;
  indices: number[];
  /** The samples themselves, for in-memory sources (in `indices` order). */
  samples?: Sample[];
}

/** A prepared batch, or the error that stopped it (`input`: it was an InputError, e.g. an unreadable image in strict mode). */
export type PrefetchReply = { id: number; batch: PreparedBatch } | { id: number; error: string; input: boolean };

const init = workerData as Init;
const fileSource: SampleSource | undefined = init.dataset ? datasetSource(init.dataset) : undefined;

function transferables(b: PreparedBatch): ArrayBuffer[] {
  return [b.images.buffer, ...LOSS_TARGET_NAMES.map((name) => b.targets[name].buffer)] as ArrayBuffer[];
}

parentPort!.on('message', (req: PrefetchRequest) => {
  const run = async (): Promise<PreparedBatch> => {
    if (fileSource) return prepareBatch(fileSource, req.iter, req.indices, init.opts);
    const local = memorySource(req.samples ?? [], init.classNames);
    const b = await prepareBatch(local, req.iter, req.samples!.map((_, k) => k), init.opts);
    return { ...b, indices: req.indices };
  };
  run().then(
    (batch) => parentPort!.postMessage({ id: req.id, batch } satisfies PrefetchReply, transferables(batch)),
    (err: unknown) => parentPort!.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err), input: err instanceof InputError } satisfies PrefetchReply),
  );
});
