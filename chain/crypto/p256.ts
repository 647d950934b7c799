// P-256 (secp256r1) consensus signatures, for validators whose keys live in a TPM or a secure element: that
// hardware holds P-256 keys and cannot hold secp256k1 ones.
//
// Convention. A P-256 consensus signature is ECDSA over P-256 with SHA-256 applied to the 32-byte consensus
// digest: the signed message is the digest bytes, and the curve hashes them once more with SHA-256. That is
// what a TPM's ECDSA-SHA256 scheme and PKCS#11 CKM_ECDSA_SHA256 compute when handed the digest as data; a
// PKCS#11 token without CKM_ECDSA_SHA256 signs sha256(digest) with plain CKM_ECDSA and gets the same
// signature. (secp256k1 consensus signatures sign the digest itself, with no extra hash.)
// Signatures are 64 bytes r || s (IEEE P1363). Signers normalise them to low-s (s <= n/2, else s := n - s);
// verification accepts only low-s, so a signature has exactly one valid form and cannot be malleated.
//
// Verification goes through node:crypto (OpenSSL) when it passes a known-answer test at start-up, with
// @noble/curves as the fallback and the reference; DATAGATE_CRYPTO=noble forces noble, as it does for
// secp256k1. Both run the same input checks first and give the same verdict for every input (tested on
// random and malformed inputs and on Wycheproof). Signing here is noble's, for tests and software keys: noble
// aims at constant time, but JavaScript engines give no hard timing guarantee, so real validator keys stay in
// their hardware.
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { p256 as curve } from '@noble/curves/nist.js';
import type { Address } from '../types.ts';
import { publicKeyToAddress } from './address.ts';
import { checkDigest, hasPublicKeyEncoding, invalidInput, splitSignature } from './backend.ts';
import { bytesToBigint, bytesToHex } from './bytes.ts';
import { secp256k1 } from './secp256k1.ts';

/** Order n of the P-256 group. Valid r, s and private keys lie in [1, n-1]. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
/** floor(n / 2). A P-256 consensus signature must have s <= P256_HALF_N. */
export const P256_HALF_N = P256_N >> 1n;

/**
 * One P-256 ECDSA-SHA256 verifier. `verify(message, sig64, publicKey)` is true iff `sig64` (r || s) is a
 * valid low-s signature of `message` (any length; hashed with SHA-256) by `publicKey` (SEC1: 33 bytes 02/03
 * or 65 bytes 04). It returns false, never throws, for anything else: wrong lengths, r or s zero or >= n,
 * s > n/2, a key that is not a point on the curve, values that are not Uint8Arrays.
 * Consensus code calls p256Verify, which also requires the 32-byte digest.
 */
export interface P256Backend {
  readonly name: 'native' | 'noble';
  verify(message: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array): boolean;
}

/** The checks both backends run before any library sees the bytes: false means reject. */
function inputsUsable(message: unknown, sig64: unknown, publicKey: unknown): boolean {
  if (!(message instanceof Uint8Array) || !(sig64 instanceof Uint8Array) || sig64.length !== 64) return false;
  if (!hasPublicKeyEncoding(publicKey)) return false;
  const { r, s } = splitSignature(sig64);
  // High-s is refused here, not left to each library's option, so the rule cannot drift between backends.
  return r > 0n && r < P256_N && s > 0n && s <= P256_HALF_N;
}

// prehash: true is the convention above (SHA-256 over the message); lowS: true signs and verifies low-s only.
const OPTS = { prehash: true, lowS: true, format: 'compact' } as const;

/** The pure-JS backend on @noble/curves (audited). Always available. */
export const nobleP256: P256Backend = {
  name: 'noble',
  verify(message, sig64, publicKey) {
    if (!inputsUsable(message, sig64, publicKey)) return false;
    try {
      return curve.verify(sig64, message, publicKey, OPTS);
    } catch {
      return false;
    }
  },
};

