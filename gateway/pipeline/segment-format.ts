// Segment format, version 1: how a segment's readings become bytes, and the device-signed manifest a buyer
// browses and checks (docs/architecture.md "Segment format" and "Private transactions and the market"). This comment is the
// format contract: a change to any layout below gets a new version number, and old versions stay readable.
//
// Conventions. RLP as in Ethereum (chain/rlp.ts). A uint is a canonical RLP integer (big-endian, no leading
// zero byte, 0 is the empty string) of at most 2^53 - 1. A float is an IEEE 754 binary64, 8 bytes big-endian,
// finite (no NaN, no infinity). A string is well-formed UTF-8 (a leading U+FEFF is kept as data). Decoders are
// strict: they accept only the one canonical encoding of each value and reject anything else, whole or in
// part, with SEGMENT_CORRUPT (a version other than 1 included: only the envelope's version byte can announce
// a newer format, with SEGMENT_UNSUPPORTED_VERSION).
//
// Readings (the plaintext sealed in a segment):
//   readings = RLP [ version = 1, stream, [ leaf_0, ..., leaf_n-1 ] ]                          n >= 1
//   leaf_i   = a byte string holding RLP(reading_i). The Merkle leaf is exactly these bytes; seq and ts are
//              absolute (no delta coding), so one reading can be proven by itself against the manifest.
//   reading  = [ seq, ts, body, unit, quality ]
//     seq      uint; strictly increasing from one leaf to the next
//     ts       uint: ms since the Unix epoch (integral)
//     body     a float (8-byte string): the reading's `value`; or
//              a list [ [name, float], ... ]: its `values`, name a string, pairs in strictly ascending
//              byte order of the UTF-8 names (so names are unique)
//     unit     [] when absent, [ string ] when present ('' is a present, empty unit)
//     quality  [] when absent, [ float ] when present
//
// Manifest (public; the device signs it):
//   manifest = RLP [ version = 1, stream, firstSeq, lastSeq, firstTs, lastTs, count, schema,
//                    merkleRoot, keyCommitment, [ address, keyType, publicKey ] ]
//     firstSeq, lastSeq  seq of the first and of the last reading (uints)
//     firstTs, lastTs    earliest and latest ts of the readings (uints). A device clock may step back, so these
//                        are the min and max, not the ts of the first and last reading.
//     count              number of readings, 1 <= count <= lastSeq - firstSeq + 1
//     schema             string: the distinct reading shapes, sorted, joined by '; '. A shape is `value` or
//                        `values("a","b")` (names JSON-quoted, in body order), then ` "unit"` when it has one;
//                        e.g. 'value "°C"'. Informative for buyers; opening a segment checks it.
//     merkleRoot         32 bytes: chain/merkle.ts merkleRoot (RFC 6962 style, keccak256) of leaf_0 .. leaf_n-1
//     keyCommitment      32 bytes: keccak256(segment key)
//     address            20 bytes: keccak256(x || y)[12:] of publicKey (chain keyAddress)
//     keyType            ASCII 'secp256k1' or 'p256'
//     publicKey          65 bytes: 04 || x || y
//   manifestHash    = keccak256('datagate/segment/v1' || manifest)                 (ASCII tag, then the RLP bytes)
//   signed digest   = keccak256('datagate/segment-manifest/v1' || manifestHash), signed with purpose 'message'
//   signature       = secp256k1: 65 bytes r || s || recid (low s, recid 0 or 1, so ecrecover works on it);
//                     p256: 64 bytes r || s (low s, ECDSA over sha256(digest), see chain/crypto/p256.ts)
//   signed manifest = RLP [ manifest (the RLP bytes above, as one byte string), signature ]
//
// The envelope that carries the signed manifest and the encrypted readings is in segment-crypto.ts.
import type { RlpInput } from '../../chain/index.ts';
import { MerkleAccumulator, rlpEncode } from '../../chain/index.ts';
import type { Reading } from '../../sensors/index.ts';
import type { SegmentSummary } from './segment-codec.ts';
import {
  SEGMENT_FORMAT_VERSION, asBytes, asFloat, asList, asOptional, asString, asUint, compareBytes, corrupt, decodeRlp, floatBytes, invalid, stringBytes,
  uintInput, utf8, wrongVersion,
} from './segment-codec.ts';
// What the readings and the manifest share lives in segment-codec.ts, the manifest in segment-manifest.ts (which
// imports none of this file); re-exported so callers keep one import.
export type { SegmentSummary } from './segment-codec.ts';
export { SEGMENT_FORMAT_VERSION, equalBytes } from './segment-codec.ts';
export type { DeviceIdentity, SegmentManifest, SignedManifest } from './segment-manifest.ts';
export {
  KEY_TYPES, MANIFEST_TAG, SIGN_TAG, decodeManifest, decodeSignedManifest, deviceOf, encodeManifest, encodeSignedManifest, manifestDigest, manifestHash,
  signManifest, verifyManifest,
} from './segment-manifest.ts';

