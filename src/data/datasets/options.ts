/** Options shared by the dataset readers. Paths may be absolute or relative to the working directory. */
export interface ReadOptions {
  /** Folder holding the images, when not where the format's convention puts them. */
  imagesDir?: string;
  /** Subset to read: VOC `ImageSets/Main/<split>.txt`, YOLO `images/<split>/`, COCO `instances_<split>.json`. */
  split?: string;
  /**
   * Class list file: one name per line (`.names`/`.txt`), or keras-retinanet `name,id` lines (`.csv`).
   * Fixes the class order for VOC/YOLO/CSV; boxes of other classes become problems.
   */
  classesFile?: string;
}
