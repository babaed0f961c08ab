/** Training: the trainer and its hooks, recipes, schedules, SGD, batches, checkpoints and the training graph. */
export * from './trainer.js';
export * from './hooks.js';
export * from './recipe.js';
export * from './schedule.js';
export * from './sgd.js';
export * from './log.js';
export { TimeBudget } from './time_budget.js';
export { BatchSampler, prepareBatch, type BatchOptions, type PreparedBatch } from './batches.js';
export { loadCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';
export { buildTrainGraph, trainFeeds, globalNorm, type TrainExecutable } from './train_graph.js';
export { demoConfig, demoTrainOptions, DEMO_DEFAULTS } from './demo_config.js';
export { resultsCsv, resultsSpec } from './plot.js';
export { ReportHook, type ReportHookOptions } from './report_hook.js';
export { torchTrainingFiles, checkTorchvisionConfig, type TorchRunOptions } from './torch_export.js';
export { OhemHook, anchorLosses, focalLossHost, type OhemOptions } from './ohem.js';
