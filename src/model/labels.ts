/**
 * Which dataset category each model label stands for. Names decide when the model has them;
 * a nameless model is either index-aligned with the dataset or a torchvision-style COCO model
 * whose label is the category id itself (91 classes, index 0 unused).
 */
import { InputError } from '../core/errors.js';

/** The classes of a dataset: a name and a COCO category id per class index. */
export interface CategoryTable {
  readonly classNames: readonly string[];
  readonly categoryIds: readonly number[];
}

/** Category id per model label (-1: a class the dataset lacks), and a note when the mapping is a guess. */
export interface LabelMapping {
  categoryIds: number[];
  note?: string;
}

/**
 * COCO category id per model label for scoring a model with `numClasses` classes (named
 * `modelNames`, when known) on `dataset`. Throws InputError when no mapping can be trusted.
 */
export function labelCategories(numClasses: number, modelNames: readonly string[] | undefined, dataset: CategoryTable): LabelMapping {
  if (modelNames && modelNames.length === numClasses) {
    const byName = new Map(dataset.classNames.map((n, i) => [n, dataset.categoryIds[i]!]));
    const ids = modelNames.map((n) => byName.get(n) ?? -1);
    if (ids.every((id) => id < 0)) {
      throw new InputError(
        `none of the model's classes (${modelNames.slice(0, 8).join(', ')}${modelNames.length > 8 ? ', ...' : ''}) is a category of the dataset (${dataset.classNames.slice(0, 8).join(', ')}${dataset.classNames.length > 8 ? ', ...' : ''})`,
      );
    }
    return { categoryIds: ids };
  }
  if (numClasses === dataset.classNames.length) return { categoryIds: [...dataset.categoryIds] };
  const maxId = Math.max(...dataset.categoryIds);
  if (numClasses > maxId) {
    return {
      categoryIds: Array.from({ length: numClasses }, (_, i) => i),
      // Said aloud because it is a guess: right for torchvision's COCO weights on COCO data only.
      note: `the model's ${numClasses} classes have no names; its labels are read as the dataset's category ids (torchvision COCO convention)`,
    };
  }
  throw new InputError(
    `the model has ${numClasses} classes without names and the dataset ${dataset.classNames.length} categories (ids up to ${maxId}): cannot tell which is which; give a sidecar or a config with classNames`,
  );
}
