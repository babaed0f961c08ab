/**
 * A tiny XML parser for annotation files (Pascal VOC and the like): elements, attributes,
 * text, comments, CDATA, processing instructions, the five predefined entities and numeric
 * character references. No DTDs or namespaces; enough for machine-written annotation files.
 */

/** An element. `text` is the concatenated direct text content, trimmed. `line` is 1-based. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
  line: number;
}

/** Malformed XML; `line` is 1-based. */
export class XmlError extends Error {
  override name = 'XmlError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, line: number): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (_, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (!(cp <= 0x10ffff)) throw new XmlError(`character reference &${e.slice(0, 20)}; is not a Unicode code point (at most 0x10FFFF)`, line);
      return String.fromCodePoint(cp);
    }
    const v = Object.hasOwn(ENTITIES, e) ? ENTITIES[e] : undefined;
    if (v === undefined) throw new XmlError(`unknown entity &${e};`, line);
    return v;
  });
}

/** Parses a document and returns its root element. Throws {@link XmlError} on malformed input. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  let line = 1;
  const stack: XmlElement[] = [];
  const texts: string[][] = [];
  let root: XmlElement | undefined;
  const advance = (to: number) => {
    for (let k = i; k < to; k++) if (src.charCodeAt(k) === 10) line++;
    i = to;
  };
  const skipPast = (token: string, what: string) => {
    const end = src.indexOf(token, i);
    if (end < 0) throw new XmlError(`unterminated ${what}`, line);
    advance(end + token.length);
  };
  if (src.charCodeAt(0) === 0xfeff) i = 1;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > i) {
      const raw = src.slice(i, textEnd);
      if (stack.length > 0) texts[texts.length - 1]!.push(decodeEntities(raw, line));
      else if (raw.trim() !== '') throw new XmlError('text outside the root element', line);
      advance(textEnd);
    }
    if (lt < 0) break;
    if (src.startsWith('<!--', i)) skipPast('-->', 'comment');
    else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i);
      if (end < 0) throw new XmlError('unterminated CDATA section', line);
      if (stack.length === 0) throw new XmlError('CDATA outside the root element', line);
      texts[texts.length - 1]!.push(src.slice(i + 9, end));
      advance(end + 3);
    } else if (src.startsWith('<?', i)) skipPast('?>', 'processing instruction');
    else if (src.startsWith('<!', i)) skipPast('>', 'declaration');
    else if (src.startsWith('</', i)) {
      const m = /^<\/([^\s>]+)\s*>/.exec(src.slice(i, i + 256));
      if (!m) throw new XmlError('malformed closing tag', line);
      const open = stack.pop();
      if (!open) throw new XmlError(`closing tag </${m[1]}> without an opening tag`, line);
      if (open.name !== m[1]) throw new XmlError(`closing tag </${m[1]}> does not match <${open.name}> (line ${open.line})`, line);
      open.text = texts.pop()!.join('').trim();
      advance(i + m[0].length);
    } else {
      const end = findTagEnd(src, i);
      if (end < 0) throw new XmlError('unterminated tag', line);
      const body = src.slice(i + 1, end);
      const selfClosing = body.endsWith('/');
      const m = /^([^\s/>]+)([\s\S]*?)\/?$/.exec(body);
      if (!m) throw new XmlError('malformed tag', line);
      const el: XmlElement = { name: m[1]!, attrs: parseAttrs(m[2]!, line), children: [], text: '', line };
      if (stack.length > 0) stack[stack.length - 1]!.children.push(el);
      else if (root) throw new XmlError(`second root element <${el.name}>`, line);
      else root = el;
      if (!selfClosing) {
        stack.push(el);
        texts.push([]);
      }
      advance(end + 1);
    }
  }
  if (stack.length > 0) throw new XmlError(`unclosed element <${stack[stack.length - 1]!.name}> (line ${stack[stack.length - 1]!.line})`, line);
  if (!root) throw new XmlError('no root element', line);
  return root;
}

function findTagEnd(src: string, from: number): number {
  let quote = '';
  for (let k = from + 1; k < src.length; k++) {
    const c = src[k];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return k;
    else if (c === '<') return -1;
  }
  return -1;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** `name="value"` pairs separated by whitespace, scanned once (the regex it replaces was quadratic in the tag's length: 40 000 characters took 7 s). */
function parseAttrs(s: string, line: number): Record<string, string> {
  const attrs: Record<string, string> = {};
  const bad = (from: number): never => {
    const rest = s.slice(from).trim();
    throw new XmlError(`malformed attributes '${rest.length > 80 ? `${rest.slice(0, 80)}...` : rest}'`, line);
  };
  let i = 0;
  for (;;) {
    while (i < s.length && isSpace(s.charCodeAt(i))) i++;
    if (i >= s.length) return attrs;
    const start = i;
    while (i < s.length && !isSpace(s.charCodeAt(i)) && s[i] !== '=') i++;
    const name = s.slice(start, i);
    while (i < s.length && isSpace(s.charCodeAt(i))) i++;
    if (name === '' || s[i] !== '=') bad(start);
    i++;
    while (i < s.length && isSpace(s.charCodeAt(i))) i++;
    const quote = s[i];
    const end = quote === '"' || quote === "'" ? s.indexOf(quote, i + 1) : -1;
    if (end < 0) bad(start);
    // defineProperty: an attribute named __proto__ is kept as data, not taken as the object's prototype.
    Object.defineProperty(attrs, name, { value: decodeEntities(s.slice(i + 1, end), line), enumerable: true, writable: true, configurable: true });
    i = end + 1;
  }
}

/** First child element named `name`, if any. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/** All child elements named `name`. */
export function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
