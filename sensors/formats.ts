// Line formats of serial (and other line-oriented) sensors: JSON lines, CSV, key=value and NMEA 0183.
// createLineParser checks a format configuration once and returns a pure function from one line to readings
// or to a rejection with a stable reason, which drivers count. The parser never throws on input.
import { parseNmeaSentence } from './nmea.ts';
import type { ParseResult, Reading } from './reading.ts';
import { SensorError } from './reading.ts';
import { excerpt, getPath, parseDecimal, readTimestamp, readTimestampText, splitPath } from './values.ts';

export type LineFormatConfig =
  | {
      kind: 'jsonl';
      stream: string;
      /** Reading value name -> dotted path in the JSON object, e.g. {temperature: 'data.t'}. One field gives
       *  Reading.value, several give Reading.values. Only JSON numbers are accepted ("21.5" is 'not-a-number'). */
      fields: Record<string, string>;
      /** Dotted path of the device's timestamp: ms number or ISO string with a zone. Absent in a line: arrival time. */
      tsField?: string;
      unit?: string;
    }
  | {
      kind: 'csv';
      stream: string;
      /** Column names in order; '' or '-' = ignored column. */
      columns: string[];
      /** Which columns become values; default all named columns but tsColumn. One gives value, several values. */
      fields?: string[];
      /** Column with the device's timestamp (ms or ISO). */
      tsColumn?: string;
      /** One character, default ','. No quoting: sensor CSV is numbers. */
      delimiter?: string;
      unit?: string;
    }
  | {
      kind: 'kv';
      stream: string;
      /** Keys to keep (all required; one gives value, several values); default every key with a numeric value, as values. */
      fields?: string[];
      /** Key of the device's timestamp (ms or ISO). Absent in a line: arrival time. */
      tsKey?: string;
      /** Between pairs; default any run of whitespace, ',' or ';'. Pairs are key=value. */
      separator?: string;
      unit?: string;
    }
  | { kind: 'nmea'; stream: string };

/** Every reason a line parser rejects with. */
export const PARSE_REJECT_REASONS = [
  'empty-line',
  'bad-json',
  'not-an-object',
  'missing-field',
  'not-a-number',
  'not-finite',
  'bad-timestamp',
  'column-count',
  'duplicate-key',
  'checksum',
  'bad-sentence',
  'ignored-sentence',
  'no-fix',
] as const;
export type ParseRejectReason = (typeof PARSE_REJECT_REASONS)[number];

export type LineParser = (line: string, now: number) => ParseResult;

type Reject = { ok: false; reason: ParseRejectReason; detail: string };
const reject = (reason: ParseRejectReason, detail: string): Reject => ({ ok: false, reason, detail });

/**
 * Checks `config` (throws SensorError 'SENSOR_CONFIG_INVALID' with the bad `field`) and returns the parser of
 * one line (without its terminator) received at `now` (ms). The parser never throws.
 */
export function createLineParser(config: LineFormatConfig): LineParser {
  const c = config as unknown;
  if (typeof c !== 'object' || c === null) invalid('config', 'must be an object');
  const kind = (c as { kind?: unknown }).kind;
  switch (kind) {
    case 'jsonl':
      return jsonlParser(config as Extract<LineFormatConfig, { kind: 'jsonl' }>);
    case 'csv':
      return csvParser(config as Extract<LineFormatConfig, { kind: 'csv' }>);
    case 'kv':
      return kvParser(config as Extract<LineFormatConfig, { kind: 'kv' }>);
    case 'nmea': {
      checkCommon(c as Record<string, unknown>, []);
      const stream = config.stream;
      return (line, now) => parseNmeaSentence(line, now, stream);
    }
    default:
      return invalid('kind', `must be 'jsonl', 'csv', 'kv' or 'nmea', got ${JSON.stringify(kind)}`);
  }
}

