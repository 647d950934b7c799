// The pipeline database's on-disk format: key layout and the codecs of its records. This comment is the
// contract: numbered prefixes are never reused for another meaning, the schema version is checked at open,
// and a layout change gets a new PIPELINE_SCHEMA_VERSION and a migration.
//
// Keys (LevelDB, binary keys; u64 = 8 bytes big-endian, so keys sort in number order):
//   0x01 meta/<name>      -> value      'schema' -> decimal PIPELINE_SCHEMA_VERSION;
//                                        'storeBytes' -> decimal sum of the envelope bytes of every segment
//                                        in state sealed or stored (what limits.maxStoreBytes bounds)
//   0x02 u64 queueNo      -> (schema 1 only, still read) one queued reading: u64 arrival time (pipeline
//                            clock, ms) || the one-reading readings bytes of segment-format.ts
//                            (encodeReadings([reading])). Deleted in the batch that records its segment.
//   0x03 u64 segmentNo    -> segment record (below); never deleted (a dropped segment keeps a tombstone)
//   0x04 <stream UTF-8>   -> stream record: RLP [ lastSeq, segmentNo ] of the stream's latest sealed segment
//   0x05 u64 segmentNo    -> envelope bytes, present only while the segment is in state sealed
//   0x06 u64 segmentNo    -> empty: the segment is stored and unsold (the oldest first are what
//                            'drop-oldest-unsold' deletes)
//   0x07 <key UTF-8>      -> UTF-8 digest: the DeliveryTag of a stored reading (sensors/reading.ts) whose
//                            acknowledgement to its source (MQTT PUBACK) may not have gone out; written in the
//                            batch that queues the reading, deleted once the acknowledgement is sent. Added
//                            without a schema change: older databases simply have none.
//   0x08 u64 firstQueueNo -> queue batch (schema 2): the readings of one group commit, numbered firstQueueNo,
//                            firstQueueNo + 1, ... in ingest order: a format byte (1), then per reading
//                            u64 arrival time (pipeline clock, ms) || u32 length || the one-reading readings
//                            bytes (as in 0x02). Deleted in the batch that seals its last reading.
//   0x09 u64 firstQueueNo -> consumed map of the queue batch 0x08 with that number: bit i (byte i >> 3, bit
//                            i & 7) set when reading firstQueueNo + i is in a sealed segment. Written in each
//                            batch that seals some of the batch's readings but not the last; absent while
//                            none is sealed; deleted with the batch.
//   0x0A u64 firstQueueNo -> delivery group (schema 2): the DeliveryTags of the readings of the queue batch with
//                            that number that carry one, in batch order, as the UTF-8 of, per tag,
//                            `<key length>:<key><digest length>:<digest>` (lengths decimal, in UTF-16 code
//                            units). Written in the batch that queues them; deleted once every tag is released.
//   0x0B u64 firstQueueNo -> released map of that delivery group: bit i set when tag i is released (its
//                            acknowledgement arrived, or a newer message took its key). Absent while none is.
//
// Schema 2 added 0x08 to 0x0B and writes no 0x02 or 0x07: a schema 1 database opens as schema 2 unchanged
// (its queued 0x02 readings are read back and sealed as before, ahead of the batches; its 0x07 records are
// held and deleted as before).
//
// Segment record = RLP [ version = 1, state, stream, firstSeq, lastSeq, count, firstTs, lastTs,
//                        manifestHash (32), runStart (0|1), envelopeBytes, sealedAt, wrappedKey, cid ]
//   state         1 sealed (envelope in 0x05), 2 stored (envelope in the content store under cid),
//                 3 dropped (tombstone: wrappedKey and cid empty). 4 listed and 5 sold are reserved for the
//                 market states (docs/architecture.md "Pipeline"); numbers are never reused.
//   runStart      1 when the segment's first reading starts a driver run (the stream's first reading, or seq
//                 not above the previous reading's): seq continuity is not expected across it
//   wrappedKey    the segment key wrapped under the master key, bound to manifestHash (segment-crypto.ts)
//   cid           UTF-8 CID string of the envelope in the content store; empty before state stored
import type { RlpItem } from '../../chain/index.ts';
import { rlpDecode, rlpEncode } from '../../chain/index.ts';
import type { Reading } from '../../sensors/index.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import { decodeReadings } from './segment-format.ts';

