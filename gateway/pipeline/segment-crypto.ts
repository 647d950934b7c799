// Sealing and opening segments: readings -> one self-contained, encrypted, device-signed byte string (the
// envelope the content store holds), and back with every check a buyer makes (docs/architecture.md "Segment format").
// Also the gateway's at-rest protection of segment keys: each key wrapped under a master key file.
//
// Envelope, version 1 (all integers big-endian):
//   offset  size  field
//   0       4     magic 'DGSG' (44 47 53 47)
//   4       1     version = 1
//   5       24    nonce: XChaCha20-Poly1305 nonce, random per segment
//   29      4     M: length of the signed manifest, 1 <= M <= 65536
//   33      M     signed manifest (segment-format.ts)
//   33 + M  rest  ciphertext || 16-byte Poly1305 tag, of the readings bytes (segment-format.ts), under the
//                 segment key, with AAD = manifestHash (so the ciphertext cannot be moved under another manifest)
// The segment key is 32 random bytes (node:crypto), fresh per segment. The manifest carries keccak256(key): a
// delivered key can be checked by anyone (the escrow agent too) without the ciphertext, and a buyer can tell a
// wrong key from tampered data. (Poly1305 alone is not key-committing; the commitment is what binds one key.)
//
// Wrapped segment key, version 1: version = 1 (1 byte) || nonce (24) || XChaCha20-Poly1305 of the 32-byte key
// (48 with the tag), under the 32-byte master key, AAD = 'datagate/segment-key/v1' || segmentId (UTF-8 when a
// string); 73 bytes. The master key file holds exactly the 32 key bytes, mode 0600.
//
// Secrets and timing. @noble/ciphers' ChaCha20-Poly1305 is written to run in constant time and compares tags
// in constant time, but a JavaScript engine gives no hard timing guarantee. keccak256 of the key (the
// commitment) runs in @noble/hashes, also JS. Commitment and Merkle comparisons are not constant-time; they
// compare public values. Keys are zeroed here where this module owns them (a key that failed to seal, the
// master key file's read buffer); keys handed to the caller (sealSegment's key, unwrapKey's result,
// loadOrCreateMasterKey's result) are the caller's to zero with key.fill(0) once done. JavaScript cannot
// guarantee erasure: the engine may have copied a buffer, and decrypted readings live on as numbers.
import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { bytesToHex, keccak256, merkleRoot } from '../../chain/index.ts';
import type { Signer } from '../../chain/index.ts';
import { writeFileAtomic } from '../../device/index.ts';
import type { Reading } from '../../sensors/index.ts';
import { PipelineError } from './errors.ts';
import type { SignedManifest } from './segment-format.ts';
import {
  ReadingsBuilder, rlpLength, decodeLeaves, decodeSignedManifest, deviceOf, encodeSignedManifest, equalBytes, manifestHash,
  signManifest, splitReadings, summarizeReadings, verifyManifest, SEGMENT_FORMAT_VERSION,
} from './segment-format.ts';
import type { BuiltReadings } from './segment-format.ts';

const MAGIC = Uint8Array.of(0x44, 0x47, 0x53, 0x47); // 'DGSG'
export const ENVELOPE_VERSION = 1;
export const MAX_MANIFEST_BYTES = 65536;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const HEADER_BYTES = 4 + 1 + NONCE_BYTES + 4;
const WRAP_VERSION = 1;
const WRAPPED_KEY_BYTES = 1 + NONCE_BYTES + 32 + TAG_BYTES;
const WRAP_TAG = new TextEncoder().encode('datagate/segment-key/v1');

/** The parts of an envelope. */
export interface EnvelopeParts {
  readonly nonce: Uint8Array;
  readonly manifest: SignedManifest;
  /** Ciphertext with its 16-byte tag appended. */
  readonly ciphertext: Uint8Array;
}

/** A freshly sealed segment: what to store (`envelope`), list (`manifest`) and wrap, then sell (`key`). */
export interface SealedSegment {
  readonly manifest: SignedManifest;
  /** The 32-byte segment key. The caller owns it: wrap it (wrapKey), then zero it. */
  readonly key: Uint8Array;
  /** The byte string the content store holds. */
  readonly envelope: Uint8Array;
}

function invalid(argument: string, message: string): PipelineError {
  return new PipelineError('PIPELINE_INVALID_INPUT', `${argument}: ${message}`, { argument });
}

function corrupt(what: string): PipelineError {
  return new PipelineError('SEGMENT_CORRUPT', `segment envelope ${what}: the stored object is damaged or not a datagate segment`, { what });
}

function random(length: number): Uint8Array {
  const out = new Uint8Array(length);
  randomFillSync(out);
  return out;
}