/** Validators are few: KeyObjects of this many public keys are kept, least recently used dropped first. */
const MAX_CACHED_KEYS = 256;
const keyObjects = new Map<string, KeyObject>();

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * node:crypto's key for a SEC1 public key, or null when it is not a P-256 point. The point is parsed (and a
 * compressed one decompressed) by noble, so both backends accept exactly the same keys.
 */
function keyObjectOf(publicKey: Uint8Array): KeyObject | null {
  const id = bytesToHex(publicKey);
  const cached = keyObjects.get(id);
  if (cached !== undefined) {
    keyObjects.delete(id);
    keyObjects.set(id, cached);
    return cached;
  }
  let key: KeyObject;
  try {
    const xy = curve.Point.fromBytes(publicKey).toBytes(false);
    const jwk = { kty: 'EC', crv: 'P-256', x: base64url(xy.subarray(1, 33)), y: base64url(xy.subarray(33, 65)) };
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return null; // not cached: only keys that verify something are worth a slot
  }
  if (keyObjects.size >= MAX_CACHED_KEYS) {
    const oldest = keyObjects.keys().next().value;
    if (oldest !== undefined) keyObjects.delete(oldest);
  }
  keyObjects.set(id, key);
  return key;
}

const nativeBackend: P256Backend = {
  name: 'native',
  verify(message, sig64, publicKey) {
    if (!inputsUsable(message, sig64, publicKey)) return false;
    const key = keyObjectOf(publicKey);
    if (key === null) return false;
    try {
      return cryptoVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig64);
    } catch {
      return false;
    }
  },
};

/** Known answer: private key 1 (public key G) signed 32 zero bytes under the convention above. */
const G_HEX = '046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5';
const KAT_SIG_HEX = '75f1cbbc71a8744809d260069460a5ac3b30722db2d47924c83ee9b28d6c43413e494fdd3e9433a34e87d466248bbbd41f7688864cbf46bb6876718f370fd939';

let nativeLoaded: P256Backend | null | undefined;
let nativeError: unknown;

/**
 * The node:crypto backend, or null when this Node's OpenSSL fails the known-answer test (no P-256, a
 * crypto-less build). Tested once; later calls return the same object. `nativeP256LoadError()` says why.
 */
export function loadNativeP256(): P256Backend | null {
  if (nativeLoaded !== undefined) return nativeLoaded;
  try {
    const g = Buffer.from(G_HEX, 'hex');
    const sig = Buffer.from(KAT_SIG_HEX, 'hex');
    const digest = new Uint8Array(32);
    if (!nativeBackend.verify(digest, sig, g)) throw new Error('node:crypto P-256 self-test: a known-good signature was rejected');
    digest[31] = 1;
    if (nativeBackend.verify(digest, sig, g)) throw new Error('node:crypto P-256 self-test: a signature of another digest was accepted');
    nativeLoaded = nativeBackend;
  } catch (err) {
    nativeError = err;
    nativeLoaded = null;
  }
  return nativeLoaded;
}

/** Why `loadNativeP256()` returned null (undefined if it loaded or was not tried). */
export function nativeP256LoadError(): unknown {
  return nativeError;
}

/**
 * The P-256 backend for a DATAGATE_CRYPTO value, read as secp256k1.ts reads it: undefined, '' or `auto`
 * pick node:crypto when it passes its self-test, `noble` forces noble, `native` demands node:crypto.
 * Throws an Error naming the variable for an unknown value or an unavailable `native`.
 */
export function chooseP256Backend(setting: string | undefined): P256Backend {
  const pref = setting === undefined || setting === '' ? 'auto' : setting.toLowerCase();
  switch (pref) {
    case 'noble':
      return nobleP256;
    case 'native': {
      const native = loadNativeP256();
      if (native === null) {
        throw new Error('DATAGATE_CRYPTO=native but node:crypto failed its P-256 self-test; unset DATAGATE_CRYPTO to use noble', {
          cause: nativeP256LoadError(),
        });
      }
      return native;
    }
    case 'auto':
      return loadNativeP256() ?? nobleP256;
    default:
      throw new Error(`DATAGATE_CRYPTO must be one of auto, native, noble; got ${JSON.stringify(setting)}`);
  }
}

