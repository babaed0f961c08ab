/**
 * Anchor generation, identical (same values, same order) to torchvision's `AnchorGenerator`
 * as configured by `retinanet_resnet50_fpn`.
 */

/** Anchor layout per pyramid level. All arrays have one entry per level, finest level first. */
export interface AnchorConfig {
  /** Anchor sizes (square-root of the area, pixels) per level. */
  readonly sizes: readonly (readonly number[])[];
  /** Aspect ratios (height / width) per level. */
  readonly aspectRatios: readonly (readonly number[])[];
  /**
   * Nominal downsampling factor of each level's feature map. Only used to derive the grid
   * size (`ceil(padded / stride)`, what a ResNet-FPN produces); the actual anchor stride is
   * `floor(padded / grid)` exactly as torchvision computes it (so 800 px gives 61, not 64, on P6).
   */
  readonly strides: readonly number[];
}

/** Feature-map size `[height, width]` of one level. */
export type GridSize = readonly [height: number, width: number];

/** Parameters of {@link makeAnchorConfig}; every field has RetinaNet's default. */
export interface AnchorConfigOptions {
  /** Base anchor size per level (pixels). Default 32, 64, 128, 256, 512 (P3-P7). */
  baseSizes?: readonly number[];
  /** Size multipliers within a level. Default 2^0, 2^(1/3), 2^(2/3) (3 scales per octave). */
  scales?: readonly number[];
  /** Aspect ratios (height / width), the same on every level. Default 0.5, 1, 2. */
  aspectRatios?: readonly number[];
  /** Nominal stride per level. Default 2^(3 + level): 8 ... 128. */
  strides?: readonly number[];
}

/**
 * Anchor config from base sizes x scales x ratios. Sizes are `trunc(base * scale)`, as
 * torchvision's `int(x * 2 ** (k / 3))`, so the default reproduces `retinanet_resnet50_fpn`.
 */
export function makeAnchorConfig(opts: AnchorConfigOptions = {}): AnchorConfig {
  const baseSizes = opts.baseSizes ?? [32, 64, 128, 256, 512];
  const scales = opts.scales ?? [1, 2 ** (1 / 3), 2 ** (2 / 3)];
  const ratios = opts.aspectRatios ?? [0.5, 1.0, 2.0];
  const strides = opts.strides ?? baseSizes.map((_, l) => 2 ** (3 + l));
  if (strides.length !== baseSizes.length) throw new RangeError('anchor config: one stride per level expected');
  return Object.freeze({
    sizes: baseSizes.map((x) => scales.map((s) => Math.trunc(x * s))),
    aspectRatios: baseSizes.map(() => [...ratios]),
    strides: [...strides],
  });
}

/**
 * RetinaNet defaults (P3-P7): sizes `(x, int(x * 2^(1/3)), int(x * 2^(2/3)))` for x in
 * 32..512, ratios 0.5/1/2, 9 anchors per location.
 */
export const RETINANET_ANCHOR_CONFIG: AnchorConfig = makeAnchorConfig();

const f = Math.fround;

/** torch.round: round half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Anchors centred on the origin for one level (torchvision's `generate_anchors`):
 * `Float32Array` of `ratios.length * sizes.length` xyxy boxes, ratio-major.
 */
export function cellAnchors(sizes: readonly number[], aspectRatios: readonly number[]): Float32Array {
  const out = new Float32Array(4 * sizes.length * aspectRatios.length);
  let o = 0;
  for (const ratio of aspectRatios) {
    const hRatio = f(Math.sqrt(f(ratio)));
    const wRatio = f(1 / hRatio);
    for (const size of sizes) {
      const ws = f(wRatio * f(size));
      const hs = f(hRatio * f(size));
      out[o++] = roundHalfEven(f(-ws / 2));
      out[o++] = roundHalfEven(f(-hs / 2));
      out[o++] = roundHalfEven(f(ws / 2));
      out[o++] = roundHalfEven(f(hs / 2));
    }
  }
  return out;
}

/** Number of anchors per feature-map location on each level. */
export function anchorsPerLocation(config: AnchorConfig = RETINANET_ANCHOR_CONFIG): number[] {
  return config.sizes.map((s, l) => s.length * (config.aspectRatios[l]?.length ?? 0));
}

/** Grid size of each level for a padded image, as a ResNet-FPN computes it: `ceil(padded / stride)`. */
export function gridSizesFor(paddedH: number, paddedW: number, strides: readonly number[]): GridSize[] {
  return strides.map((s) => [Math.ceil(paddedH / s), Math.ceil(paddedW / s)] as const);
}

/**
 * Anchors of one padded image, one `Float32Array` per level (length 4 * H_l * W_l * A_l), in
 * torchvision's order: location-major (row, then column), then cell anchor. Coordinates are xyxy
 * pixels of the padded image. `grids` overrides the grid sizes derived from `config.strides`.
 */
export function anchorsForImage(
  paddedH: number,
  paddedW: number,
  config: AnchorConfig = RETINANET_ANCHOR_CONFIG,
  grids: readonly GridSize[] = gridSizesFor(paddedH, paddedW, config.strides),
): Float32Array[] {
  if (config.sizes.length !== config.aspectRatios.length || config.sizes.length !== grids.length) {
    throw new RangeError('anchor config: sizes, aspectRatios and grids need one entry per level');
  }
  return grids.map(([gh, gw], level) => {
    const cell = cellAnchors(config.sizes[level]!, config.aspectRatios[level]!);
    const strideY = Math.floor(paddedH / gh);
    const strideX = Math.floor(paddedW / gw);
    const out = new Float32Array(gh * gw * cell.length);
    let o = 0;
    for (let y = 0; y < gh; y++) {
      const sy = y * strideY;
      for (let x = 0; x < gw; x++) {
        const sx = x * strideX;
        for (let k = 0; k < cell.length; k += 4) {
          out[o++] = f(sx + cell[k]!);
          out[o++] = f(sy + cell[k + 1]!);
          out[o++] = f(sx + cell[k + 2]!);
          out[o++] = f(sy + cell[k + 3]!);
        }
      }
    }
    return out;
  });
}

/** Concatenates per-level arrays (anchors or head outputs) into one, level order preserved. */
export function concatLevels(levels: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(levels.reduce((n, l) => n + l.length, 0));
  let o = 0;
  for (const l of levels) {
    out.set(l, o);
    o += l.length;
  }
  return out;
}
