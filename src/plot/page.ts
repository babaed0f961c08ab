/**
 * The report page of a run: one `report.html` that opens from disk (figures are relative links
 * to the PNG files beside it, each linking to its SVG), and the same content as `report.md`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface PageTable {
  head: string[];
  rows: string[][];
}

/** A figure of a page: `src` relative to the page's folder; `href` (e.g. the SVG) opens on click. */
export interface PageFigure {
  src: string;
  href?: string;
  caption?: string;
  /** Display width in CSS pixels (default: the image's own at half its pixels, as figures are rendered at 2x). */
  width?: number;
}

export interface PageSection {
  heading: string;
  /** A paragraph of plain text. */
  text?: string;
  table?: PageTable;
  /** Preformatted text (a summary printout, a config, commands). */
  pre?: string;
  figures?: PageFigure[];
}

export interface ReportPage {
  title: string;
  intro?: string;
  sections: PageSection[];
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlTable(t: PageTable): string {
  return `<table>\n<tr>${t.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>\n${t.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n')}\n</table>`;
}

function markdownTable(t: PageTable): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  return [`| ${t.head.map(cell).join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

const STYLE = [
  'body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}',
  'table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}',
  'pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:12px}',
  'figure{display:inline-block;margin:6px;vertical-align:top}figcaption{font-size:12px;color:#555;max-width:600px}img{max-width:100%}',
  'nav a{margin-right:1em}h2{border-bottom:1px solid #ddd;padding-bottom:2px;margin-top:1.6em}',
].join('\n');

/** The page as HTML text. */
export function reportHtml(page: ReportPage): string {
  const id = (h: string, i: number): string => `s${i}-${h.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  const out: string[] = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(page.title)}</h1>`,
  ];
  if (page.intro) out.push(`<p>${escapeHtml(page.intro)}</p>`);
  out.push(`<nav>${page.sections.map((s, i) => `<a href="#${id(s.heading, i)}">${escapeHtml(s.heading)}</a>`).join('')}</nav>`);
  page.sections.forEach((s, i) => {
    out.push(`<h2 id="${id(s.heading, i)}">${escapeHtml(s.heading)}</h2>`);
    if (s.text) out.push(`<p>${escapeHtml(s.text)}</p>`);
    if (s.pre) out.push(`<pre>${escapeHtml(s.pre)}</pre>`);
    if (s.table) out.push(htmlTable(s.table));
    if (s.figures && s.figures.length > 0) {
      out.push('<div>');
      for (const f of s.figures) {
        const img = `<img src="${escapeHtml(f.src)}" alt="${escapeHtml(f.caption ?? f.src)}" loading="lazy"${f.width ? ` width="${f.width}"` : ''}>`;
        out.push(`<figure>${f.href ? `<a href="${escapeHtml(f.href)}">${img}</a>` : img}${f.caption ? `<figcaption>${escapeHtml(f.caption)}</figcaption>` : ''}</figure>`);
      }
      out.push('</div>');
    }
  });
  out.push('</body></html>');
  return out.join('\n') + '\n';
}

/** The page as Markdown text. */
export function reportMarkdown(page: ReportPage): string {
  const md: string[] = [`# ${page.title}`, ''];
  if (page.intro) md.push(page.intro, '');
  for (const s of page.sections) {
    md.push(`## ${s.heading}`, '');
    if (s.text) md.push(s.text, '');
    if (s.pre) md.push('```', s.pre, '```', '');
    if (s.table) md.push(markdownTable(s.table), '');
    if (s.figures && s.figures.length > 0) md.push(s.figures.map((f) => `![${f.caption ?? f.src}](${f.src})`).join('\n'), '');
  }
  return md.join('\n');
}

/** Writes `report.html` and `report.md` into `dir`; returns their names. */
export async function writeReportPage(dir: string, page: ReportPage): Promise<{ html: string; markdown: string }> {
  await writeFile(path.join(dir, 'report.html'), reportHtml(page));
  await writeFile(path.join(dir, 'report.md'), reportMarkdown(page));
  return { html: 'report.html', markdown: 'report.md' };
}
