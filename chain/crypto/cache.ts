// Remembers who signed what, so a signature seen in the txpool, again in a proposed block and again at
// commit is recovered once. Recovery is the most expensive step of admitting a transaction (~65 µs
// with libsecp256k1, ~1.5 ms with @noble on a 2-core x86); a hit is a Map lookup (~0.1 µs).
//
// The cache trusts its key. The key must be a collision-resistant hash that covers the signed digest AND
// the signature (r, s, recid), like an Ethereum transaction hash (keccak of the signed envelope). Keying by
// the digest alone would let a second, different signature of the same payload inherit the first's sender.
import type { Address } from '../types.ts';
import { recoverAddress } from './address.ts';
import type { Secp256k1Backend } from './backend.ts';
import { secp256k1 } from './secp256k1.ts';

/** Entries kept by default: ~100k transactions is several full blocks plus a busy txpool, ~20 MB. */
export const DEFAULT_RECOVERY_CACHE_SIZE = 100_000;

/** Counters for metrics: lookups answered from the cache, lookups that recovered, and current size. */
export interface RecoveryCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
  readonly maxEntries: number;
}

/** Bounded LRU map from a signed-object hash to the recovered sender address. */
export class RecoveryCache {
  readonly maxEntries: number;
  // A Map iterates in insertion order; re-inserting on a hit keeps the least recently used entry first.
  readonly #entries = new Map<string, Address>();
  #hits = 0;
  #misses = 0;

  constructor(maxEntries: number = DEFAULT_RECOVERY_CACHE_SIZE) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`RecoveryCache maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
  }

  /**
   * Sender of (digest, r, s, recid), from the cache under `cacheKey` or by recovering it (and caching it).
   * Failed recoveries throw ChainError CRYPTO_INVALID_INPUT and are not cached.
   */
  recoverAddress(cacheKey: string, digest: Uint8Array, r: bigint, s: bigint, recid: 0 | 1, backend: Secp256k1Backend = secp256k1): Address {
    const cached = this.#entries.get(cacheKey);
    if (cached !== undefined) {
      this.#hits++;
      this.#entries.delete(cacheKey);
      this.#entries.set(cacheKey, cached);
      return cached;
    }
    this.#misses++;
    const address = recoverAddress(digest, r, s, recid, backend);
    this.#entries.set(cacheKey, address);
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return address;
  }

  /** Whether `cacheKey` is cached. Does not count as a lookup or refresh the entry. */
  has(cacheKey: string): boolean {
    return this.#entries.has(cacheKey);
  }

  get size(): number {
    return this.#entries.size;
  }

  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }

  stats(): RecoveryCacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size, maxEntries: this.maxEntries };
  }

  /** Drop every entry and reset the counters. */
  clear(): void {
    this.#entries.clear();
    this.#hits = 0;
    this.#misses = 0;
  }
}

/** The process-wide cache behind recoverAddressCached. */
export const defaultRecoveryCache = new RecoveryCache();

/** `defaultRecoveryCache.recoverAddress(...)` with the process backend. See RecoveryCache for the key rule. */
export function recoverAddressCached(cacheKey: string, digest: Uint8Array, r: bigint, s: bigint, recid: 0 | 1): Address {
  return defaultRecoveryCache.recoverAddress(cacheKey, digest, r, s, recid);
}