/** A segment's readings as bytes (`bytes`, the plaintext) and its Merkle leaves (one per reading). */
export interface EncodedReadings {
  readonly stream: string;
  readonly leaves: readonly Uint8Array[];
  readonly bytes: Uint8Array;
}

// ---- readings ------------------------------------------------------------------------------------------

/** Encode one reading as its leaf bytes. `names` caches the UTF-8 of value names and units. */
function encodeReading(r: Reading, index: number, names: Map<string, Uint8Array>): Uint8Array {
  const at = { index };
  if (typeof r !== 'object' || r === null) throw invalid('readings', 'every reading must be an object', at);
  const cached = (s: unknown, argument: string): Uint8Array => {
    if (typeof s === 'string') {
      const hit = names.get(s);
      if (hit !== undefined) return hit;
    }
    const b = stringBytes(s, argument, at);
    names.set(s as string, b);
    return b;
  };
  const seq = uintInput(r.seq, 'readings[].seq', at);
  const ts = uintInput(r.ts, 'readings[].ts', at);
  if ((r.value === undefined) === (r.values === undefined)) throw invalid('readings', 'exactly one of value or values must be set', at);
  let body: RlpInput;
  if (r.value !== undefined) {
    body = floatBytes(r.value, 'readings[].value', at);
  } else {
    const values = r.values;
    if (typeof values !== 'object' || values === null) throw invalid('readings[].values', 'must be an object of numbers', at);
    const pairs = Object.keys(values).map((name) => [cached(name, 'readings[].values name'), floatBytes(values[name], 'readings[].values', { ...at, name })] as const);
    pairs.sort((a, b) => compareBytes(a[0], b[0]));
    body = pairs as unknown as RlpInput;
  }
  const unit = r.unit === undefined ? [] : [cached(r.unit, 'readings[].unit')];
  const quality = r.quality === undefined ? [] : [floatBytes(r.quality, 'readings[].quality', at)];
  return rlpEncode([seq, ts, body, unit, quality]);
}

/**
 * Encode a segment's readings (all of one stream, at least one, seq strictly increasing) as the version 1
 * readings bytes and their Merkle leaves. Throws PIPELINE_INVALID_INPUT naming the reading at fault.
 */
export function encodeSegmentReadings(readings: readonly Reading[]): EncodedReadings {
  if (!Array.isArray(readings) || readings.length === 0) throw invalid('readings', 'must be a non-empty array');
  const first = readings[0]!;
  const stream = first.stream;
  const streamBytes = stringBytes(stream, 'readings[0].stream');
  const names = new Map<string, Uint8Array>();
  const leaves: Uint8Array[] = new Array<Uint8Array>(readings.length);
  let prevSeq = -1;
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    if (r.stream !== stream) throw invalid('readings', `all readings of a segment must be of stream ${JSON.stringify(stream)}`, { index: i, stream: r.stream });
    leaves[i] = encodeReading(r, i, names);
    if (r.seq <= prevSeq) throw invalid('readings', 'seq must increase strictly; cut a new segment where it restarts', { index: i, seq: r.seq, prevSeq });
    prevSeq = r.seq;
  }
  return { stream, leaves, bytes: rlpEncode([SEGMENT_FORMAT_VERSION, streamBytes, leaves]) };
}

/** The leaf bytes of one reading (ts must be integral). Throws PIPELINE_INVALID_INPUT naming the field at fault. */
export function encodeReadingLeaf(r: Reading, names: Map<string, Uint8Array> = new Map()): Uint8Array {
  return encodeReading(r, 0, names);
}

