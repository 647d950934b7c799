// Segment format, version 1: how a segment's readings become bytes, and the device-signed manifest a buyer
// browses and checks (DESIGN.md "Private transactions and the market", steps 1 and 7). This comment is the
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
import type { Address, KeyType, RlpInput, RlpItem, Signer } from '../../chain/index.ts';
import {
  bytesToHex, hexToBytes, keccak256, keyAddress, rlpDecode, rlpEncode, secp256k1, verifySignature,
} from '../../chain/index.ts';
import type { Reading } from '../../sensors/index.ts';
import { PipelineError } from './errors.ts';

/** The version of the readings and manifest layouts above (and of the envelope that carries them). */
export const SEGMENT_FORMAT_VERSION = 1;
const MANIFEST_TAG = new TextEncoder().encode('datagate/segment/v1');
const SIGN_TAG = new TextEncoder().encode('datagate/segment-manifest/v1');
const KEY_TYPES: readonly KeyType[] = ['secp256k1', 'p256'];

/** The key that signed a segment: what a buyer needs to check the signature without asking anyone. */
export interface DeviceIdentity {
  readonly address: Address;
  readonly keyType: KeyType;
  /** 65 bytes, 04 || x || y. */
  readonly publicKey: Uint8Array;
}

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

export interface SegmentManifest extends SegmentSummary {
  readonly version: 1;
  readonly merkleRoot: Uint8Array;
  readonly keyCommitment: Uint8Array;
  readonly device: DeviceIdentity;
}

export interface SignedManifest extends SegmentManifest {
  /** secp256k1: 65 bytes r || s || recid; p256: 64 bytes r || s. */
  readonly signature: Uint8Array;
}

/** A segment's readings as bytes (`bytes`, the plaintext) and its Merkle leaves (one per reading). */
export interface EncodedReadings {
  readonly stream: string;
  readonly leaves: readonly Uint8Array[];
  readonly bytes: Uint8Array;
}

// ---- errors and small codecs ---------------------------------------------------------------------------

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function corrupt(what: string, fields: Record<string, unknown> = {}): PipelineError {
  return new PipelineError('SEGMENT_CORRUPT', `${what}: the bytes are damaged or not a datagate segment (format v1)`, fields);
}

/** Readings and manifests travel inside a versioned envelope, so another version in here is damage, not news. */
function wrongVersion(what: string, version: number): PipelineError {
  return corrupt(`${what} has format version ${version} inside a version 1 segment`, { version });
}

function invalid(argument: string, message: string, fields: Record<string, unknown> = {}): PipelineError {
  return new PipelineError('PIPELINE_INVALID_INPUT', `${argument}: ${message}`, { argument, ...fields });
}

/** UTF-8 of `s`, refusing strings with lone surrogates (they cannot round-trip). */
function stringBytes(s: unknown, argument: string, fields: Record<string, unknown> = {}): Uint8Array {
  if (typeof s !== 'string') throw invalid(argument, `must be a string, got ${typeof s}`, fields);
  const bytes = utf8.encode(s);
  if (fromUtf8.decode(bytes) !== s) throw invalid(argument, 'has a lone UTF-16 surrogate, which UTF-8 cannot carry', fields);
  return bytes;
}

function uintInput(n: unknown, argument: string, fields: Record<string, unknown> = {}): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalid(argument, `must be an integer in [0, 2^53 - 1], got ${String(n)}`, fields);
  }
  return n;
}

function floatBytes(x: unknown, argument: string, fields: Record<string, unknown> = {}): Uint8Array {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(argument, `must be a finite number, got ${String(x)}`, fields);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, x, false);
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** True when `a` and `b` hold the same bytes (not constant-time: for public values such as hashes). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function decodeRlp(bytes: Uint8Array, what: string): RlpItem {
  if (bytes.length === 0) throw corrupt(`${what} is empty`);
  try {
    return rlpDecode(bytes);
  } catch (err) {
    throw corrupt(`${what} is not valid RLP (${(err as Error).message})`);
  }
}

