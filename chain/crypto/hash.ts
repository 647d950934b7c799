// Keccak-256 as Ethereum uses it (the original Keccak padding, not NIST SHA3-256): addresses, transaction
// and block hashes, state keys, Merkle nodes of blocks and data segments. One wrapper so the rest of the
// ledger never imports a hash library directly.
//
// hash-wasm's WebAssembly Keccak: on the short inputs that dominate (20-65 bytes: addresses, trie and Merkle
// nodes, segment readings) it takes 0.8 us where @noble/hashes' JavaScript takes 5.4 us on this machine
// (node's crypto has SHA3 but not Keccak's padding). test/unit/crypto.test.ts checks both agree on every
// length around the 136-byte block. One hasher, created once and reused: keccak256 is synchronous, so one
// call runs from init() to digest() before any other can start.
import { createKeccak } from 'hash-wasm';

const hasher = await createKeccak(256);

/** Keccak-256 of `data`: 32 bytes. */
export function keccak256(data: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
}