function jsonlParser(c: Extract<LineFormatConfig, { kind: 'jsonl' }>): LineParser {
  checkCommon(c, ['fields', 'tsField']);
  if (typeof c.fields !== 'object' || c.fields === null || Array.isArray(c.fields)) invalid('fields', 'must be an object {valueName: "dotted.path"}');
  const fields = Object.entries(c.fields).map(([name, path]) => {
    checkName(`fields.${name}`, name);
    const segs = typeof path === 'string' ? splitPath(path) : null;
    if (segs === null) invalid(`fields.${name}`, `must be a dotted path like 'data.t', got ${JSON.stringify(path)}`);
    return { name, path, segs };
  });
  if (fields.length === 0) invalid('fields', 'must name at least one value');
  let tsSegs: string[] | null = null;
  if (c.tsField !== undefined) {
    tsSegs = typeof c.tsField === 'string' ? splitPath(c.tsField) : null;
    if (tsSegs === null) invalid('tsField', `must be a dotted path, got ${JSON.stringify(c.tsField)}`);
  }
  const build = shape(c.stream, c.unit, fields.length === 1);

  return (line, now) => {
    if (line.trim() === '') return reject('empty-line', 'empty line');
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (_err) {
      return reject('bad-json', excerpt(line));
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return reject('not-an-object', excerpt(line));
    const values: [string, number][] = [];
    for (const f of fields) {
      const v = getPath(obj, f.segs);
      if (v === undefined) return reject('missing-field', `no '${f.path}' in ${excerpt(line)}`);
      if (typeof v !== 'number') return reject('not-a-number', `'${f.path}' is ${v === null ? 'null' : typeof v}: ${excerpt(line)}`);
      if (!Number.isFinite(v)) return reject('not-finite', `'${f.path}' is ${v}`);
      values.push([f.name, v]);
    }
    let ts = now;
    if (tsSegs !== null) {
      const raw = getPath(obj, tsSegs);
      if (raw !== undefined) {
        const t = readTimestamp(raw);
        if (t === null) return reject('bad-timestamp', `'${c.tsField}' is ${excerpt(JSON.stringify(raw))}`);
        ts = t;
      }
    }
    return build(ts, values);
  };
}

function csvParser(c: Extract<LineFormatConfig, { kind: 'csv' }>): LineParser {
  checkCommon(c, ['columns', 'fields', 'tsColumn', 'delimiter']);
  if (!Array.isArray(c.columns) || c.columns.length === 0) invalid('columns', 'must be a non-empty array of column names');
  const named = new Map<string, number>();
  c.columns.forEach((col, i) => {
    if (typeof col !== 'string') invalid(`columns[${i}]`, 'must be a string');
    if (col === '' || col === '-') return;
    checkName(`columns[${i}]`, col);
    if (named.has(col)) invalid(`columns[${i}]`, `names '${col}' twice`);
    named.set(col, i);
  });
  const delimiter = c.delimiter ?? ',';
  if (typeof delimiter !== 'string' || delimiter.length !== 1 || /[0-9.+\-eE\r\n"]/.test(delimiter)) {
    invalid('delimiter', `must be one character that cannot appear in a number, got ${JSON.stringify(delimiter)}`);
  }
  let tsIndex = -1;
  if (c.tsColumn !== undefined) {
    tsIndex = typeof c.tsColumn === 'string' ? (named.get(c.tsColumn) ?? -1) : -1;
    if (tsIndex < 0) invalid('tsColumn', `must be one of the named columns, got ${JSON.stringify(c.tsColumn)}`);
  }
  const names = c.fields ?? [...named.keys()].filter((n) => n !== c.tsColumn);
  if (!Array.isArray(names) || names.length === 0) invalid('fields', 'must name at least one column');
  const fields = names.map((name, i) => {
    const index = typeof name === 'string' ? named.get(name) : undefined;
    if (index === undefined) invalid(`fields[${i}]`, `must be one of the named columns, got ${JSON.stringify(name)}`);
    if (index === tsIndex) invalid(`fields[${i}]`, 'is the timestamp column');
    return { name, index };
  });
  if (new Set(names).size !== names.length) invalid('fields', 'names a column twice');
  const build = shape(c.stream, c.unit, fields.length === 1);
  const width = c.columns.length;

  return (line, now) => {
    if (line.trim() === '') return reject('empty-line', 'empty line');
    const cells = line.split(delimiter);
    if (cells.length !== width) return reject('column-count', `${cells.length} columns, expected ${width}: ${excerpt(line)}`);
    const values: [string, number][] = [];
    for (const f of fields) {
      const n = parseDecimal((cells[f.index] ?? '').trim());
      if (!n.ok) return reject(n.reason, `column '${f.name}' is '${excerpt(cells[f.index] ?? '', 40)}'`);
      values.push([f.name, n.value]);
    }
    let ts = now;
    if (tsIndex >= 0) {
      const t = readTimestampText((cells[tsIndex] ?? '').trim());
      if (t === null) return reject('bad-timestamp', `column '${c.tsColumn}' is '${excerpt(cells[tsIndex] ?? '', 40)}'`);
      ts = t;
    }
    return build(ts, values);
  };
}

const KV_DEFAULT_SEPARATOR = /[\s,;]+/;

function kvParser(c: Extract<LineFormatConfig, { kind: 'kv' }>): LineParser {
  checkCommon(c, ['fields', 'tsKey', 'separator']);
  if (c.fields !== undefined) {
    if (!Array.isArray(c.fields) || c.fields.length === 0) invalid('fields', 'must be a non-empty array of keys (or left out: every numeric key)');
    c.fields.forEach((k, i) => checkName(`fields[${i}]`, k));
    if (new Set(c.fields).size !== c.fields.length) invalid('fields', 'names a key twice');
    if (c.tsKey !== undefined && c.fields.includes(c.tsKey)) invalid('tsKey', 'is also in fields');
  }
  if (c.tsKey !== undefined) checkName('tsKey', c.tsKey);
  if (c.separator !== undefined && (typeof c.separator !== 'string' || c.separator === '' || c.separator.includes('='))) {
    invalid('separator', `must be a non-empty string without '=', got ${JSON.stringify(c.separator)}`);
  }
  const separator: string | RegExp = c.separator ?? KV_DEFAULT_SEPARATOR;
  const wanted = c.fields === undefined ? null : new Set(c.fields);
  const build = shape(c.stream, c.unit, wanted !== null && wanted.size === 1);

  return (line, now) => {
    if (line.trim() === '') return reject('empty-line', 'empty line');
    const pairs = new Map<string, string>();
    for (const token of line.split(separator)) {
      const t = token.trim();
      const eq = t.indexOf('=');
      // Tokens that are not key=value (a banner word, a status flag) carry no value: skipped.
      if (eq <= 0) continue;
      const key = t.slice(0, eq).trim();
      if (pairs.has(key)) return reject('duplicate-key', `key '${excerpt(key, 40)}' twice: ${excerpt(line)}`);
      pairs.set(key, t.slice(eq + 1).trim());
    }
    const values: [string, number][] = [];
    if (wanted !== null) {
      for (const key of wanted) {
        const text = pairs.get(key);
        if (text === undefined) return reject('missing-field', `no '${key}=' in ${excerpt(line)}`);
        const n = parseDecimal(text);
        if (!n.ok) return reject(n.reason, `'${key}' is '${excerpt(text, 40)}'`);
        values.push([key, n.value]);
      }
    } else {
      for (const [key, text] of pairs) {
        if (key === c.tsKey) continue;
        const n = parseDecimal(text);
        if (n.ok) values.push([key, n.value]);
        else if (n.reason === 'not-finite') return reject('not-finite', `'${excerpt(key, 40)}' is '${excerpt(text, 40)}'`);
      }
      if (values.length === 0) return reject('missing-field', `no numeric key=value pair in ${excerpt(line)}`);
    }
    let ts = now;
    const tsText = c.tsKey === undefined ? undefined : pairs.get(c.tsKey);
    if (tsText !== undefined) {
      const t = readTimestampText(tsText);
      if (t === null) return reject('bad-timestamp', `'${c.tsKey}' is '${excerpt(tsText, 40)}'`);
      ts = t;
    }
    return build(ts, values);
  };
}

/** Builds the reading: `value` for a single configured field, else `values` (own properties, any key). */
function shape(stream: string, unit: string | undefined, single: boolean): (ts: number, values: [string, number][]) => ParseResult {
  return (ts, values) => {
    const base = unit === undefined ? { stream, ts } : { stream, ts, unit };
    const reading: Omit<Reading, 'seq'> = single && values.length === 1 ? { ...base, value: values[0]![1] } : { ...base, values: Object.fromEntries(values) };
    return { ok: true, readings: [reading] };
  };
}

function checkCommon(c: Record<string, unknown>, own: readonly string[]): void {
  const allowed = new Set(['kind', 'stream', ...own, ...(c.kind === 'nmea' ? [] : ['unit'])]);
  for (const key of Object.keys(c)) if (!allowed.has(key)) invalid(key, `is not an option of the '${String(c.kind)}' format`);
  if (typeof c.stream !== 'string' || c.stream.trim() === '') invalid('stream', 'must be a non-empty stream name');
  if (c.unit !== undefined && typeof c.unit !== 'string') invalid('unit', 'must be a string');
}

function checkName(field: string, name: unknown): void {
  if (typeof name !== 'string' || name.trim() === '' || name !== name.trim()) invalid(field, `must be a non-empty name without surrounding spaces, got ${JSON.stringify(name)}`);
}

function invalid(field: string, message: string): never {
  throw new SensorError('SENSOR_CONFIG_INVALID', `line format: '${field}' ${message}`, { field });
}
