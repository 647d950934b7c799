// Configuration files: strict JSON checked against a small schema toolkit, with errors that name the file, line
// and column of the offending value and its dotted path (`datagate.json:7:13: rpc.port: must be ...`); overrides
// from the command line; and the data directory a config names, checked and made private before anything opens a
// store in it (prepareDataDir). The JSON parser is in config-json.ts, the schemas in dev- and node-config.ts.

import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { DatagateError } from '../../chain/index.ts';
import type { JsonMember, JsonNode, RawIssue } from './config-json.ts';
import { JsonSyntaxError, PositionParser, gotText, lineColumn, toNode } from './config-json.ts';

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_PARSE' | 'CONFIG_NOT_FOUND' | 'DATA_DIR_UNUSABLE';

/** One problem found in a config: where (file:line:col when known) and what. */
export interface ConfigIssue {
  readonly location: string;
  readonly path: string;
  readonly text: string;
}

/** Raised for a missing/unreadable file (CONFIG_NOT_FOUND), bad JSON (CONFIG_PARSE), bad values (CONFIG_INVALID),
 * or a data directory that cannot be created or used (DATA_DIR_UNUSABLE, fields: dataDir, path, errno). */
export class ConfigError extends DatagateError<ConfigErrorCode> {
  constructor(code: ConfigErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'ConfigError';
  }
}

// ---- schema toolkit ------------------------------------------------------------------------------------

const INVALID: unique symbol = Symbol('invalid');
type Checked<T> = T | typeof INVALID;

interface CheckContext {
  readonly issues: RawIssue[];
  /** Accept "9000" for integers, "true" for booleans (command-line overrides arrive as strings). */
  readonly coerceStrings: boolean;
}

export type FieldKind = 'integer' | 'number' | 'string' | 'boolean' | 'address' | 'object' | 'array' | 'optional';

/** One field of a schema, producing a value of type T. Build fields with `field.*`. */
export interface Field<T> {
  readonly kind: FieldKind;
  readonly description?: string;
  /** False when the field must be present in the file. */
  readonly hasDefault: boolean;
  /** Checks a parsed node; records issues in ctx and returns INVALID when it does not fit. */
  readonly check: (node: JsonNode, path: string, ctx: CheckContext) => Checked<T>;
  /** The value used when the field is absent (a fresh copy), or INVALID after recording "missing". */
  readonly whenMissing: (path: string, ctx: CheckContext, parentStart: number | undefined) => Checked<T>;
}

/** An object field; `fields` lists its members (for docs and error messages). */
export interface ObjectField<T> extends Field<T> {
  readonly kind: 'object';
  readonly fields: Readonly<Record<string, Field<unknown>>>;
}

/** The value type a field produces. */
export type Infer<F> = F extends Field<infer T> ? T : never;

interface Common<D> {
  default?: D;
  description?: string;
}

function fail(ctx: CheckContext, node: JsonNode, path: string, expected: string): typeof INVALID {
  const text = `${path === '' ? '' : `${path}: `}${expected} (got ${gotText(node)})`;
  ctx.issues.push({ offset: node.start, path, text });
  return INVALID;
}

function scalar<T>(
  kind: FieldKind,
  opts: Common<T>,
  check: (node: JsonNode, path: string, ctx: CheckContext) => Checked<T>,
): Field<T> {
  const hasDefault = opts.default !== undefined;
  return {
    kind,
    description: opts.description,
    hasDefault,
    check,
    whenMissing(path, ctx, parentStart) {
      if (hasDefault) return structuredClone(opts.default as T);
      ctx.issues.push({ offset: parentStart, path, text: `missing required field ${path}` });
      return INVALID;
    },
  };
}

function coerceNumber(node: JsonNode, ctx: CheckContext): JsonNode {
  if (ctx.coerceStrings && node.type === 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(node.value.trim())) {
    const raw = node.value.trim();
    return { type: 'number', value: Number(raw), raw, start: node.start };
  }
  return node;
}

function rangeText(what: string, min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `must be ${what} between ${min} and ${max}`;
  if (min !== undefined) return `must be ${what} >= ${min}`;
  if (max !== undefined) return `must be ${what} <= ${max}`;
  return `must be ${what}`;
}

