/**
 * Public API of the queue layer (`retinanet-ts/queue`): detection and evaluation sharded over
 * any number of workers through a BullMQ queue on Redis. See docs/scaling.md.
 */
export { type RedisTarget, parseRedisUrl, connectRedis, redisOptions, bullConnection } from './connection.js';
export { type ModelSpec, type JobOptions, ModelMismatchError, describeModel, contentHash, fileSha256, verifyModel, modelOverrides } from './model_spec.js';
export {
  type RunImage,
  type RunSpec,
  type ShardJobData,
  type ImageOutcome,
  QUEUE_NAME,
  SHARD_JOB,
  runKeys,
  shardJobId,
  checkRunId,
  newRunId,
  shardImages,
  shardCount,
  parseShardJob,
  parseRunSpec,
  parseOutcome,
} from './run.js';
export { QueueWorker, type QueueWorkerOptions, type WorkerEvent, type ShardSummary } from './worker.js';
export { QueueRun, type RunProgress, type RunNote, type ShardFailure, type RunOutcome, type WaitOptions, type OpenRunOptions, type AssembledRun, assembleRun } from './producer.js';
