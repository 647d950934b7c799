// Strict JSON (RFC 8259) that remembers where things are: a parser producing JsonNode trees with the source
// offset of every value and key, so config errors can name `file:line:column`. Also the offset -> line:column
// helper and the conversion of plain values (command-line overrides) into nodes without positions.

/** A parsed JSON value with the offset of its first character in the source (absent for overrides). */
export type JsonNode = { readonly start?: number } & (
  | { readonly type: 'object'; readonly members: Map<string, JsonMember> }
  | { readonly type: 'array'; readonly items: JsonNode[] }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'number'; readonly value: number; readonly raw: string }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'null' }
);
/** One member of a JSON object: its key, where the key starts (absent for overrides) and its value. */
export interface JsonMember {
  readonly key: string;
  readonly keyStart?: number;
  readonly node: JsonNode;
}

/** A problem found at a source offset (absent when there is no source text), before it becomes file:line:col. */
export interface RawIssue {
  readonly offset?: number;
  readonly path: string;
  readonly text: string;
}

/** Bad JSON syntax at `offset` of the source text. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * Strict JSON (RFC 8259) parser that keeps positions; duplicate keys are reported, not silently merged.
 * `parseDocument()` returns the root node or throws JsonSyntaxError; `duplicates` then lists repeated keys.
 */
export class PositionParser {
  private i = 0;
  readonly duplicates: RawIssue[] = [];
  constructor(private readonly text: string) {}

  parseDocument(): JsonNode {
    this.skipSpace();
    if (this.i >= this.text.length) throw new JsonSyntaxError('file is empty; expected a JSON object', this.i);
    const root = this.parseValue('');
    this.skipSpace();
    if (this.i < this.text.length) throw new JsonSyntaxError('unexpected content after the end of the JSON value', this.i);
    return root;
  }