function integer(opts: Common<number> & { min?: number; max?: number } = {}): Field<number> {
  const expected = rangeText('an integer', opts.min, opts.max);
  return scalar('integer', opts, (raw, path, ctx) => {
    const node = coerceNumber(raw, ctx);
    if (node.type !== 'number' || !Number.isSafeInteger(node.value)) return fail(ctx, raw, path, expected);
    if ((opts.min !== undefined && node.value < opts.min) || (opts.max !== undefined && node.value > opts.max)) {
      return fail(ctx, raw, path, expected);
    }
    return node.value;
  });
}

function number(opts: Common<number> & { min?: number; max?: number } = {}): Field<number> {
  const expected = rangeText('a number', opts.min, opts.max);
  return scalar('number', opts, (raw, path, ctx) => {
    const node = coerceNumber(raw, ctx);
    if (node.type !== 'number' || !Number.isFinite(node.value)) return fail(ctx, raw, path, expected);
    if ((opts.min !== undefined && node.value < opts.min) || (opts.max !== undefined && node.value > opts.max)) {
      return fail(ctx, raw, path, expected);
    }
    return node.value;
  });
}

interface StringOptions<D> extends Common<D> {
  /** The whole string must match. */
  pattern?: RegExp;
  /** Says what the pattern means in errors, e.g. "a host name"; default: the pattern itself. */
  patternHint?: string;
  minLength?: number;
  maxLength?: number;
}