/** RLP header of a byte string (`list` false) or list payload of `length` bytes, into `out` at `at`; returns its size. */
function rlpHeader(length: number, list: boolean, out: Uint8Array, at: number): number {
  const short = list ? 0xc0 : 0x80;
  if (length <= 55) {
    out[at] = short + length;
    return 1;
  }
  let n = 0;
  for (let l = length; l > 0; l = Math.floor(l / 256)) n++;
  out[at] = short + 55 + n;
  for (let i = n, l = length; i >= 1; i--, l = Math.floor(l / 256)) out[at + i] = l % 256;
  return 1 + n;
}

const HEADER_MAX = 9;

/** Bytes of an RLP string or list whose payload is `payload` bytes (header included; not a lone byte below 0x80). */
export function rlpLength(payload: number): number {
  if (payload <= 55) return 1 + payload;
  let n = 0;
  for (let l = payload; l > 0; l = Math.floor(l / 256)) n++;
  return 1 + n + payload;
}

/** A finished segment's readings: the version 1 bytes, their Merkle root and the manifest fields they determine. */
export interface BuiltReadings {
  readonly bytes: Uint8Array;
  readonly merkleRoot: Uint8Array;
  readonly summary: SegmentSummary;
}

/**
 * Builds a segment's readings bytes, Merkle root and summary one reading at a time, holding only the encoded
 * bytes (not the reading objects) and O(log n) hashes: an open segment costs about its encoded size in
 * memory, and closing it needs no second pass. Gives exactly encodeSegmentReadings(), merkleRoot(leaves)
 * and summarizeReadings() of the same readings.
 */
export class ReadingsBuilder {
  readonly stream: string;
  readonly #streamBytes: Uint8Array;
  /** The leaves list's payload so far: each leaf as an RLP byte string. */
  #buf = new Uint8Array(4096);
  #length = 0;
  readonly #merkle = new MerkleAccumulator();
  readonly #names = new Map<string, Uint8Array>();
  readonly #shapes = new Set<string>();
  readonly #shapeCache = new Map<string, string>();
  /** UTF-8 bytes of the shapes in #shapes, summed (the schema string adds '; ' between them). */
  #shapeBytes = 0;
  #firstSeq = 0;
  #lastSeq = -1;
  #minTs = 0;
  #maxTs = 0;

  constructor(stream: string) {
    this.#streamBytes = stringBytes(stream, 'stream');
    this.stream = stream;
  }

  get count(): number {
    return this.#merkle.count;
  }

  /** UTF-8 length of the stream name. */
  get streamLength(): number {
    return this.#streamBytes.length;
  }

  /** Encoded bytes of the readings so far (what a segment's size bound counts). */
  get size(): number {
    return this.#length;
  }