/**
 * The signed manifest's length with an empty stream and schema and every number at its largest (2^53 - 1),
 * for the longer key type and signature, plus 2 bytes for each of the three headers (manifest list, manifest
 * as a byte string, signed list) that can grow with a longer stream and schema. Measured by encoding such a
 * manifest, so it follows the format.
 */
const MANIFEST_FIXED_MAX = (() => {
  const max = Number.MAX_SAFE_INTEGER;
  const zero32 = new Uint8Array(32);
  const manifest: SignedManifest = {
    version: SEGMENT_FORMAT_VERSION, stream: '', firstSeq: 0, lastSeq: max, firstTs: 0, lastTs: max, count: max, schema: '',
    merkleRoot: zero32, keyCommitment: zero32, device: { address: `0x${'ff'.repeat(20)}`, keyType: 'secp256k1', publicKey: new Uint8Array(65).fill(4) },
    signature: new Uint8Array(65),
  };
  // firstSeq/firstTs at their largest too: encodeManifest checks first <= last, so measure them separately.
  const widest = { ...manifest, firstSeq: max, firstTs: max, count: 1 };
  return Math.max(encodeSignedManifest(manifest).length, encodeSignedManifest(widest).length) + 3 * 2;
})();

/**
 * An upper bound of the envelope's length for readings bytes of `readingsLength`, a stream name of
 * `streamLength` UTF-8 bytes and a schema string of `schemaLength`: what the segmenter checks before it adds a
 * reading, so that a segment cut at 256 KiB fits one IPFS block (one raw block per segment in the content
 * store). Over by a few bytes at most.
 */
export function envelopeLengthBound(readingsLength: number, streamLength: number, schemaLength: number): number {
  return HEADER_BYTES + MANIFEST_FIXED_MAX + rlpLength(streamLength) + rlpLength(schemaLength) + readingsLength + TAG_BYTES;
}

/** The envelope bytes of `parts` (see the top of this file). Throws PIPELINE_INVALID_INPUT. */
export function encodeEnvelope(parts: EnvelopeParts): Uint8Array {
  const { nonce, ciphertext } = parts;
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw invalid('nonce', `must be ${NONCE_BYTES} bytes`);
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < TAG_BYTES) throw invalid('ciphertext', `must be at least the ${TAG_BYTES}-byte tag`);
  const manifest = encodeSignedManifest(parts.manifest);
  if (manifest.length > MAX_MANIFEST_BYTES) throw invalid('manifest', `encodes to ${manifest.length} bytes, over ${MAX_MANIFEST_BYTES}`);
  const out = new Uint8Array(HEADER_BYTES + manifest.length + ciphertext.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = ENVELOPE_VERSION;
  out.set(nonce, 5);
  view.setUint32(5 + NONCE_BYTES, manifest.length, false);
  out.set(manifest, HEADER_BYTES);
  out.set(ciphertext, HEADER_BYTES + manifest.length);
  return out;
}

/** Split an envelope into its parts, checking the format only (no signature, no key). Throws SEGMENT_CORRUPT. */
export function decodeEnvelope(envelope: Uint8Array): EnvelopeParts {
  if (!(envelope instanceof Uint8Array)) throw invalid('envelope', 'must be a Uint8Array');
  if (envelope.length < HEADER_BYTES) throw corrupt(`is ${envelope.length} bytes, shorter than its ${HEADER_BYTES}-byte header`);
  if (!equalBytes(envelope.subarray(0, 4), MAGIC)) throw corrupt('does not start with DGSG');
  if (envelope[4] !== ENVELOPE_VERSION) {
    throw new PipelineError('SEGMENT_UNSUPPORTED_VERSION', `segment envelope has version ${envelope[4]}; this datagate reads version 1, upgrade it`, { version: envelope[4] });
  }
  const length = new DataView(envelope.buffer, envelope.byteOffset, envelope.length).getUint32(5 + NONCE_BYTES, false);
  if (length === 0 || length > MAX_MANIFEST_BYTES) throw corrupt(`declares a manifest of ${length} bytes`);
  if (envelope.length < HEADER_BYTES + length + TAG_BYTES) throw corrupt('is truncated');
  return {
    nonce: envelope.slice(5, 5 + NONCE_BYTES),
    manifest: decodeSignedManifest(envelope.subarray(HEADER_BYTES, HEADER_BYTES + length)),
    ciphertext: envelope.subarray(HEADER_BYTES + length),
  };
}