function string<const E extends readonly string[]>(opts: StringOptions<E[number]> & { enum: E }): Field<E[number]>;
function string(opts?: StringOptions<string>): Field<string>;
function string(opts: StringOptions<string> & { enum?: readonly string[] } = {}): Field<string> {
  const { pattern, minLength, maxLength } = opts;
  const choices = opts.enum;
  return scalar('string', opts, (node, path, ctx) => {
    if (node.type !== 'string') return fail(ctx, node, path, choices ? oneOf(choices) : 'must be a string');
    const v = node.value;
    if (choices && !choices.includes(v)) return fail(ctx, node, path, oneOf(choices));
    if (minLength !== undefined && v.length < minLength) {
      return fail(ctx, node, path, minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters`);
    }
    if (maxLength !== undefined && v.length > maxLength) return fail(ctx, node, path, `must be at most ${maxLength} characters`);
    if (pattern) {
      pattern.lastIndex = 0;
      const m = pattern.exec(v);
      if (m === null || m.index !== 0 || m[0].length !== v.length) {
        return fail(ctx, node, path, `must be ${opts.patternHint ?? `a string matching ${String(pattern)}`}`);
      }
    }
    return v;
  });
}

function oneOf(choices: readonly string[]): string {
  return `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
}

function boolean(opts: Common<boolean> = {}): Field<boolean> {
  return scalar('boolean', opts, (node, path, ctx) => {
    if (node.type === 'boolean') return node.value;
    if (ctx.coerceStrings && node.type === 'string' && (node.value === 'true' || node.value === 'false')) return node.value === 'true';
    return fail(ctx, node, path, 'must be true or false');
  });
}

/** EIP-55: a mixed-case address must carry a valid checksum; all-lower or all-upper has none to check. */
function checksumOk(hex40: string): boolean {
  const lower = hex40.toLowerCase();
  if (hex40 === lower || hex40 === hex40.toUpperCase()) return true;
  const hash = keccak_256(new TextEncoder().encode(lower));
  for (let i = 0; i < 40; i++) {
    const nibble = ((hash[i >> 1] ?? 0) >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    const c = hex40[i] ?? '';
    if (/[a-f]/.test(lower[i] ?? '') && (nibble >= 8 ? c !== c.toUpperCase() : c !== c.toLowerCase())) return false;
  }
  return true;
}

/** A 0x-prefixed 20-byte address; mixed case must pass EIP-55. The value is returned in lowercase. */
function address(opts: Common<string> = {}): Field<string> {
  return scalar('address', opts, (node, path, ctx) => {
    if (node.type !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(node.value)) {
      return fail(ctx, node, path, 'must be a 0x-prefixed 20-byte hex address');
    }
    if (!checksumOk(node.value.slice(2))) {
      return fail(ctx, node, path, 'has a bad EIP-55 checksum (mixed case); check for a typo or write it in lowercase');
    }
    return node.value.toLowerCase();
  });
}

/** Makes a field optional without a default: absent -> undefined. */
function optional<T>(inner: Field<T>): Field<T | undefined> {
  return {
    kind: 'optional',
    description: inner.description,
    hasDefault: true,
    check: inner.check,
    whenMissing: () => undefined,
  };
}

function array<T>(item: Field<T>, opts: Common<T[]> & { minLength?: number; maxLength?: number } = {}): Field<T[]> {
  return scalar('array', opts, (node, path, ctx) => {
    if (node.type !== 'array') return fail(ctx, node, path, 'must be an array');
    const { minLength, maxLength } = opts;
    if (minLength !== undefined && node.items.length < minLength) return fail(ctx, node, path, `must have at least ${minLength} items`);
    if (maxLength !== undefined && node.items.length > maxLength) return fail(ctx, node, path, `must have at most ${maxLength} items`);
    const out: T[] = [];
    let ok = true;
    node.items.forEach((child, i) => {
      const v = item.check(child, `${path}[${i}]`, ctx);
      if (v === INVALID) ok = false;
      else out.push(v);
    });
    return ok ? out : INVALID;
  });
}

type ObjectValue<S extends Record<string, Field<unknown>>> = { [K in keyof S]: Infer<S[K]> };

/**
 * A nested object. Unknown keys are errors; absent members take their defaults, so an absent object
 * is filled from its members' defaults. `refine` checks the whole object (e.g. one limit below another)
 * and returns an error text or undefined.
 */
function object<const S extends Record<string, Field<unknown>>>(
  fields: S,
  opts: { description?: string; refine?: (value: ObjectValue<S>) => string | undefined } = {},
): ObjectField<ObjectValue<S>> {
  const names = Object.keys(fields);
  const self: ObjectField<ObjectValue<S>> = {
    kind: 'object',
    fields,
    description: opts.description,
    hasDefault: Object.values(fields).every((f) => f.hasDefault),
    check(node, path, ctx) {
      if (node.type !== 'object') return fail(ctx, node, path, 'must be an object');
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const member of node.members.values()) {
        if (!Object.hasOwn(fields, member.key)) {
          const p = path === '' ? member.key : `${path}.${member.key}`;
          const where = path === '' ? '' : ` in ${path}`;
          ctx.issues.push({ offset: member.keyStart, path: p, text: `unknown field ${p}; known fields${where}: ${names.join(', ')}` });
          ok = false;
        }
      }
      for (const name of names) {
        const f = fields[name] as Field<unknown>;
        const p = path === '' ? name : `${path}.${name}`;
        const member = node.members.get(name);
        const v = member === undefined ? f.whenMissing(p, ctx, node.start) : f.check(member.node, p, ctx);
        if (v === INVALID) ok = false;
        else if (v !== undefined) out[name] = v;
      }
      if (!ok) return INVALID;
      const value = out as ObjectValue<S>;
      const problem = opts.refine?.(value);
      if (problem !== undefined) {
        ctx.issues.push({ offset: node.start, path, text: path === '' ? problem : `${path}: ${problem}` });
        return INVALID;
      }
      return value;
    },
    whenMissing(path, ctx, parentStart) {
      return self.check({ type: 'object', members: new Map(), start: parentStart }, path, ctx);
    },
  };
  return self;
}

/**
 * One of several object shapes told apart by the string member `kind` (e.g. a sensor source of kind
 * 'serial' or 'mqtt'). Each variant is an object field that also declares `kind`.
 */
function union<const V extends Record<string, ObjectField<unknown>>>(variants: V, opts: { description?: string } = {}): Field<Infer<V[keyof V]>> {
  const kinds = Object.keys(variants);
  return scalar('object', opts, (node, path, ctx) => {
    if (node.type !== 'object') return fail(ctx, node, path, 'must be an object');
    const kindNode = node.members.get('kind')?.node;
    const p = path === '' ? 'kind' : `${path}.kind`;
    if (kindNode === undefined) {
      ctx.issues.push({ offset: node.start, path: p, text: `missing required field ${p}; one of ${kinds.join(', ')}` });
      return INVALID;
    }
    const variant = kindNode.type === 'string' && Object.hasOwn(variants, kindNode.value) ? variants[kindNode.value] : undefined;
    if (variant === undefined) return fail(ctx, kindNode, p, `must be one of ${kinds.join(', ')}`);
    return variant.check(node, path, ctx) as Checked<Infer<V[keyof V]>>;
  });
}

/** An object used as a map: any keys (non-empty), each value checked by `value`. */
function record<T>(value: Field<T>, opts: Common<Record<string, T>> & { minEntries?: number } = {}): Field<Record<string, T>> {
  return scalar('object', opts, (node, path, ctx) => {
    if (node.type !== 'object') return fail(ctx, node, path, 'must be an object');
    if (opts.minEntries !== undefined && node.members.size < opts.minEntries) return fail(ctx, node, path, `must have at least ${opts.minEntries} entries`);
    const out: Record<string, T> = {};
    let ok = true;
    for (const member of node.members.values()) {
      const v = value.check(member.node, path === '' ? member.key : `${path}.${member.key}`, ctx);
      if (v === INVALID) ok = false;
      else out[member.key] = v;
    }
    return ok ? out : INVALID;
  });
}

/** A problem `refined` found: about `node` (its position goes into the message) at `path`. */
export interface RefineIssue {
  readonly node?: JsonNode;
  readonly path: string;
  readonly text: string;
}

/**
 * `inner`, then `more` on its value for checks that need the whole value and still point at the offending
 * member (a duplicate array item, a map key that is not an address): each issue names its own node, so the
 * error carries that member's file:line:col rather than the start of the enclosing object.
 */
function refined<T>(inner: Field<T>, more: (value: T, node: JsonNode, path: string) => readonly RefineIssue[]): Field<T> {
  return {
    ...inner,
    check(node, path, ctx) {
      const value = inner.check(node, path, ctx);
      if (value === INVALID) return INVALID;
      const issues = more(value, node, path);
      for (const i of issues) ctx.issues.push({ offset: i.node?.start ?? node.start, path: i.path, text: i.text });
      return issues.length > 0 ? INVALID : value;
    },
  };
}

/** The schema toolkit: `field.object({ port: field.integer({ min: 1, max: 65535, default: 8545 }) })`. */
export const field = { integer, number, string, boolean, address, optional, array, object, union, record, refined } as const;

// ---- loading -------------------------------------------------------------------------------------------

function toError(code: ConfigErrorCode, source: string, text: string | undefined, raw: readonly RawIssue[]): ConfigError {
  const issues: ConfigIssue[] = [...raw]
    .sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity))
    .map((issue) => {
      let location = source;
      if (text !== undefined && issue.offset !== undefined) {
        const { line, column } = lineColumn(text, issue.offset);
        location = `${source}:${line}:${column}`;
      }
      return { location, path: issue.path, text: issue.text };
    });
  const message = issues.map((i) => `${i.location}: ${i.text}`).join('\n');
  return new ConfigError(code, message, { source, issues });
}

function validate<T>(schema: Field<T>, root: JsonNode, source: string, text: string | undefined, coerce: boolean, pre: RawIssue[] = []): T {
  const ctx: CheckContext = { issues: [...pre], coerceStrings: coerce };
  const value = schema.check(root, '', ctx);
  if (value === INVALID || ctx.issues.length > 0) throw toError('CONFIG_INVALID', source, text, ctx.issues);
  return value;
}

/**
 * Parses JSON config text named `sourceName` (used in messages) against `schema`. Returns the typed value
 * with defaults filled in. Throws ConfigError: CONFIG_PARSE for bad JSON, CONFIG_INVALID for bad values;
 * the message lists every problem as `source:line:col: path: what (got value)`.
 */
export function parseConfig<T>(text: string, sourceName: string, schema: Field<T>): T {
  const body = text.charCodeAt(0) === 0xfeff ? ' ' + text.slice(1) : text;
  const parser = new PositionParser(body);
  let root: JsonNode;
  try {
    root = parser.parseDocument();
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    throw toError('CONFIG_PARSE', sourceName, body, [{ offset: err.offset, path: '', text: err.message }]);
  }
  return validate(schema, root, sourceName, body, false, parser.duplicates);
}

/** Reads and parses a JSON config file (see parseConfig). A missing or unreadable file is CONFIG_NOT_FOUND. */
export async function loadConfigFile<T>(path: string, schema: Field<T>): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const message =
      errno === 'ENOENT'
        ? `config file not found: ${path} (create it, or pass another path)`
        : `cannot read config file ${path}: ${(err as Error).message}`;
    throw new ConfigError('CONFIG_NOT_FOUND', message, { source: path, errno }, { cause: err });
  }
  return parseConfig(text, path, schema);
}

