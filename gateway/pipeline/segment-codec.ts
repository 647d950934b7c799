// What the segment readings and manifest layouts (segment-format.ts, segment-manifest.ts) share: the format
// version, the summary of the readings a manifest carries, and small strict codecs (canonical RLP items, UTF-8,
// float64) with the errors they raise.
import type { RlpItem } from '../../chain/index.ts';
import { rlpDecode } from '../../chain/index.ts';
import { PipelineError } from './errors.ts';

/** The version of the readings and manifest layouts (spec in segment-format.ts) and of the envelope that carries them. */
export const SEGMENT_FORMAT_VERSION = 1;

/** What the readings of a segment cover (computed from them, checked against them on open). */
export interface SegmentSummary {
  readonly stream: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Earliest ts (ms), not necessarily the first reading's. */
  readonly firstTs: number;
  /** Latest ts (ms), not necessarily the last reading's. */
  readonly lastTs: number;
  readonly count: number;
  readonly schema: string;
}

export const utf8 = new TextEncoder();
export const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function corrupt(what: string, fields: Record<string, unknown> = {}): PipelineError {
  return new PipelineError('SEGMENT_CORRUPT', `${what}: the bytes are damaged or not a datagate segment (format v1)`, fields);
}

/** Readings and manifests travel inside a versioned envelope, so another version in here is damage, not news. */
export function wrongVersion(what: string, version: number): PipelineError {
  return corrupt(`${what} has format version ${version} inside a version 1 segment`, { version });
}

export function invalid(argument: string, message: string, fields: Record<string, unknown> = {}): PipelineError {
  return new PipelineError('PIPELINE_INVALID_INPUT', `${argument}: ${message}`, { argument, ...fields });
}

/** UTF-8 of `s`, refusing strings with lone surrogates (they cannot round-trip). */
export function stringBytes(s: unknown, argument: string, fields: Record<string, unknown> = {}): Uint8Array {
  if (typeof s !== 'string') throw invalid(argument, `must be a string, got ${typeof s}`, fields);
  const bytes = utf8.encode(s);
  if (fromUtf8.decode(bytes) !== s) throw invalid(argument, 'has a lone UTF-16 surrogate, which UTF-8 cannot carry', fields);
  return bytes;
}

export function uintInput(n: unknown, argument: string, fields: Record<string, unknown> = {}): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalid(argument, `must be an integer in [0, 2^53 - 1], got ${String(n)}`, fields);
  }
  return n;
}

export function floatBytes(x: unknown, argument: string, fields: Record<string, unknown> = {}): Uint8Array {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(argument, `must be a finite number, got ${String(x)}`, fields);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, x, false);
  return out;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** True when `a` and `b` hold the same bytes (not constant-time: for public values such as hashes). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function decodeRlp(bytes: Uint8Array, what: string): RlpItem {
  if (bytes.length === 0) throw corrupt(`${what} is empty`);
  try {
    return rlpDecode(bytes);
  } catch (err) {
    throw corrupt(`${what} is not valid RLP (${(err as Error).message})`);
  }
}

export function asList(item: RlpItem | undefined, what: string, length?: number): RlpItem[] {
  if (!Array.isArray(item)) throw corrupt(`${what} must be a list`);
  if (length !== undefined && item.length !== length) throw corrupt(`${what} must have ${length} items, has ${item.length}`);
  return item;
}

export function asBytes(item: RlpItem | undefined, what: string, length?: number): Uint8Array {
  if (!(item instanceof Uint8Array)) throw corrupt(`${what} must be a byte string`);
  if (length !== undefined && item.length !== length) throw corrupt(`${what} must be ${length} bytes, is ${item.length}`);
  return item;
}

export function asUint(item: RlpItem | undefined, what: string): number {
  const b = asBytes(item, what);
  if (b.length > 7 || (b.length > 0 && b[0] === 0)) throw corrupt(`${what} is not a canonical integer below 2^53`);
  let n = 0;
  for (let i = 0; i < b.length; i++) n = n * 256 + b[i]!;
  if (n > Number.MAX_SAFE_INTEGER) throw corrupt(`${what} is above 2^53 - 1`);
  return n;
}

export function asFloat(item: RlpItem | undefined, what: string): number {
  const b = asBytes(item, what, 8);
  const x = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false);
  if (!Number.isFinite(x)) throw corrupt(`${what} is not a finite number`);
  return x;
}

export function asString(item: RlpItem | undefined, what: string): string {
  const b = asBytes(item, what);
  try {
    return fromUtf8.decode(b);
  } catch {
    throw corrupt(`${what} is not valid UTF-8`);
  }
}

/** [] -> undefined, [x] -> x. */
export function asOptional(item: RlpItem | undefined, what: string): RlpItem | undefined {
  const list = asList(item, what);
  if (list.length > 1) throw corrupt(`${what} must have 0 or 1 items, has ${list.length}`);
  return list[0];
}

