/**
 * Prepares training batches in a worker thread. ONNX Runtime's `run` blocks the Node.js event
 * loop, so batch preparation on the main thread could never overlap a training step; in a
 * worker it does, and the engine does not wait for decoding or target assignment.
 * Batches are a pure function of (iteration, indices, options), so results are identical to
 * preparing them inline.
 */
import { Worker } from 'node:worker_threads';
import { type BatchOptions, type PreparedBatch, prepareBatch } from './batches.js';
import type { PrefetchReply, PrefetchRequest } from './prefetch_worker.js';
import type { SampleSource } from '../data/source.js';
import { InputError } from '../core/errors.js';

export class BatchPrefetcher {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (b: PreparedBatch) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly source: SampleSource,
    private readonly opts: BatchOptions,
    useWorker = true,
  ) {
    if (!useWorker) return;
    this.worker = new Worker(new URL('./prefetch_worker.js', import.meta.url), {
      workerData: { dataset: source.dataset, classNames: [...source.classNames], opts },
    });
    this.worker.on('message', (reply: PrefetchReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker?.unref();
      if ('error' in reply) p.reject(reply.input ? new InputError(reply.error) : new Error(`batch preparation failed: ${reply.error}`));
      else p.resolve(reply.batch);
    });
    this.worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
    // Keep the process alive only while a batch is being prepared, never for an idle worker.
    this.worker.unref();
  }

  /** Starts preparing the batch of iteration `iter`. */
  async prepare(iter: number, indices: readonly number[]): Promise<PreparedBatch> {
    if (!this.worker) return prepareBatch(this.source, iter, indices, this.opts);
    const req: PrefetchRequest = { id: this.nextId++, iter, indices: [...indices] };
    if (!this.source.dataset) req.samples = await Promise.all(indices.map((i) => this.source.get(i)));
    return new Promise<PreparedBatch>((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      this.worker!.ref();
      this.worker!.postMessage(req);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new Error('batch prefetcher closed'));
    this.pending.clear();
    // An unref'd worker's exit would not keep the loop alive long enough to see terminate() finish.
    w.ref();
    await w.terminate();
  }
}