/** The schema's value with every default applied (what an empty `{}` file gives). */
export function configDefaults<T>(schema: Field<T>): T {
  return parseConfig('{}', 'defaults', schema);
}


/**
 * Returns a new config with dotted-path overrides applied (`{ 'rpc.port': 9000 }`) and checked against the
 * schema; undefined values are skipped, and strings are accepted for numbers and booleans (command-line values).
 * Errors are CONFIG_INVALID and name `source` (default "command line") and the path.
 */
export function withOverrides<T>(config: T, overrides: Readonly<Record<string, unknown>>, schema: Field<T>, source = 'command line'): T {
  const root = toNode(config);
  for (const [dotted, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const keys = dotted.split('.');
    const last = keys.pop() ?? dotted;
    let members = root.type === 'object' ? root.members : new Map<string, JsonMember>();
    for (const key of keys) {
      const next = members.get(key)?.node;
      if (next !== undefined && next.type === 'object') {
        members = next.members;
      } else {
        const fresh = new Map<string, JsonMember>();
        members.set(key, { key, node: { type: 'object', members: fresh } });
        members = fresh;
      }
    }
    members.set(last, { key: last, node: toNode(value) });
  }
  return validate(schema, root, source, undefined, true);
}

// ---- the data directory --------------------------------------------------------------------------------

/** Mode of a data directory: it holds keys, the API token and plaintext readings, so only its owner may enter. */
export const DATA_DIR_MODE = 0o700;

function dataDirError(dataDir: string, path: string, what: string, err?: unknown): ConfigError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  return new ConfigError('DATA_DIR_UNUSABLE', `data directory ${dataDir}: ${what}; pass another --data-dir (or dataDir in the config)`, { dataDir, path, errno }, { cause: err });
}

