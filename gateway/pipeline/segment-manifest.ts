// The segment manifest of format v1 (spec in segment-format.ts): its canonical encoding and hash, and the
// device signature over it.
import type { Address, KeyType, Signer } from '../../chain/index.ts';
import {
  bytesToHex, hexToBytes, keccak256, keyAddress, rlpEncode, secp256k1, verifySignature,
} from '../../chain/index.ts';
import { PipelineError } from './errors.ts';
import type { SegmentSummary } from './segment-codec.ts';
import {
  SEGMENT_FORMAT_VERSION, asBytes, asList, asString, asUint, concat, corrupt, decodeRlp, equalBytes, invalid, stringBytes, uintInput, utf8, wrongVersion,
} from './segment-codec.ts';

/** Hash tags of the manifest and of the digest a device signs (spec in segment-format.ts). */
export const MANIFEST_TAG = new TextEncoder().encode('datagate/segment/v1');
export const SIGN_TAG = new TextEncoder().encode('datagate/segment-manifest/v1');
export const KEY_TYPES: readonly KeyType[] = ['secp256k1', 'p256'];

/** The key that signed a segment: what a buyer needs to check the signature without asking anyone. */
export interface DeviceIdentity {
  readonly address: Address;
  readonly keyType: KeyType;
  /** 65 bytes, 04 || x || y. */
  readonly publicKey: Uint8Array;
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