function asList(item: RlpItem | undefined, what: string, length?: number): RlpItem[] {
  if (!Array.isArray(item)) throw corrupt(`${what} must be a list`);
  if (length !== undefined && item.length !== length) throw corrupt(`${what} must have ${length} items, has ${item.length}`);
  return item;
}

function asBytes(item: RlpItem | undefined, what: string, length?: number): Uint8Array {
  if (!(item instanceof Uint8Array)) throw corrupt(`${what} must be a byte string`);
  if (length !== undefined && item.length !== length) throw corrupt(`${what} must be ${length} bytes, is ${item.length}`);
  return item;
}

function asUint(item: RlpItem | undefined, what: string): number {
  const b = asBytes(item, what);
  if (b.length > 7 || (b.length > 0 && b[0] === 0)) throw corrupt(`${what} is not a canonical integer below 2^53`);
  let n = 0;
  for (let i = 0; i < b.length; i++) n = n * 256 + b[i]!;
  if (n > Number.MAX_SAFE_INTEGER) throw corrupt(`${what} is above 2^53 - 1`);
  return n;
}

function asFloat(item: RlpItem | undefined, what: string): number {
  const b = asBytes(item, what, 8);
  const x = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false);
  if (!Number.isFinite(x)) throw corrupt(`${what} is not a finite number`);
  return x;
}

function asString(item: RlpItem | undefined, what: string): string {
  const b = asBytes(item, what);
  try {
    return fromUtf8.decode(b);
  } catch {
    throw corrupt(`${what} is not valid UTF-8`);
  }
}