/**
 * Create the data directory `dir` (and missing parents) or check the one that exists, and make it 0700.
 * Each missing level is made on its own instead of with mkdir's `recursive`, which on Node 20 loops forever
 * (at full CPU, beyond the reach of signals) where the kernel refuses directories, as in /proc. Throws
 * DATA_DIR_UNUSABLE naming the level at fault: a file in the way, no permission, a filesystem that refuses
 * directories. Returns the absolute path.
 */
export async function prepareDataDir(dir: string): Promise<string> {
  const dataDir = resolve(dir);
  const missing: string[] = [];
  for (let p = dataDir; ; p = dirname(p)) {
    let st;
    try {
      st = await stat(p);
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      if ((errno === 'ENOENT' || errno === 'ENOTDIR') && dirname(p) !== p) {
        missing.unshift(p);
        continue;
      }
      throw dataDirError(dataDir, p, `cannot look at ${p} (${errno ?? String(err)})`, err);
    }
    if (!st.isDirectory()) throw dataDirError(dataDir, p, `${p} is not a directory`);
    break;
  }
  for (const p of missing) {
    try {
      await mkdir(p, { mode: DATA_DIR_MODE });
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'EEXIST' && (await stat(p).catch(() => null))?.isDirectory() === true) continue;
      const why =
        errno === 'EACCES' || errno === 'EPERM' ? 'no permission to create it there'
        : errno === 'EROFS' ? 'the filesystem is read-only'
        : errno === 'ENOSPC' ? 'the disk is full'
        : errno === 'ENOENT' ? 'that filesystem does not take new directories (a virtual one such as /proc?)'
        : `mkdir failed (${errno ?? String(err)})`;
      throw dataDirError(dataDir, p, `cannot create ${p}: ${why}`, err);
    }
  }
  const st = await stat(dataDir);
  if ((st.mode & 0o777) !== DATA_DIR_MODE) {
    try {
      await chmod(dataDir, DATA_DIR_MODE);
    } catch (err) {
      throw dataDirError(dataDir, dataDir, `cannot make it private (chmod 700 failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}); chmod 700 it yourself`, err);
    }
  }
  return dataDir;
}
