// What the chain signs and who signs it. Every consensus signature covers a domain-separated digest
// (tag, chain id, height, round, hash) so that a signature made for one purpose, chain or round can
// never be replayed as another. The Signer port is implemented in device/ (keystore, PKCS#11, ...).
import { keccak256 } from './crypto/index.ts';
import { rlpEncode } from './rlp.ts';
import type { Address } from './types.ts';

/** What a consensus signature is for. New purposes get new tags; a tag is never reused. */
export type SignPurpose = 'seal' | 'proposal' | 'prepare' | 'commit' | 'round-change' | 'message';

const TAG = new TextEncoder().encode('datagate/lbft/v1');

/** The signer port: a key that signs 32-byte digests. Keys never leave it. */
export interface Signer {
  readonly keyType: 'secp256k1' | 'p256';
  /** Uncompressed public key (65 bytes). */
  readonly publicKey: Uint8Array;
  /** Identity of the key: keccak256(x || y)[12:], which for secp256k1 is its Ethereum address. */
  readonly address: Address;
  /**
   * Sign a 32-byte digest for `purpose`. secp256k1: 65 bytes r || s || recid with low s. P-256: 64 bytes
   * r || s with low s, over SHA-256 of the digest (see crypto/p256.ts).
   * `context` lets a double-sign guard in the signer check height, round and the signed block `hash`;
   * a guarded signer refuses consensus purposes signed without it.
   */
  sign(digest: Uint8Array, purpose: SignPurpose, context?: { height: bigint; round: number; hash?: Uint8Array }): Promise<Uint8Array>;
}

/** Digest signed for `purpose` over block `hash` at (`height`, `round`) of chain `chainId`. */
export function consensusDigest(purpose: SignPurpose, chainId: bigint, height: bigint, round: number, hash: Uint8Array): Uint8Array {
  return keccak256(rlpEncode([TAG, new TextEncoder().encode(purpose), chainId, height, round, hash]));
}
