// The gateway's implementation of the ledger's `Logger` port: JSON lines for machines (journald, log
// shippers) and a compact human format on a terminal. Logging never throws and never prints secrets.

import type { Logger, LogFields } from '../chain/index.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'human' | 'auto';

/** Levels in increasing severity; a logger prints its own level and everything above it. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Where lines go: anything with `write(string)`, e.g. process.stderr. `isTTY` selects the 'auto' format. */
export interface LogStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
}

export interface LoggerOptions {
  /** Lowest level printed. Default 'info'. */
  level?: LogLevel;
  /** 'auto' (default): human when the stream is a TTY, JSON lines otherwise. */
  format?: LogFormat;
  /** Default process.stderr. */
  stream?: LogStream;
  /** Fields added to every line (child loggers add more). */
  fields?: LogFields;
  /** Clock for timestamps; tests pass a fixed one. Default `() => new Date()`. */
  now?: () => Date;
}

/** Field names whose values are never logged (matched anywhere in the key, case-insensitive, at any depth). */
export const SECRET_KEY_PATTERN = /key|secret|pass|pin|mnemonic|private/i;
/** What a secret field's value is replaced with. */
export const REDACTED = '[redacted]';

/** True when a field with this name is treated as a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key);
}

const MAX_DEPTH = 8;
const MAX_BYTES_SHOWN = 4096;
const MAX_ITEMS = 1000;

/**
 * Turns log fields into plain JSON-safe data: bigint -> decimal string, Uint8Array -> 0x-hex, Error ->
 * {code, message}, Date -> ISO string, Map -> object, Set -> array; secret keys -> "[redacted]";
 * cycles -> "[circular]". Never throws. This is what both output formats print.
 */
export function redact(fields: LogFields): Record<string, unknown> {
  const out = toPlain(fields, new WeakSet(), 0);
  return out !== null && typeof out === 'object' && !Array.isArray(out) ? (out as Record<string, unknown>) : {};
}

function toPlain(value: unknown, seen: WeakSet<object>, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString(10);
    case 'undefined':
      return undefined;
    case 'symbol':
      return value.toString();
    case 'function':
      return `[function ${value.name || 'anonymous'}]`;
  }
  if (value === null) return null;
  const obj = value as object;
  if (obj instanceof Uint8Array) return bytesToHex(obj);
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
  if (seen.has(obj)) return '[circular]';
  if (!(obj instanceof Error) && typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    seen.add(obj);
    try {
      return toPlain((obj as { toJSON(): unknown }).toJSON(), seen, depth + 1);
    } catch {
      return '[unserializable]';
    } finally {
      seen.delete(obj);
    }
  }
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(obj);
  try {
    if (obj instanceof Error) return errorToPlain(obj);
    if (Array.isArray(obj)) return obj.slice(0, MAX_ITEMS).map((v) => toPlain(v, seen, depth + 1) ?? null);
    if (obj instanceof Set) return [...obj].slice(0, MAX_ITEMS).map((v) => toPlain(v, seen, depth + 1) ?? null);
    const entries: [string, unknown][] =
      obj instanceof Map ? [...obj].map(([k, v]) => [String(k), v]) : Object.entries(obj);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries.slice(0, MAX_ITEMS)) {
      const plain = isSecretKey(k) ? REDACTED : toPlain(v, seen, depth + 1);
      if (plain !== undefined) out[k] = plain;
    }
    return out;
  } catch {
    return '[unserializable]';
  } finally {
    seen.delete(obj);
  }
}

function errorToPlain(err: Error): Record<string, unknown> {
  const code = (err as { code?: unknown }).code;
  const out: Record<string, unknown> = {};
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  out.message = err.message;
  return out;
}

function bytesToHex(bytes: Uint8Array): string {
  const shown = bytes.length > MAX_BYTES_SHOWN ? bytes.subarray(0, MAX_BYTES_SHOWN) : bytes;
  const hex = '0x' + Buffer.from(shown.buffer, shown.byteOffset, shown.byteLength).toString('hex');
  return shown === bytes ? hex : `${hex}...(${bytes.length} bytes)`;
}

const RESERVED_JSON_KEYS = new Set(['t', 'level', 'msg']);

function formatJson(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const line: Record<string, unknown> = { t: time.toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) line[RESERVED_JSON_KEYS.has(k) ? `_${k}` : k] = v;
  return JSON.stringify(line) + '\n';
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function formatHuman(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const clock = `${pad(time.getHours(), 2)}:${pad(time.getMinutes(), 2)}:${pad(time.getSeconds(), 2)}.${pad(time.getMilliseconds(), 3)}`;
  const parts = [clock, level.toUpperCase().padEnd(5)];
  const { module, ...rest } = fields;
  if (module !== undefined) parts.push(`[${typeof module === 'string' ? module : JSON.stringify(module)}]`);
  parts.push(escapeControl(msg));
  for (const [k, v] of Object.entries(rest)) parts.push(`${k}=${humanValue(v)}`);
  return parts.join(' ') + '\n';
}

function humanValue(v: unknown): string {
  if (typeof v === 'string') return v !== '' && /^[^\s"'=\\\p{Cc}]+$/u.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function escapeControl(s: string): string {
  // Keeps one entry per line: a newline in a message must not forge a second log line.
  return s.replace(/\p{Cc}/gu, (c) => JSON.stringify(c).slice(1, -1));
}

interface Sink {
  readonly threshold: number;
  readonly human: boolean;
  readonly stream: LogStream;
  readonly now: () => Date;
}

/** Builds a Logger writing to `stream` (default stderr). Lines below `level` are dropped before any formatting. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const { level = 'info', format = 'auto', stream = process.stderr, fields = {}, now = () => new Date() } = options;
  const threshold = LOG_LEVELS.indexOf(level);
  if (threshold < 0) throw new TypeError(`createLogger: level must be one of ${LOG_LEVELS.join(', ')} (got ${String(level)})`);
  const human = format === 'human' || (format === 'auto' && stream.isTTY === true);
  return makeLogger({ threshold, human, stream, now }, { ...fields });
}

function makeLogger(sink: Sink, base: LogFields): Logger {
  const emit = (level: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (LOG_LEVELS.indexOf(level) < sink.threshold) return;
    let line: string;
    try {
      const time = sink.now();
      const plain = redact(fields === undefined ? base : { ...base, ...fields });
      line = sink.human ? formatHuman(time, level, String(msg), plain) : formatJson(time, level, String(msg), plain);
    } catch (err) {
      line = fallbackLine(level, msg, err);
    }
    try {
      sink.stream.write(line);
    } catch {
      // A broken log stream must not take the node down; there is nowhere left to report it.
    }
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => makeLogger(sink, { ...base, ...fields }),
  };
}

function fallbackLine(level: LogLevel, msg: unknown, err: unknown): string {
  try {
    return JSON.stringify({ t: new Date().toISOString(), level, msg: String(msg), logError: String(err) }) + '\n';
  } catch {
    return `{"level":"${level}","msg":"(log line could not be formatted)"}\n`;
  }
}