/** Version of the on-disk format above. */
export const PIPELINE_SCHEMA_VERSION = 2;
/** Schemas opened as PIPELINE_SCHEMA_VERSION without rewriting a record (their records are a subset). */
export const PIPELINE_SCHEMA_UPGRADES: readonly number[] = [1];

export const P_META = 0x01;
export const P_QUEUE = 0x02;
export const P_SEGMENT = 0x03;
export const P_STREAM = 0x04;
export const P_ENVELOPE = 0x05;
export const P_UNSOLD = 0x06;
export const P_DELIVERY = 0x07;
export const P_BATCH = 0x08;
export const P_CONSUMED = 0x09;
export const P_DELIVERY_GROUP = 0x0A;
export const P_DELIVERY_RELEASED = 0x0B;

const RECORD_VERSION = 1;

export type SegmentState = 'sealed' | 'stored' | 'dropped';
const STATE_CODES: Record<SegmentState, number> = { sealed: 1, stored: 2, dropped: 3 };
const STATE_NAMES = new Map<number, SegmentState>([[1, 'sealed'], [2, 'stored'], [3, 'dropped']]);

/** A segment's persisted record (the key material stays wrapped). */
export interface StoredSegment {
  readonly no: number;
  readonly state: SegmentState;
  readonly stream: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly count: number;
  readonly firstTs: number;
  readonly lastTs: number;
  readonly manifestHash: Uint8Array;
  readonly runStart: boolean;
  readonly envelopeBytes: number;
  readonly sealedAt: number;
  /** 73 bytes; empty once dropped. */
  readonly wrappedKey: Uint8Array;
  /** Set from state stored on. */
  readonly cid?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);

/** prefix byte || body. */
export function prefixed(prefix: number, body: Uint8Array = EMPTY): Uint8Array {
  const k = new Uint8Array(1 + body.length);
  k[0] = prefix;
  k.set(body, 1);
  return k;
}

/** prefix byte || u64 BE of `n`. */
export function numberKey(prefix: number, n: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = prefix;
  writeU64(k, 1, n);
  return k;
}

/** `n` (a safe integer >= 0) as 8 big-endian bytes at `at`: two 32-bit halves, no BigInt (two per reading ingested). */
function writeU64(out: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n - hi * 0x1_0000_0000;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

/** The number in a numberKey. */
export function keyNumber(k: Uint8Array): number {
  if (k.length !== 9) throw corrupt('a numbered key is not 9 bytes');
  return Number(new DataView(k.buffer, k.byteOffset, 9).getBigUint64(1));
}

/** Range options covering every key under `prefix`. */
export function prefixRange(prefix: number): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: prefixed(prefix), lt: prefixed(prefix + 1) };
}

export const metaKey = (name: string): Uint8Array => prefixed(P_META, enc.encode(name));
export const streamKey = (stream: string): Uint8Array => prefixed(P_STREAM, enc.encode(stream));
/** One encode, no copy: the prefix byte is below 0x80, so it is its own UTF-8 encoding. */
const DELIVERY_PREFIX = String.fromCharCode(P_DELIVERY);
export const deliveryKey = (key: string): Uint8Array => enc.encode(DELIVERY_PREFIX + key);

export function corrupt(what: string, fields: Record<string, unknown> = {}): PipelineRuntimeError {
  return new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', `pipeline database: ${what}; the database is damaged, restore it or move it away and start empty`, fields);
}

/** Decode a schema 1 queued reading (0x02). Throws PIPELINE_STATE_CORRUPT. */
export function decodeQueued(v: Uint8Array, queueNo: number): { arrivedAt: number; reading: Reading } {
  if (v.length < 9) throw corrupt(`queued reading ${queueNo} is too short`, { queueNo });
  const arrivedAt = Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0));
  return { arrivedAt, reading: decodeBatchEntry({ arrivedAt, bytes: v.subarray(8) }, queueNo) };
}

const BATCH_FORMAT = 1;
/** Bytes a batch record adds to each reading's readings bytes: u64 arrival time, u32 length. */
export const BATCH_ENTRY_HEADER = 12;

/** What a queue batch record holds of one reading. */
export interface BatchEntry {
  readonly arrivedAt: number;
  /** The one-reading readings bytes (segment-format.ts). */
  readonly bytes: Uint8Array;
}

