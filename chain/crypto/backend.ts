// The secp256k1 port: what the ledger needs from an ECDSA implementation, the curve constants, and the
// input checks both implementations run first. Checking here, before either library sees the bytes, is
// what makes the native and pure-JS backends give the same answer for every malformed input instead of
// each library's own mix of exceptions, aborts and lenient parses.
import { ChainError } from '../errors.ts';

/** Order n of the secp256k1 group. Valid r, s and private keys lie in [1, n-1]. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** floor(n / 2). A low-s signature has s <= SECP256K1_HALF_N (EIP-2; libsecp256k1's normal form). */
export const SECP256K1_HALF_N = SECP256K1_N >> 1n;

/** True when `s` is in the lower half of the group order, as Ethereum transactions require. */
export function isLowS(s: bigint): boolean {
  return s > 0n && s <= SECP256K1_HALF_N;
}

/**
 * One secp256k1 ECDSA implementation. All byte arguments are raw big-endian: `digest` is the 32-byte hash
 * that was signed (it is never hashed again), `sig64` is r || s (32 + 32 bytes).
 *
 * Behaviour shared by every backend (tested on the same vectors):
 * - `verify` returns false for anything that is not a valid signature: wrong lengths, r or s zero or >= n,
 *   a public key that is not a point on the curve or uses another encoding than 02/03 (33 bytes) or
 *   04 (65 bytes), and high-s signatures (s > n/2). Rejecting high-s matches libsecp256k1 and Ethereum;
 *   the one valid high-s signature of a message has the low-s twin (r, n - s) that verifies.
 * - `recoverPublicKey` throws ChainError CRYPTO_INVALID_INPUT when no key can be recovered. It accepts a
 *   high-s signature (as libsecp256k1 and Ethereum's ecrecover do); whether high-s is allowed is the
 *   caller's rule (transaction admission rejects it with TX_HIGH_S before recovering).
 * - `sign` is deterministic (RFC 6979) and always returns the low-s form; both backends produce the same bytes.
 */
export interface Secp256k1Backend {
  readonly name: 'native' | 'noble';
  /** The signer's 65-byte uncompressed public key (04 || x || y). Throws CRYPTO_INVALID_INPUT. */
  recoverPublicKey(digest: Uint8Array, sig64: Uint8Array, recid: 0 | 1): Uint8Array;
  /** True iff `sig64` is a valid low-s signature of `digest` by `publicKey` (33 or 65 bytes). Never throws. */
  verify(digest: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array): boolean;
  /** Sign `digest` with a 32-byte private key. Throws CRYPTO_INVALID_INPUT for a key outside [1, n-1]. */
  sign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: 0 | 1 };
  /** Public key of a private key: 65 bytes uncompressed by default, 33 bytes when `compressed`. */
  publicKey(privateKey: Uint8Array, compressed?: boolean): Uint8Array;
}

/** The error every backend raises for input it cannot use; fields name the argument at fault. */
export function invalidInput(message: string, fields: Record<string, unknown> = {}, cause?: unknown): ChainError {
  return new ChainError('CRYPTO_INVALID_INPUT', message, fields, cause === undefined ? undefined : { cause });
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

/** Read a 32-byte big-endian scalar without allocating a string. */
function scalarOf(bytes: Uint8Array, offset: number): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 32);
  return (
    (view.getBigUint64(0) << 192n) | (view.getBigUint64(8) << 128n) | (view.getBigUint64(16) << 64n) | view.getBigUint64(24)
  );
}

/** True when a 32-byte scalar at `offset` is in [1, n-1]. */
export function isScalarInRange(bytes: Uint8Array, offset = 0): boolean {
  const v = scalarOf(bytes, offset);
  return v > 0n && v < SECP256K1_N;
}

/** r and s of a 64-byte signature as bigints. */
export function splitSignature(sig64: Uint8Array): { r: bigint; s: bigint } {
  return { r: scalarOf(sig64, 0), s: scalarOf(sig64, 32) };
}

/** Throws unless `digest` is 32 bytes. */
export function checkDigest(digest: unknown): asserts digest is Uint8Array {
  if (!isBytes(digest, 32)) throw invalidInput('digest must be a 32-byte Uint8Array', { argument: 'digest' });
}

/** Throws unless `recid` is 0 or 1 (Ethereum's yParity; ids 2 and 3 need r >= p - n and never occur). */
export function checkRecid(recid: unknown): asserts recid is 0 | 1 {
  if (recid !== 0 && recid !== 1) {
    throw invalidInput(`recovery id must be 0 or 1, got ${String(recid)}`, { argument: 'recid', recid });
  }
}

/** Throws unless `sig64` is 64 bytes with r and s in [1, n-1]. */
export function checkSignature(sig64: unknown): asserts sig64 is Uint8Array {
  if (!isBytes(sig64, 64)) throw invalidInput('signature must be a 64-byte Uint8Array (r || s)', { argument: 'sig64' });
  if (!isScalarInRange(sig64, 0)) throw invalidInput('signature r is zero or not below the group order', { argument: 'sig64' });
  if (!isScalarInRange(sig64, 32)) throw invalidInput('signature s is zero or not below the group order', { argument: 'sig64' });
}

/** Throws unless `privateKey` is 32 bytes in [1, n-1]. */
export function checkPrivateKey(privateKey: unknown): asserts privateKey is Uint8Array {
  if (!isBytes(privateKey, 32) || !isScalarInRange(privateKey)) {
    throw invalidInput('private key must be 32 bytes encoding a number in [1, n-1]', { argument: 'privateKey' });
  }
}

/**
 * True when `publicKey` has a SEC1 encoding both backends parse the same way: 33 bytes with prefix 02/03 or
 * 65 bytes with prefix 04. (libsecp256k1 also takes the 06/07 "hybrid" encoding, noble does not; we refuse it.)
 * Whether the point is on the curve is left to the backend.
 */
export function hasPublicKeyEncoding(publicKey: unknown): publicKey is Uint8Array {
  if (!(publicKey instanceof Uint8Array)) return false;
  if (publicKey.length === 33) return publicKey[0] === 0x02 || publicKey[0] === 0x03;
  if (publicKey.length === 65) return publicKey[0] === 0x04;
  return false;
}

/** The shared pre-checks of `verify`: false means reject without asking the backend. */
export function verifyInputsUsable(digest: unknown, sig64: unknown, publicKey: unknown): boolean {
  if (!isBytes(digest, 32) || !isBytes(sig64, 64) || !hasPublicKeyEncoding(publicKey)) return false;
  if (!isScalarInRange(sig64, 0) || !isScalarInRange(sig64, 32)) return false;
  // High-s is rejected here, not left to each library's option, so the rule cannot drift between backends.
  return scalarOf(sig64, 32) <= SECP256K1_HALF_N;
}