  private skipSpace(): void {
    const t = this.text;
    while (this.i < t.length) {
      const c = t[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.i++;
      else if (c === '/' && (t[this.i + 1] === '/' || t[this.i + 1] === '*')) {
        const found = t.slice(this.i, this.i + 2);
        throw new JsonSyntaxError(`comments are not allowed in JSON config files (found "${found}"); remove the comment`, this.i);
      } else return;
    }
  }

  private parseValue(path: string): JsonNode {
    this.skipSpace();
    const start = this.i;
    const c = this.text[start];
    if (c === undefined) throw new JsonSyntaxError('unexpected end of file; expected a value', start);
    if (c === '{') return this.parseObject(path);
    if (c === '[') return this.parseArray(path);
    if (c === '"') return { type: 'string', value: this.parseString(), start };
    if (c === '-' || (c >= '0' && c <= '9')) return this.parseNumber();
    for (const [word, node] of [
      ['true', { type: 'boolean', value: true }],
      ['false', { type: 'boolean', value: false }],
      ['null', { type: 'null' }],
    ] as const) {
      if (this.text.startsWith(word, start) && !/[\w$]/.test(this.text[start + word.length] ?? '')) {
        this.i += word.length;
        return { ...node, start };
      }
    }
    if (c === "'") throw new JsonSyntaxError('strings must use double quotes', start);
    throw new JsonSyntaxError(`unexpected ${describeChar(c)}; expected a value (strings need double quotes)`, start);
  }

  private parseObject(path: string): JsonNode {
    const start = this.i++;
    const members = new Map<string, JsonMember>();
    this.skipSpace();
    if (this.text[this.i] === '}') {
      this.i++;
      return { type: 'object', members, start };
    }
    for (;;) {
      this.skipSpace();
      const keyStart = this.i;
      const c = this.text[keyStart];
      if (c !== '"') {
        if (c === '}') throw new JsonSyntaxError("trailing comma before '}' is not allowed in JSON", keyStart);
        if (c === undefined) throw new JsonSyntaxError("unexpected end of file; expected a field name or '}'", keyStart);
        throw new JsonSyntaxError(`unexpected ${describeChar(c)}; field names must be in double quotes`, keyStart);
      }
      const key = this.parseString();
      const childPath = path === '' ? key : `${path}.${key}`;
      this.skipSpace();
      if (this.text[this.i] !== ':') throw new JsonSyntaxError(`expected ':' after field name "${key}"`, this.i);
      this.i++;
      const node = this.parseValue(childPath);
      const first = members.get(key);
      if (first !== undefined) {
        this.duplicates.push({ offset: keyStart, path: childPath, text: `duplicate field ${childPath} (JSON keeps only one; remove the other)` });
      }
      members.set(key, { key, keyStart, node });
      this.skipSpace();
      const next = this.text[this.i++];
      if (next === '}') return { type: 'object', members, start };
      if (next !== ',') throw new JsonSyntaxError(`expected ',' or '}' after the value of "${childPath}"`, this.i - 1);
    }
  }

  private parseArray(path: string): JsonNode {
    const start = this.i++;
    const items: JsonNode[] = [];
    this.skipSpace();
    if (this.text[this.i] === ']') {
      this.i++;
      return { type: 'array', items, start };
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.i] === ']') throw new JsonSyntaxError("trailing comma before ']' is not allowed in JSON", this.i);
      items.push(this.parseValue(`${path}[${items.length}]`));
      this.skipSpace();
      const next = this.text[this.i++];
      if (next === ']') return { type: 'array', items, start };
      if (next !== ',') throw new JsonSyntaxError(`expected ',' or ']' after item ${path}[${items.length - 1}]`, this.i - 1);
    }
  }

  private parseString(): string {
    const t = this.text;
    let out = '';
    let from = ++this.i;
    for (;;) {
      const c = t[this.i];
      if (c === undefined) throw new JsonSyntaxError('unterminated string', from - 1);
      if (c === '"') {
        out += t.slice(from, this.i++);
        return out;
      }
      if (c < ' ') throw new JsonSyntaxError('control character in string (write a newline as \\n, a tab as \\t)', this.i);
      if (c !== '\\') {
        this.i++;
        continue;
      }
      out += t.slice(from, this.i);
      const e = t[this.i + 1] ?? '';
      if (e === 'u') {
        const hex = t.slice(this.i + 2, this.i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new JsonSyntaxError('invalid \\u escape (needs 4 hex digits)', this.i);
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 6;
      } else {
        const ch = ESCAPES[e];
        if (ch === undefined) throw new JsonSyntaxError(`invalid escape "\\${e}" in string`, this.i);
        out += ch;
        this.i += 2;
      }
      from = this.i;
    }
  }

  private parseNumber(): JsonNode {
    const start = this.i;
    NUMBER_RE.lastIndex = start;
    const m = NUMBER_RE.exec(this.text);
    const after = m === null ? start : start + m[0].length;
    if (m === null || /[\w.+-]/.test(this.text[after] ?? '')) {
      const word = /^[\w.+-]*/.exec(this.text.slice(start))?.[0] ?? '';
      throw new JsonSyntaxError(`invalid number ${JSON.stringify(word || this.text[start])}`, start);
    }
    this.i = after;
    return { type: 'number', value: Number(m[0]), raw: m[0], start };
  }
}

function describeChar(c: string): string {
  return /[\p{L}\p{N}]/u.test(c) ? `"${c}"` : JSON.stringify(c);
}

/** 1-based line and column (UTF-16 units) of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** A short rendering of `node` for "(got ...)" in error messages; long strings are cut. */
export function gotText(node: JsonNode): string {
  switch (node.type) {
    case 'string': {
      const s = JSON.stringify(node.value);
      return s.length > 60 ? `${s.slice(0, 56)}..."` : s;
    }
    case 'number':
      return node.raw;
    case 'boolean':
      return String(node.value);
    case 'null':
      return 'null';
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
  }
}

/** A plain JS value (strings, numbers, booleans, null, arrays, objects) as a JsonNode without positions. */
export function toNode(value: unknown): JsonNode {
  if (value === null) return { type: 'null' };
  if (Array.isArray(value)) return { type: 'array', items: value.map(toNode) };
  switch (typeof value) {
    case 'string':
      return { type: 'string', value };
    case 'number':
      return { type: 'number', value, raw: String(value) };
    case 'boolean':
      return { type: 'boolean', value };
    case 'object': {
      const members = new Map<string, JsonMember>();
      for (const [key, v] of Object.entries(value as object)) if (v !== undefined) members.set(key, { key, node: toNode(v) });
      return { type: 'object', members };
    }
    default:
      return { type: 'string', value: String(value) };
  }
}
