/**
 * Where a training run starts from: a whole RetinaNet checkpoint (fine-tuning, with the
 * classification layer replaced when the class count differs), or an ImageNet ResNet for the
 * backbone; and torchvision's default number of trainable backbone stages for each case.
 */
import { InputError } from '../core/errors.js';
import type { RetinaNetConfig } from './config.js';
import type { RetinaNet } from './model.js';
import { CLASSIFIER_PREFIX, type WeightsLoadReport } from './weights.js';

/**
 * torchvision's default `trainable_backbone_layers`: 3 (conv1 and layer1 frozen) when training
 * starts from pretrained weights (a checkpoint or a backbone), 5 (all stages) from scratch.
 */
export function defaultTrainableLayers(pretrained: boolean): number {
  return pretrained ? 3 : 5;
}

/** The backbone stages training leaves frozen under `trainableLayers` (torchvision's meaning). */
export function frozenStages(trainableLayers: number): string[] {
  return ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'].slice(trainableLayers).reverse();
}

/** What a run starts from (files; names and URLs are resolved before). */
export interface StartingWeights {
  /** A whole RetinaNet (safetensors or .pth): everything loads, a classifier for another class count is re-initialised. */
  weights?: string;
  /** An ImageNet ResNet state_dict: loaded into `backbone.body.*`, FPN and heads initialised. */
  backboneWeights?: string;
}

/** One line on a load for a training run: what was loaded, what re-initialised (`shown` names the weights). */
export function describeLoad(report: WeightsLoadReport, config: RetinaNetConfig, shown: string = report.file): string {
  const loaded = report.loaded.length;
  const backboneOnly = report.loaded.every((n) => n.startsWith('backbone.body.')) && report.initialized.some((n) => !n.startsWith(CLASSIFIER_PREFIX));
  if (backboneOnly) {
    return `backbone from ${shown}: ${loaded} tensors loaded into backbone.body.* (${config.backbone.norm === 'group_norm' ? 'GroupNorm affines' : 'BatchNorm statistics'} included), FPN and heads initialised`;
  }
  if (report.initialized.length > 0) {
    const prior = config.head.priorProbability;
    const had = report.fileClasses !== undefined ? `the weights have ${report.fileClasses}` : 'not in the weights';
    return `fine-tuning from ${shown}: ${loaded} tensors loaded; ${CLASSIFIER_PREFIX.slice(0, -1)} re-initialised for ${config.numClasses} classes (${had}): normal std 0.01, bias -log((1 - ${prior}) / ${prior}) = ${(-Math.log((1 - prior) / prior)).toFixed(3)}`;
  }
  return `starting from ${shown}: all ${loaded} tensors loaded`;
}

/**
 * Loads the weights a training run starts from into `model` (freshly built for the run's
 * config and classes). `weights` is read with `replaceClassifier`; `backboneWeights` fills
 * `backbone.body.*`. Returns the load report, or undefined when neither is given.
 */
export async function loadStartingWeights(model: RetinaNet, start: StartingWeights): Promise<WeightsLoadReport | undefined> {
  if (start.weights !== undefined && start.backboneWeights !== undefined) {
    throw new InputError('give either weights to start from or backbone weights, not both (a checkpoint holds a backbone already)');
  }
  if (start.weights !== undefined) return model.loadWeights(start.weights, { replaceClassifier: true });
  if (start.backboneWeights !== undefined) return model.loadBackboneWeights(start.backboneWeights);
  return undefined;
}