/**
 * Seal `readings` (non-empty, all of `stream`, seq strictly increasing) into a segment signed by `signer`
 * (purpose 'message'). Returns the signed manifest, the fresh 32-byte key (the caller's to wrap and zero)
 * and the envelope. Throws PIPELINE_INVALID_INPUT for bad readings or signer, SEGMENT_BAD_SIGNATURE when the
 * signer returns a signature that does not verify.
 */
export async function sealSegment(readings: readonly Reading[], stream: string, signer: Signer): Promise<SealedSegment> {
  if (typeof stream !== 'string') throw invalid('stream', 'must be a string');
  if (!Array.isArray(readings) || readings.length === 0) throw invalid('readings', 'must be a non-empty array');
  const first = readings[0]!;
  if (first.stream !== stream) throw invalid('readings', `are of stream ${JSON.stringify(first.stream)}, not ${JSON.stringify(stream)}`);
  const builder = new ReadingsBuilder(stream);
  for (const r of readings) builder.add(r);
  return sealReadings(builder.finish(), signer);
}

/**
 * Seal readings already built (ReadingsBuilder.finish()): what the pipeline does, so closing a segment
 * costs one signature and one encryption, not a pass over its readings. Same result as sealSegment.
 */
export async function sealReadings(built: BuiltReadings, signer: Signer): Promise<SealedSegment> {
  const key = random(32);
  try {
    const manifest = await signManifest(
      { version: SEGMENT_FORMAT_VERSION, ...built.summary, merkleRoot: built.merkleRoot, keyCommitment: keccak256(key), device: deviceOf(signer) },
      signer,
    );
    const nonce = random(NONCE_BYTES);
    const ciphertext = xchacha20poly1305(key, nonce, manifestHash(manifest)).encrypt(built.bytes);
    return { manifest, key, envelope: encodeEnvelope({ nonce, manifest, ciphertext }) };
  } catch (err) {
    key.fill(0);
    throw err;
  }
}

/**
 * Open a segment with its key and return its readings, after these checks in this order, each with its code:
 * envelope format (SEGMENT_CORRUPT, or SEGMENT_UNSUPPORTED_VERSION), keccak256(key) against the manifest's
 * commitment (SEGMENT_WRONG_KEY), the AEAD tag (SEGMENT_TAMPERED), the Merkle root of the decrypted readings
 * (SEGMENT_MERKLE_MISMATCH), the device signature (SEGMENT_BAD_SIGNATURE), and the readings against the
 * manifest's stream, count, seq, ts and schema (SEGMENT_CORRUPT). `key` is neither kept nor zeroed.
 */
export function openSegment(envelope: Uint8Array, key: Uint8Array): Reading[] {
  const { nonce, manifest, ciphertext } = decodeEnvelope(envelope);
  if (!(key instanceof Uint8Array) || key.length !== 32 || !equalBytes(keccak256(key), manifest.keyCommitment)) {
    throw new PipelineError('SEGMENT_WRONG_KEY', 'the key does not match the segment\'s key commitment: it is not this segment\'s key', {
      commitment: bytesToHex(manifest.keyCommitment),
    });
  }
  let plaintext: Uint8Array;
  try {
    plaintext = xchacha20poly1305(key, nonce, manifestHash(manifest)).decrypt(ciphertext);
  } catch (err) {
    throw new PipelineError('SEGMENT_TAMPERED', 'segment ciphertext fails authentication although the key is right: the envelope was altered', {}, { cause: err });
  }
  const { stream, leaves } = splitReadings(plaintext);
  const root = merkleRoot(leaves);
  if (!equalBytes(root, manifest.merkleRoot)) {
    throw new PipelineError('SEGMENT_MERKLE_MISMATCH', 'the decrypted readings do not have the Merkle root the manifest states', {
      expected: bytesToHex(manifest.merkleRoot), actual: bytesToHex(root),
    });
  }
  verifyManifest(manifest);
  const readings = decodeLeaves(stream, leaves);
  const summary = summarizeReadings(readings);
  for (const field of ['stream', 'firstSeq', 'lastSeq', 'firstTs', 'lastTs', 'count', 'schema'] as const) {
    if (summary[field] !== manifest[field]) {
      throw new PipelineError('SEGMENT_CORRUPT', `segment readings disagree with the manifest's ${field}`, { field, manifest: manifest[field], readings: summary[field] });
    }
  }
  return readings;
}

/**
 * The signed manifest of an envelope, without the key (what a buyer browses), after checking the envelope
 * format (SEGMENT_CORRUPT) and the device signature (SEGMENT_BAD_SIGNATURE). Says nothing about the
 * ciphertext: only openSegment, with the key, checks that.
 */
export function readManifest(envelope: Uint8Array): SignedManifest {
  const { manifest } = decodeEnvelope(envelope);
  verifyManifest(manifest);
  return manifest;
}

