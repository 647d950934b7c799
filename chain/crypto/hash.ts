// Keccak-256 as Ethereum uses it (the original Keccak padding, not NIST SHA3-256): addresses, transaction
// and block hashes, state keys. One wrapper so the rest of the ledger never imports a hash library directly.
import { keccak_256 } from '@noble/hashes/sha3.js';

/** Keccak-256 of `data`: 32 bytes. */
export function keccak256(data: Uint8Array): Uint8Array {
  return keccak_256(data);
}