  /**
   * Append `r` (of this builder's stream, seq above the previous one, ts integral). `leaf` is its
   * encodeReadingLeaf() when the caller has it already. Throws PIPELINE_INVALID_INPUT; the builder is unchanged then.
   */
  add(r: Reading, leaf?: Uint8Array): void {
    const at = { index: this.count };
    if (typeof r !== 'object' || r === null) throw invalid('readings', 'every reading must be an object', at);
    if (r.stream !== this.stream) throw invalid('readings', `all readings of a segment must be of stream ${JSON.stringify(this.stream)}`, { ...at, stream: r.stream });
    if (this.count > 0 && !(r.seq > this.#lastSeq)) throw invalid('readings', 'seq must increase strictly; cut a new segment where it restarts', { ...at, seq: r.seq, prevSeq: this.#lastSeq });
    const bytes = leaf ?? encodeReading(r, at.index, this.#names);
    if (this.#length + bytes.length + HEADER_MAX > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#length + bytes.length + HEADER_MAX));
      grown.set(this.#buf.subarray(0, this.#length));
      this.#buf = grown;
    }
    this.#length += rlpHeader(bytes.length, false, this.#buf, this.#length);
    this.#buf.set(bytes, this.#length);
    this.#length += bytes.length;
    this.#merkle.append(bytes);
    if (this.count === 1) {
      this.#firstSeq = r.seq;
      this.#minTs = r.ts;
      this.#maxTs = r.ts;
    } else {
      if (r.ts < this.#minTs) this.#minTs = r.ts;
      if (r.ts > this.#maxTs) this.#maxTs = r.ts;
    }
    this.#lastSeq = r.seq;
    const shape = shapeOf(r, this.#shapeCache);
    if (!this.#shapes.has(shape)) {
      this.#shapes.add(shape);
      this.#shapeBytes += utf8.encode(shape).length;
    }
  }

  /** Length of finish().bytes, were `more` bytes of leaves (each with its RLP prefix) appended first. */
  readingsLength(more = 0): number {
    const leaves = this.#length + more;
    const streamItem = this.#streamBytes.length === 1 && this.#streamBytes[0]! < 0x80 ? 1 : rlpLength(this.#streamBytes.length);
    return rlpLength(1 + streamItem + rlpLength(leaves));
  }

  /** UTF-8 length of the manifest's schema string, were `r` added first (its shape may be new). */
  schemaLength(r?: Reading): number {
    let bytes = this.#shapeBytes;
    let shapes = this.#shapes.size;
    if (r !== undefined) {
      const shape = shapeOf(r, this.#shapeCache);
      if (!this.#shapes.has(shape)) {
        bytes += utf8.encode(shape).length;
        shapes++;
      }
    }
    return shapes === 0 ? 0 : bytes + 2 * (shapes - 1);
  }

  /** The readings bytes, root and summary. Throws PIPELINE_INVALID_INPUT when no reading was added. */
  finish(): BuiltReadings {
    if (this.count === 0) throw invalid('readings', 'must be a non-empty array');
    const head = new Uint8Array(3 * HEADER_MAX);
    // [ version, stream, [ leaves ] ]: version 1 is the single byte 0x01.
    const streamHead = rlpHeader(this.#streamBytes.length, false, head, 0);
    const bare = this.#streamBytes.length === 1 && this.#streamBytes[0]! < 0x80; // RLP: such a byte is its own encoding
    const streamItem = bare ? 1 : streamHead + this.#streamBytes.length;
    const leavesHead = rlpHeader(this.#length, true, head, HEADER_MAX);
    const payload = 1 + streamItem + leavesHead + this.#length;
    const outerHead = rlpHeader(payload, true, head, 2 * HEADER_MAX);
    const out = new Uint8Array(outerHead + payload);
    let at = 0;
    out.set(head.subarray(2 * HEADER_MAX, 2 * HEADER_MAX + outerHead), at);
    at += outerHead;
    out[at++] = SEGMENT_FORMAT_VERSION;
    if (bare) out[at++] = this.#streamBytes[0]!;
    else {
      out.set(head.subarray(0, streamHead), at);
      at += streamHead;
      out.set(this.#streamBytes, at);
      at += this.#streamBytes.length;
    }
    out.set(head.subarray(HEADER_MAX, HEADER_MAX + leavesHead), at);
    at += leavesHead;
    out.set(this.#buf.subarray(0, this.#length), at);
    return {
      bytes: out,
      merkleRoot: this.#merkle.root(),
      summary: {
        stream: this.stream, firstSeq: this.#firstSeq, lastSeq: this.#lastSeq, firstTs: this.#minTs, lastTs: this.#maxTs, count: this.count,
        schema: [...this.#shapes].sort().join('; '),
      },
    };
  }
}

/** The version 1 readings bytes of `readings` (see encodeSegmentReadings). */
export function encodeReadings(readings: readonly Reading[]): Uint8Array {
  return encodeSegmentReadings(readings).bytes;
}

/** Split readings bytes into stream and leaves without decoding the leaves. Throws SEGMENT_CORRUPT. */
export function splitReadings(bytes: Uint8Array): { stream: string; leaves: Uint8Array[] } {
  if (!(bytes instanceof Uint8Array)) throw invalid('bytes', 'must be a Uint8Array');
  const top = asList(decodeRlp(bytes, 'readings'), 'readings');
  const version = asUint(top[0], 'readings version');
  if (version !== SEGMENT_FORMAT_VERSION) throw wrongVersion('readings', version);
  if (top.length !== 3) throw corrupt(`readings must have 3 items, has ${top.length}`);
  const stream = asString(top[1], 'readings stream');
  const list = asList(top[2], 'readings leaves');
  if (list.length === 0) throw corrupt('readings hold no reading');
  return { stream, leaves: list.map((leaf, i) => asBytes(leaf, `reading ${i}`)) };
}

function decodeLeaf(stream: string, leaf: Uint8Array, i: number): Reading {
  const what = `reading ${i}`;
  const f = asList(decodeRlp(leaf, what), what, 5);
  const seq = asUint(f[0], `${what} seq`);
  const ts = asUint(f[1], `${what} ts`);
  let value: number | undefined;
  let values: Record<string, number> | undefined;
  if (f[2] instanceof Uint8Array) {
    value = asFloat(f[2], `${what} value`);
  } else {
    let prev: Uint8Array | null = null;
    const entries = asList(f[2], `${what} values`).map((pair, j) => {
      const [name, x] = asList(pair, `${what} values[${j}]`, 2);
      const nameBytes = asBytes(name, `${what} values[${j}] name`);
      if (prev !== null && compareBytes(prev, nameBytes) >= 0) throw corrupt(`${what} value names are not in strictly ascending order`);
      prev = nameBytes;
      return [asString(nameBytes, `${what} values[${j}] name`), asFloat(x, `${what} values[${j}]`)] as const;
    });
    values = Object.fromEntries(entries); // own data properties, even for a name like '__proto__'
  }
  const unitItem = asOptional(f[3], `${what} unit`);
  const qualityItem = asOptional(f[4], `${what} quality`);
  return {
    stream,
    ts,
    seq,
    ...(value !== undefined ? { value } : { values }),
    ...(unitItem !== undefined ? { unit: asString(unitItem, `${what} unit`) } : {}),
    ...(qualityItem !== undefined ? { quality: asFloat(qualityItem, `${what} quality`) } : {}),
  };
}

/** Decode the leaves of `stream` into readings, checking seq increases strictly. Throws SEGMENT_CORRUPT. */
export function decodeLeaves(stream: string, leaves: readonly Uint8Array[]): Reading[] {
  const out: Reading[] = new Array<Reading>(leaves.length);
  let prevSeq = -1;
  for (let i = 0; i < leaves.length; i++) {
    const r = decodeLeaf(stream, leaves[i]!, i);
    if (r.seq <= prevSeq) throw corrupt(`reading ${i} has seq ${r.seq}, not above the previous ${prevSeq}`, { index: i });
    prevSeq = r.seq;
    out[i] = r;
  }
  return out;
}

/** Decode version 1 readings bytes. Throws SEGMENT_CORRUPT for anything malformed, and nothing else. */
export function decodeReadings(bytes: Uint8Array): Reading[] {
  const { stream, leaves } = splitReadings(bytes);
  return decodeLeaves(stream, leaves);
}

function shapeOf(r: Reading, cache: Map<string, string>): string {
  let key = r.values === undefined ? '' : Object.keys(r.values).join('\u0000');
  if (r.unit !== undefined) key += `\u0001${r.unit}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let shape = 'value';
  if (r.values !== undefined) {
    const names = Object.keys(r.values).map((n) => [n, utf8.encode(n)] as const);
    names.sort((a, b) => compareBytes(a[1], b[1]));
    shape = `values(${names.map(([n]) => JSON.stringify(n)).join(',')})`;
  }
  if (r.unit !== undefined) shape += ` ${JSON.stringify(r.unit)}`;
  cache.set(key, shape);
  return shape;
}

/** What valid `readings` (one stream, non-empty, seq increasing) cover: the manifest fields they determine. */
export function summarizeReadings(readings: readonly Reading[]): SegmentSummary {
  const first = readings[0];
  if (first === undefined) throw invalid('readings', 'must not be empty');
  let minTs = first.ts;
  let maxTs = first.ts;
  const cache = new Map<string, string>();
  const shapes = new Set<string>();
  for (const r of readings) {
    if (r.ts < minTs) minTs = r.ts;
    if (r.ts > maxTs) maxTs = r.ts;
    shapes.add(shapeOf(r, cache));
  }
  return {
    stream: first.stream,
    firstSeq: first.seq,
    lastSeq: readings[readings.length - 1]!.seq,
    firstTs: minTs,
    lastTs: maxTs,
    count: readings.length,
    schema: [...shapes].sort().join('; '),
  };
}