function checkKey(key: unknown, argument: string): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw invalid(argument, 'must be a 32-byte Uint8Array');
}

function wrapAad(segmentId: Uint8Array | string): Uint8Array {
  const id = typeof segmentId === 'string' ? new TextEncoder().encode(segmentId) : segmentId;
  if (!(id instanceof Uint8Array) || id.length === 0) throw invalid('segmentId', 'must be a non-empty string or Uint8Array');
  const aad = new Uint8Array(WRAP_TAG.length + id.length);
  aad.set(WRAP_TAG, 0);
  aad.set(id, WRAP_TAG.length);
  return aad;
}

/**
 * Encrypt a 32-byte segment key under the 32-byte gateway master key for storage, bound to `segmentId` (the
 * pipeline uses the manifest hash): 73 bytes, see the top of this file. Throws PIPELINE_INVALID_INPUT.
 */
export function wrapKey(segmentKey: Uint8Array, masterKey: Uint8Array, segmentId: Uint8Array | string): Uint8Array {
  checkKey(segmentKey, 'segmentKey');
  checkKey(masterKey, 'masterKey');
  const nonce = random(NONCE_BYTES);
  const sealed = xchacha20poly1305(masterKey, nonce, wrapAad(segmentId)).encrypt(segmentKey);
  const out = new Uint8Array(WRAPPED_KEY_BYTES);
  out[0] = WRAP_VERSION;
  out.set(nonce, 1);
  out.set(sealed, 1 + NONCE_BYTES);
  return out;
}

/**
 * The segment key inside `wrapped` (the caller's to zero). Throws KEY_UNWRAP_FAILED for a wrong master key,
 * a wrong segment id or altered bytes, PIPELINE_INVALID_INPUT for a master key that is not 32 bytes.
 */
export function unwrapKey(wrapped: Uint8Array, masterKey: Uint8Array, segmentId: Uint8Array | string): Uint8Array {
  checkKey(masterKey, 'masterKey');
  const aad = wrapAad(segmentId);
  if (!(wrapped instanceof Uint8Array) || wrapped.length !== WRAPPED_KEY_BYTES || wrapped[0] !== WRAP_VERSION) {
    throw new PipelineError('KEY_UNWRAP_FAILED', `a wrapped segment key is ${WRAPPED_KEY_BYTES} bytes starting with version ${WRAP_VERSION}; this one is not`, { reason: 'format' });
  }
  try {
    return xchacha20poly1305(masterKey, wrapped.subarray(1, 1 + NONCE_BYTES), aad).decrypt(wrapped.subarray(1 + NONCE_BYTES));
  } catch (err) {
    throw new PipelineError('KEY_UNWRAP_FAILED', 'the wrapped segment key does not open: another master key, another segment id, or altered bytes', { reason: 'tag' }, { cause: err });
  }
}

/** Read a master key file: a regular file of 32 bytes, not open to group or others. */
async function loadMasterKey(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new PipelineError('MASTER_KEY_CORRUPT', `master key ${path} is not a regular file`, { path });
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      const octal = `0${mode.toString(8)}`;
      throw new PipelineError('MASTER_KEY_INSECURE', `master key file ${path} has mode ${octal}, open to group or others; run chmod 600 ${path}`, { path, mode: octal });
    }
    const buf = await fh.readFile();
    try {
      if (buf.length !== 32) {
        throw new PipelineError('MASTER_KEY_CORRUPT', `master key file ${path} holds ${buf.length} bytes, not 32; restore it from a backup (segment keys wrapped under it cannot be opened without it)`, { path, length: buf.length });
      }
      return Uint8Array.from(buf);
    } finally {
      buf.fill(0);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The gateway master key at `path`: read it, or when the file does not exist create it with 32 random bytes,
 * atomically (a mode 0600 temp file, fsync'd, hard-linked into place so an existing key is never replaced,
 * then the directory fsync'd). Returns the key (the caller's to zero). Throws MASTER_KEY_INSECURE for a file
 * open to group or others, MASTER_KEY_CORRUPT for one that is not 32 bytes.
 */
export async function loadOrCreateMasterKey(path: string): Promise<Uint8Array> {
  if (typeof path !== 'string' || path === '') throw invalid('path', 'must be a non-empty file path');
  try {
    return await loadMasterKey(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = random(32);
  try {
    // exclusive: hard-linked into place, so a key another process created meanwhile is never replaced.
    await writeFileAtomic(path, key, { mode: 0o600, exclusive: true });
  } catch (err) {
    key.fill(0);
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return loadMasterKey(path); // another process created the file first: use its key
  }
  return key;
}