/** A queue batch record (0x08) holding `entries` in order. */
export function encodeBatch(entries: readonly BatchEntry[]): Uint8Array {
  let length = 1;
  for (const e of entries) length += BATCH_ENTRY_HEADER + e.bytes.length;
  const v = new Uint8Array(length);
  const view = new DataView(v.buffer);
  v[0] = BATCH_FORMAT;
  let at = 1;
  for (const e of entries) {
    writeU64(v, at, Math.max(0, Math.floor(e.arrivedAt)));
    view.setUint32(at + 8, e.bytes.length);
    v.set(e.bytes, at + BATCH_ENTRY_HEADER);
    at += BATCH_ENTRY_HEADER + e.bytes.length;
  }
  return v;
}

/** The entries of queue batch `first` (their bytes are views into `v`). Throws PIPELINE_STATE_CORRUPT. */
export function splitBatch(v: Uint8Array, first: number): BatchEntry[] {
  const bad = (what: string): PipelineRuntimeError => corrupt(`queue batch ${first} ${what}`, { first });
  if (v.length < 1 || v[0] !== BATCH_FORMAT) throw bad('has an unknown format');
  const view = new DataView(v.buffer, v.byteOffset, v.length);
  const entries: BatchEntry[] = [];
  for (let at = 1; at < v.length;) {
    if (at + BATCH_ENTRY_HEADER > v.length) throw bad('is truncated');
    const arrivedAt = Number(view.getBigUint64(at));
    const length = view.getUint32(at + 8);
    at += BATCH_ENTRY_HEADER;
    if (at + length > v.length) throw bad('is truncated');
    entries.push({ arrivedAt, bytes: v.subarray(at, at + length) });
    at += length;
  }
  if (entries.length === 0) throw bad('is empty');
  return entries;
}

/** The reading of one batch entry. Throws PIPELINE_STATE_CORRUPT. */
export function decodeBatchEntry(e: BatchEntry, queueNo: number): Reading {
  try {
    const readings = decodeReadings(e.bytes);
    if (readings.length !== 1) throw new Error(`holds ${readings.length} readings`);
    return readings[0]!;
  } catch (err) {
    throw new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', `pipeline database: queued reading ${queueNo} does not decode; the database is damaged`, { queueNo }, { cause: err });
  }
}

