/** Text and JSON renderings of evaluation results, in the formats people already know from pycocotools. */
import { type CocoEvalResult, type CocoStats } from './coco.js';
import type { VocEvalResult } from './voc.js';

/**
 * Python's `'{:0.3f}'.format(v)`: like `toFixed(3)`, except that exact binary ties
 * (e.g. 0.0625) round half to even as Python does, so our printout matches byte for byte.
 */
export function formatFixed3(v: number): string {
  const exact = v.toFixed(20);
  const m = /^(-?)(\d+)\.(\d{3})5(0*)$/.exec(exact);
  if (!m) return v.toFixed(3);
  const down = `${m[1]}${m[2]}.${m[3]}`;
  const lastDigit = Number(m[3]![2]);
  return lastDigit % 2 === 0 ? down : v.toFixed(3);
}

const LINES: readonly { ap: boolean; iou?: string; area: string; md: 0 | 1 | 2 }[] = [
  { ap: true, area: 'all', md: 2 },
  { ap: true, iou: '0.50', area: 'all', md: 2 },
  { ap: true, iou: '0.75', area: 'all', md: 2 },
  { ap: true, area: 'small', md: 2 },
  { ap: true, area: 'medium', md: 2 },
  { ap: true, area: 'large', md: 2 },
  { ap: false, area: 'all', md: 0 },
  { ap: false, area: 'all', md: 1 },
  { ap: false, area: 'all', md: 2 },
  { ap: false, area: 'small', md: 2 },
  { ap: false, area: 'medium', md: 2 },
  { ap: false, area: 'large', md: 2 },
];

/** The 12-line summary exactly as pycocotools' `COCOeval.summarize()` prints it. */
export function formatCocoSummary(result: Pick<CocoEvalResult, 'statsArray' | 'params'>): string {
  const { maxDets, iouThrs } = result.params;
  const range = `${iouThrs[0]!.toFixed(2)}:${iouThrs[iouThrs.length - 1]!.toFixed(2)}`;
  return LINES.map((l, i) => {
    const title = (l.ap ? 'Average Precision' : 'Average Recall').padEnd(18);
    const type = l.ap ? '(AP)' : '(AR)';
    const iou = (l.iou ?? range).padEnd(9);
    // The first line's maxDets is pycocotools' literal default of 100.
    const md = i === 0 ? 100 : maxDets[Math.min(l.md, maxDets.length - 1)]!;
    return ` ${title} ${type} @[ IoU=${iou} | area=${l.area.padStart(6)} | maxDets=${String(md).padStart(3)} ] = ${formatFixed3(result.statsArray[i]!)}`;
  }).join('\n');
}

/** Per-class table (AP columns in percent-free [0, 1], 3 decimals); `-` where a class has no ground truth. */
export function formatCocoPerClass(result: Pick<CocoEvalResult, 'perCategory'>): string {
  const width = Math.max(5, ...result.perCategory.map((c) => c.name.length));
  const cols = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100'] as const;
  const head = `${'class'.padEnd(width)}  ${cols.map((c) => c.padStart(6)).join(' ')}  ${'gts'.padStart(6)}`;
  const rows = result.perCategory.map(
    (c) => `${c.name.padEnd(width)}  ${cols.map((k) => (c[k] < 0 ? '-' : formatFixed3(c[k])).padStart(6)).join(' ')}  ${String(c.numGt).padStart(6)}`,
  );
  return [head, ...rows].join('\n');
}

/** The 12 COCO stats, plus per-class AP and AP50 ({name: value}) when asked. */
export type CocoStatsJson = CocoStats & { perClass?: Record<string, number>; perClassAP50?: Record<string, number> };

/** JSON object with the 12 stats under their usual names, plus `perClass` ({name: AP}) and `perClassAP50` when asked. */
export function cocoStatsJson(result: Pick<CocoEvalResult, 'stats' | 'perCategory'>, perClass = false): CocoStatsJson {
  const out: CocoStatsJson = { ...result.stats };
  if (perClass) {
    out.perClass = Object.fromEntries(result.perCategory.map((c) => [c.name, c.AP]));
    out.perClassAP50 = Object.fromEntries(result.perCategory.map((c) => [c.name, c.AP50]));
  }
  return out;
}

/** VOC per-class table with both AP variants and the two mAPs. */
export function formatVocResult(result: VocEvalResult): string {
  const width = Math.max(5, ...result.perClass.map((c) => c.label.length));
  const f = (v: number): string => (v < 0 ? '-' : formatFixed3(v)).padStart(8);
  const lines = [`${'class'.padEnd(width)}  ${'AP(area)'.padStart(8)} ${'AP(11pt)'.padStart(8)} ${'gts'.padStart(5)} ${'dets'.padStart(6)} ${'TP'.padStart(5)} ${'FP'.padStart(6)}`];
  for (const c of result.perClass) {
    lines.push(`${c.label.padEnd(width)}  ${f(c.apArea)} ${f(c.ap11)} ${String(c.numGt).padStart(5)} ${String(c.numDets).padStart(6)} ${String(c.tp).padStart(5)} ${String(c.fp).padStart(6)}`);
  }
  lines.push(`${'mAP'.padEnd(width)}  ${f(result.mAPArea)} ${f(result.mAP11)}   (IoU >= ${result.iouThreshold})`);
  return lines.join('\n');
}
