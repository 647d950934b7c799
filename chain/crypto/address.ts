// Ethereum addresses from public keys and from signatures (ecrecover).
import type { Address } from '../types.ts';
import { invalidInput, type Secp256k1Backend } from './backend.ts';
import { bigintToBytes32, bytesToHex } from './bytes.ts';
import { keccak256 } from './hash.ts';
import { secp256k1 } from './secp256k1.ts';

/** Address of a 65-byte uncompressed public key: lowercase 0x hex of keccak256(x || y)[12:]. */
export function publicKeyToAddress(pub65: Uint8Array): Address {
  if (!(pub65 instanceof Uint8Array) || pub65.length !== 65 || pub65[0] !== 0x04) {
    throw invalidInput('public key must be 65 bytes, uncompressed (04 || x || y)', { argument: 'pub65' });
  }
  return bytesToHex(keccak256(pub65.subarray(1)).subarray(12));
}

/** r || s as 64 bytes. Throws CRYPTO_INVALID_INPUT if r or s is negative or 2^256 or more. */
export function signatureBytes(r: bigint, s: bigint): Uint8Array {
  const sig = new Uint8Array(64);
  sig.set(bigintToBytes32(r), 0);
  sig.set(bigintToBytes32(s), 32);
  return sig;
}

/**
 * Address that signed `digest` with (r, s, recid); recid is Ethereum's yParity. Uses the process backend
 * unless one is passed. Accepts high-s (callers that must reject it, like transaction admission, check
 * first). Throws ChainError CRYPTO_INVALID_INPUT when nothing can be recovered.
 */
export function recoverAddress(digest: Uint8Array, r: bigint, s: bigint, recid: 0 | 1, backend: Secp256k1Backend = secp256k1): Address {
  return publicKeyToAddress(backend.recoverPublicKey(digest, signatureBytes(r, s), recid));
}