/** Whether reading `i` of a batch is marked in its consumed map (0x09). */
export function isConsumed(map: Uint8Array | null, i: number): boolean {
  return map !== null && ((map[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

function uint(item: RlpItem | undefined, what: string): number {
  if (!(item instanceof Uint8Array) || item.length > 7 || (item.length > 0 && item[0] === 0)) throw corrupt(`${what} is not a canonical integer`);
  let n = 0;
  for (const b of item) n = n * 256 + b;
  if (!Number.isSafeInteger(n)) throw corrupt(`${what} is too large`);
  return n;
}

function bytes(item: RlpItem | undefined, what: string): Uint8Array {
  if (!(item instanceof Uint8Array)) throw corrupt(`${what} is not a byte string`);
  return item;
}

function list(v: Uint8Array, what: string, length: number): RlpItem[] {
  let item: RlpItem;
  try {
    item = rlpDecode(v);
  } catch (err) {
    throw new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', `pipeline database: ${what} is not RLP; the database is damaged`, {}, { cause: err });
  }
  if (!Array.isArray(item) || item.length !== length) throw corrupt(`${what} is not a list of ${length} items`);
  return item;
}

export function encodeSegment(s: StoredSegment): Uint8Array {
  return rlpEncode([
    RECORD_VERSION, STATE_CODES[s.state], enc.encode(s.stream), s.firstSeq, s.lastSeq, s.count, s.firstTs, s.lastTs,
    s.manifestHash, s.runStart ? 1 : 0, s.envelopeBytes, s.sealedAt, s.wrappedKey, s.cid === undefined ? EMPTY : enc.encode(s.cid),
  ]);
}

/** Decode the segment record stored under segment number `no`. Throws PIPELINE_STATE_CORRUPT. */
export function decodeSegment(no: number, v: Uint8Array): StoredSegment {
  const what = `segment record ${no}`;
  const f = list(v, what, 14);
  if (uint(f[0], `${what} version`) !== RECORD_VERSION) throw corrupt(`${what} has an unknown version`, { no });
  const state = STATE_NAMES.get(uint(f[1], `${what} state`));
  if (state === undefined) throw corrupt(`${what} has an unknown state`, { no });
  let stream: string;
  let cid: string;
  try {
    stream = dec.decode(bytes(f[2], `${what} stream`));
    cid = dec.decode(bytes(f[13], `${what} cid`));
  } catch (err) {
    throw new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', `pipeline database: ${what} holds invalid UTF-8`, { no }, { cause: err });
  }
  const manifestHash = bytes(f[8], `${what} manifestHash`);
  if (manifestHash.length !== 32) throw corrupt(`${what} manifestHash is not 32 bytes`, { no });
  const runStart = uint(f[9], `${what} runStart`);
  if (runStart > 1) throw corrupt(`${what} runStart is not 0 or 1`, { no });
  if ((state === 'stored') !== (cid !== '')) throw corrupt(`${what} cid does not match its state`, { no });
  return {
    no, state, stream,
    firstSeq: uint(f[3], `${what} firstSeq`), lastSeq: uint(f[4], `${what} lastSeq`), count: uint(f[5], `${what} count`),
    firstTs: uint(f[6], `${what} firstTs`), lastTs: uint(f[7], `${what} lastTs`),
    manifestHash: Uint8Array.from(manifestHash), runStart: runStart === 1,
    envelopeBytes: uint(f[10], `${what} envelopeBytes`), sealedAt: uint(f[11], `${what} sealedAt`),
    wrappedKey: Uint8Array.from(bytes(f[12], `${what} wrappedKey`)),
    ...(cid !== '' ? { cid } : {}),
  };
}

/** The stream record: the latest sealed segment's lastSeq and number. */
export function encodeStream(lastSeq: number, segmentNo: number): Uint8Array {
  return rlpEncode([lastSeq, segmentNo]);
}

export function decodeStream(stream: string, v: Uint8Array): { lastSeq: number; segmentNo: number } {
  const f = list(v, `stream record ${JSON.stringify(stream)}`, 2);
  return { lastSeq: uint(f[0], 'stream lastSeq'), segmentNo: uint(f[1], 'stream segmentNo') };
}

export function decodeStreamKey(k: Uint8Array): string {
  try {
    return dec.decode(k.subarray(1));
  } catch (err) {
    throw new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', 'pipeline database: a stream key is not UTF-8', {}, { cause: err });
  }
}

/** A delivery group record (0x0A) of `tags`, in order. */
export function encodeDeliveryGroup(tags: readonly { readonly key: string; readonly digest: string }[]): Uint8Array {
  let text = '';
  for (const t of tags) text += `${t.key.length}:${t.key}${t.digest.length}:${t.digest}`;
  return enc.encode(text);
}

/** The tags of delivery group `first`. Throws PIPELINE_STATE_CORRUPT. */
export function decodeDeliveryGroup(v: Uint8Array, first: number): { key: string; digest: string }[] {
  const bad = (): PipelineRuntimeError => corrupt(`delivery group ${first} does not decode`, { first });
  let text: string;
  try {
    text = dec.decode(v);
  } catch {
    throw bad();
  }
  const out: { key: string; digest: string }[] = [];
  let at = 0;
  const field = (): string => {
    const colon = text.indexOf(':', at);
    const length = colon < 0 ? NaN : Number(text.slice(at, colon));
    if (!/^[1-9][0-9]*$/.test(text.slice(at, colon)) || colon + 1 + length > text.length) throw bad();
    at = colon + 1 + length;
    return text.slice(colon + 1, at);
  };
  while (at < text.length) out.push({ key: field(), digest: field() });
  if (out.length === 0) throw bad();
  return out;
}

/** A delivery record's tag key and digest. Throws PIPELINE_STATE_CORRUPT. */
export function decodeDelivery(k: Uint8Array, v: Uint8Array): { key: string; digest: string } {
  try {
    return { key: dec.decode(k.subarray(1)), digest: dec.decode(v) };
  } catch (err) {
    throw new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', 'pipeline database: a delivery record is not UTF-8', {}, { cause: err });
  }
}

export const encodeDecimal = (n: number): Uint8Array => enc.encode(String(n));

export function decodeDecimal(v: Uint8Array | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const s = dec.decode(v);
  const n = Number(s);
  if (!/^(0|[1-9][0-9]*)$/.test(s) || !Number.isSafeInteger(n)) throw corrupt(`${what} is not a decimal integer`);
  return n;
}