/** [] -> undefined, [x] -> x. */
function asOptional(item: RlpItem | undefined, what: string): RlpItem | undefined {
  const list = asList(item, what);
  if (list.length > 1) throw corrupt(`${what} must have 0 or 1 items, has ${list.length}`);
  return list[0];
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

// ---- manifest ------------------------------------------------------------------------------------------

const ADDRESS = /^0x[0-9a-f]{40}$/;

/** The manifest as RLP (see the top of this file). Throws PIPELINE_INVALID_INPUT for a malformed manifest. */
export function encodeManifest(m: SegmentManifest): Uint8Array {
  if (m.version !== SEGMENT_FORMAT_VERSION) throw invalid('manifest.version', 'must be 1');
  const n = (key: 'firstSeq' | 'lastSeq' | 'firstTs' | 'lastTs' | 'count'): number => uintInput(m[key], `manifest.${key}`);
  const [firstSeq, lastSeq, firstTs, lastTs, count] = [n('firstSeq'), n('lastSeq'), n('firstTs'), n('lastTs'), n('count')];
  if (firstSeq > lastSeq || firstTs > lastTs || count < 1 || count > lastSeq - firstSeq + 1) {
    throw invalid('manifest', 'needs firstSeq <= lastSeq, firstTs <= lastTs and 1 <= count <= lastSeq - firstSeq + 1');
  }
  const hash32 = (b: unknown, argument: string): Uint8Array => {
    if (!(b instanceof Uint8Array) || b.length !== 32) throw invalid(argument, 'must be 32 bytes');
    return b;
  };
  const d = m.device;
  if (typeof d !== 'object' || d === null) throw invalid('manifest.device', 'must be { address, keyType, publicKey }');
  if (typeof d.address !== 'string' || !ADDRESS.test(d.address)) throw invalid('manifest.device.address', 'must be a lowercase 0x-prefixed 20-byte hex address');
  if (!KEY_TYPES.includes(d.keyType)) throw invalid('manifest.device.keyType', `must be one of ${KEY_TYPES.join(', ')}`);
  if (!(d.publicKey instanceof Uint8Array) || d.publicKey.length !== 65 || d.publicKey[0] !== 4) {
    throw invalid('manifest.device.publicKey', 'must be 65 bytes, uncompressed (04 || x || y)');
  }
  return rlpEncode([
    SEGMENT_FORMAT_VERSION, stringBytes(m.stream, 'manifest.stream'), firstSeq, lastSeq, firstTs, lastTs, count,
    stringBytes(m.schema, 'manifest.schema'), hash32(m.merkleRoot, 'manifest.merkleRoot'),
    hash32(m.keyCommitment, 'manifest.keyCommitment'), [hexToBytes(d.address), utf8.encode(d.keyType), d.publicKey],
  ]);
}

/** Decode manifest RLP strictly (only the canonical encoding). Throws SEGMENT_CORRUPT. */
export function decodeManifest(bytes: Uint8Array): SegmentManifest {
  const f = asList(decodeRlp(bytes, 'manifest'), 'manifest');
  const version = asUint(f[0], 'manifest version');
  if (version !== SEGMENT_FORMAT_VERSION) throw wrongVersion('manifest', version);
  if (f.length !== 11) throw corrupt(`manifest must have 11 items, has ${f.length}`);
  const [firstSeq, lastSeq, firstTs, lastTs, count] = [2, 3, 4, 5, 6].map((i) => asUint(f[i], `manifest item ${i}`)) as [number, number, number, number, number];
  if (firstSeq > lastSeq || firstTs > lastTs || count < 1 || count > lastSeq - firstSeq + 1) throw corrupt('manifest ranges are inconsistent');
  const dev = asList(f[10], 'manifest device', 3);
  const keyType = asString(dev[1], 'manifest device keyType') as KeyType;
  if (!KEY_TYPES.includes(keyType)) throw corrupt('manifest device keyType is unknown', { keyType });
  const publicKey = Uint8Array.from(asBytes(dev[2], 'manifest device publicKey', 65));
  if (publicKey[0] !== 4) throw corrupt('manifest device publicKey is not uncompressed (04 || x || y)');
  const m: SegmentManifest = {
    version: SEGMENT_FORMAT_VERSION,
    stream: asString(f[1], 'manifest stream'),
    firstSeq, lastSeq, firstTs, lastTs, count,
    schema: asString(f[7], 'manifest schema'),
    merkleRoot: Uint8Array.from(asBytes(f[8], 'manifest merkleRoot', 32)),
    keyCommitment: Uint8Array.from(asBytes(f[9], 'manifest keyCommitment', 32)),
    device: { address: bytesToHex(asBytes(dev[0], 'manifest device address', 20)), keyType, publicKey },
  };
  if (!equalBytes(encodeManifest(m), bytes)) throw corrupt('manifest is not in canonical form');
  return m;
}

/** keccak256('datagate/segment/v1' || encodeManifest(m)): the segment's id, and the AAD of its ciphertext. */
export function manifestHash(m: SegmentManifest): Uint8Array {
  return keccak256(concat(MANIFEST_TAG, encodeManifest(m)));
}

/** The digest a device signs for a manifest: keccak256('datagate/segment-manifest/v1' || manifestHash). */
export function manifestDigest(m: SegmentManifest): Uint8Array {
  return keccak256(concat(SIGN_TAG, manifestHash(m)));
}

/** The identity of `signer` as a manifest records it. */
export function deviceOf(signer: Pick<Signer, 'address' | 'keyType' | 'publicKey'>): DeviceIdentity {
  return { address: signer.address.toLowerCase(), keyType: signer.keyType, publicKey: Uint8Array.from(signer.publicKey) };
}

function stripManifest(m: SegmentManifest): SegmentManifest {
  const { version, stream, firstSeq, lastSeq, firstTs, lastTs, count, schema, merkleRoot, keyCommitment, device } = m;
  return { version, stream, firstSeq, lastSeq, firstTs, lastTs, count, schema, merkleRoot, keyCommitment, device };
}

/**
 * Sign `manifest` (any `signature` it carries is ignored) with `signer`, whose identity must be
 * manifest.device, and check the result. A secp256k1 signer returning 64 bytes gets its recid found by
 * recovery. Throws PIPELINE_INVALID_INPUT for a mismatched signer, SEGMENT_BAD_SIGNATURE when the signer
 * returned a signature that does not verify (a broken signer: do not publish the segment).
 */
export async function signManifest(manifest: SegmentManifest, signer: Signer): Promise<SignedManifest> {
  const m = stripManifest(manifest);
  const digest = manifestDigest(m);
  const d = m.device;
  if (signer.keyType !== d.keyType || signer.address.toLowerCase() !== d.address || !equalBytes(signer.publicKey, d.publicKey)) {
    throw invalid('signer', 'is not the key named in manifest.device', { signer: signer.address, device: d.address });
  }
  let signature: Uint8Array = Uint8Array.from(await signer.sign(digest, 'message'));
  if (d.keyType === 'secp256k1' && signature.length === 64) {
    const recid = ([0, 1] as const).find((id) => {
      try {
        return equalBytes(secp256k1.recoverPublicKey(digest, signature, id), d.publicKey);
      } catch {
        return false;
      }
    });
    if (recid !== undefined) signature = concat(signature, Uint8Array.of(recid));
  }
  const signed: SignedManifest = { ...m, signature };
  try {
    verifyManifest(signed);
  } catch (err) {
    throw new PipelineError('SEGMENT_BAD_SIGNATURE', `signer ${d.address} returned a signature that does not verify; check the key and the signer`, { address: d.address }, { cause: err });
  }
  return signed;
}

function badSignature(reason: string, address: string): PipelineError {
  return new PipelineError('SEGMENT_BAD_SIGNATURE', `segment manifest signature check failed (${reason}): do not trust or pay for this segment`, { reason, address });
}

/**
 * Check a signed manifest: device.address is the address of device.publicKey, and signature is that key's
 * signature of manifestDigest (secp256k1: 65 bytes with a recid that recovers the key; p256: 64 bytes).
 * Returns nothing; throws SEGMENT_BAD_SIGNATURE with `fields.reason`.
 */
export function verifyManifest(signed: SignedManifest): void {
  const { device, signature } = signed;
  let address: string;
  try {
    address = keyAddress(device.publicKey);
  } catch {
    throw badSignature('public key', device.address);
  }
  if (address !== device.address) throw badSignature('address is not the public key\'s', device.address);
  const expected = device.keyType === 'secp256k1' ? 65 : 64;
  if (!(signature instanceof Uint8Array) || signature.length !== expected) throw badSignature(`signature must be ${expected} bytes`, address);
  const digest = manifestDigest(signed);
  const sig64 = signature.subarray(0, 64);
  if (!verifySignature(device.keyType, digest, sig64, device.publicKey)) throw badSignature('signature', address);
  if (device.keyType === 'secp256k1') {
    const recid = signature[64];
    let recovered: Uint8Array | null = null;
    try {
      if (recid === 0 || recid === 1) recovered = secp256k1.recoverPublicKey(digest, sig64, recid);
    } catch {
      recovered = null;
    }
    if (recovered === null || !equalBytes(recovered, device.publicKey)) throw badSignature('recovery id', address);
  }
}

/** RLP [ manifest bytes, signature ]. */
export function encodeSignedManifest(s: SignedManifest): Uint8Array {
  if (!(s.signature instanceof Uint8Array)) throw invalid('manifest.signature', 'must be a Uint8Array');
  return rlpEncode([encodeManifest(s), s.signature]);
}

/** Decode a signed manifest (format only: the signature is NOT checked, see verifyManifest). Throws SEGMENT_CORRUPT. */
export function decodeSignedManifest(bytes: Uint8Array): SignedManifest {
  const [manifest, signature] = asList(decodeRlp(bytes, 'signed manifest'), 'signed manifest', 2);
  const m = decodeManifest(asBytes(manifest, 'signed manifest manifest'));
  const sig = asBytes(signature, 'signed manifest signature');
  if (sig.length !== 64 && sig.length !== 65) throw corrupt('signed manifest signature must be 64 or 65 bytes');
  return { ...m, signature: Uint8Array.from(sig) };
}