/** The process-wide P-256 backend (DATAGATE_CRYPTO is read once, at import). */
export const p256Backend: P256Backend = chooseP256Backend(process.env['DATAGATE_CRYPTO']);

/** Which backend `p256Backend` is, for start-up logs and benchmark labels. */
export function p256BackendName(): 'native' | 'noble' {
  return p256Backend.name;
}

/**
 * True iff `sig64` (64 bytes r || s, low-s) is a P-256 consensus signature of the 32-byte `digest` by
 * `publicKey` (33 or 65 bytes SEC1), i.e. ECDSA-P256 over sha256(digest). Never throws. Uses the process
 * backend unless one is passed.
 */
export function p256Verify(digest: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array, backend: P256Backend = p256Backend): boolean {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) return false;
  return backend.verify(digest, sig64, publicKey);
}

/** Throws CRYPTO_INVALID_INPUT unless `privateKey` is 32 bytes encoding a number in [1, n-1]. */
function checkP256PrivateKey(privateKey: unknown): asserts privateKey is Uint8Array {
  const k = privateKey instanceof Uint8Array && privateKey.length === 32 ? bytesToBigint(privateKey) : 0n;
  if (k === 0n || k >= P256_N) {
    throw invalidInput('P-256 private key must be 32 bytes encoding a number in [1, n-1]', { argument: 'privateKey' });
  }
}

/**
 * The P-256 consensus signature (64 bytes r || s, low-s, deterministic per RFC 6979) of the 32-byte `digest`
 * with a software key. Throws CRYPTO_INVALID_INPUT for a digest that is not 32 bytes or a bad private key.
 */
export function p256Sign(digest: Uint8Array, privateKey: Uint8Array): Uint8Array {
  checkDigest(digest);
  checkP256PrivateKey(privateKey);
  return curve.sign(digest, privateKey, OPTS);
}

/** Public key of a P-256 private key: 65 bytes uncompressed by default, 33 when `compressed`. */
export function p256PublicKey(privateKey: Uint8Array, compressed = false): Uint8Array {
  checkP256PrivateKey(privateKey);
  return curve.getPublicKey(privateKey, compressed);
}

/** The curves a validator key can be on. */
export type KeyType = 'secp256k1' | 'p256';

/**
 * True iff `sig64` (r || s, low-s) is a consensus signature of the 32-byte `digest` by `publicKey` on curve
 * `keyType`. secp256k1 verifies the digest itself (no extra hash), through the process secp256k1 backend;
 * P-256 verifies ECDSA over sha256(digest), see the convention above. Never throws for bad signature bytes;
 * throws CRYPTO_INVALID_INPUT for a key type that is neither (a broken validator set, not a bad signature).
 */
export function verifySignature(keyType: KeyType, digest: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array): boolean {
  switch (keyType) {
    case 'secp256k1':
      return secp256k1.verify(digest, sig64, publicKey);
    case 'p256':
      return p256Verify(digest, sig64, publicKey);
    default:
      throw invalidInput(`unknown key type ${JSON.stringify(keyType)}; use 'secp256k1' or 'p256'`, { argument: 'keyType' });
  }
}

/**
 * Identity of any validator key: lowercase 0x hex of keccak256(x || y)[12:] of its 65-byte uncompressed
 * form (04 || x || y). For secp256k1 that is the key's Ethereum address; P-256 keys get the same derivation
 * over their coordinates. The address does not say which curve the key is on, so a validator set stores the
 * key type next to it. Checks the encoding only, not that the point is on a curve (that is checked when a
 * signature is verified). Throws CRYPTO_INVALID_INPUT for anything but 65 bytes starting 04.
 */
export function keyAddress(publicKey65: Uint8Array): Address {
  return publicKeyToAddress(publicKey65);
}
