// The transaction pool: signed transactions waiting for a block. It keeps each sender's
// transactions in nonce order (a contiguous run from the confirmed nonce is pending, the rest
// is queued until the gap fills), applies geth's replacement and eviction rules, and hands the
// block builder a price-ordered selection. Everything is bounded by count and by raw bytes so a
// flood cannot grow memory, and every operation costs O(log senders) or O(one sender's txs),
// never O(pool), because the ledger must take several thousand transfers per second.

import { ChainError, type ChainErrorCode } from './errors.ts';
import { Heap } from './heap.ts';
import { cheaper, lowerBound, planEviction, selectForBlock, type Entry, type Sender } from './txpool-order.ts';
import type { Address, Hash, SignedTx } from './types.ts';

/** What the pool needs from its owner. */
export interface TxPoolOptions {
  /** Confirmed account nonce from state (the nonce the next executed tx of `addr` must carry). */
  readonly nonceOf: (addr: Address) => bigint;
  /** Minimum fee per gas the chain accepts; also the base fee against which tips are measured. */
  readonly minFee: bigint;
  /** The chain's block gas limit: a transaction asking for more gas could never be mined, so it is refused. */
  readonly blockGasLimit: bigint;
  /** Most transactions held in total. Default 20 000. */
  readonly maxTotal?: number;
  /** Most transactions held for one sender. Default 64. */
  readonly maxPerSender?: number;
  /** Furthest a nonce may lie beyond the confirmed nonce. Default 64. */
  readonly maxNonceGap?: number;
  /** Percentage both fee caps must rise by to replace a transaction. Default 10. */
  readonly priceBumpPercent?: number;
  /** Most raw transaction bytes held in total. Default 64 MiB. */
  readonly maxBytes?: number;
}

/** Counters for metrics and the admin API. */
export interface TxPoolStats {
  readonly size: number;
  readonly pending: number;
  readonly queued: number;
  readonly bytes: number;
  readonly senders: number;
  /** Transactions dropped to make room for better-paying ones. */
  readonly evicted: number;
  /** Rejected `add` calls by error code. */
  readonly rejected: Readonly<Partial<Record<ChainErrorCode, number>>>;
}

/** Outcome of an accepted `add`. */
export type AddResult = 'pending' | 'queued' | 'replaced';

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`TxPool option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Pool of signature-checked transactions waiting for inclusion. Not thread-safe; one owner. */
export class TxPool {
  readonly #nonceOf: (addr: Address) => bigint;
  readonly #minFee: bigint;
  readonly #blockGasLimit: bigint;
  readonly #maxTotal: number;
  readonly #maxPerSender: number;
  readonly #maxNonceGap: bigint;
  readonly #bump: bigint;
  readonly #maxBytes: number;

  readonly #byHash = new Map<Hash, Entry>();
  readonly #senders = new Map<Address, Sender>();
  /** Senders keyed by their last (highest-nonce) tx, cheapest first: the eviction candidates. */
  readonly #evictable = new Heap<Sender>(
    (a, b) => cheaper(a.entries[a.entries.length - 1] as Entry, b.entries[b.entries.length - 1] as Entry),
    (s, i) => {
      s.heapIndex = i;
    },
  );
  #seq = 0;
  #pending = 0;
  #bytes = 0;
  #evicted = 0;
  readonly #rejected: Partial<Record<ChainErrorCode, number>> = {};

  constructor(opts: TxPoolOptions) {
    if (typeof opts.nonceOf !== 'function') throw new TypeError('TxPool option nonceOf must be a function');
    if (typeof opts.minFee !== 'bigint' || opts.minFee < 0n) {
      throw new RangeError(`TxPool option minFee must be a non-negative bigint, got ${String(opts.minFee)}`);
    }
    if (typeof opts.blockGasLimit !== 'bigint' || opts.blockGasLimit <= 0n) {
      throw new RangeError(`TxPool option blockGasLimit must be a positive bigint (the chain's gas limit), got ${String(opts.blockGasLimit)}`);
    }
    this.#nonceOf = opts.nonceOf;
    this.#minFee = opts.minFee;
    this.#blockGasLimit = opts.blockGasLimit;
    this.#maxTotal = positiveInt('maxTotal', opts.maxTotal ?? 20_000);
    this.#maxPerSender = positiveInt('maxPerSender', opts.maxPerSender ?? 64);
    this.#maxNonceGap = BigInt(positiveInt('maxNonceGap', opts.maxNonceGap ?? 64));
    this.#bump = BigInt(positiveInt('priceBumpPercent', opts.priceBumpPercent ?? 10));
    this.#maxBytes = positiveInt('maxBytes', opts.maxBytes ?? 64 * 1024 * 1024);
  }

  get size(): number {
    return this.#byHash.size;
  }

  get pendingCount(): number {
    return this.#pending;
  }

  get queuedCount(): number {
    return this.#byHash.size - this.#pending;
  }

  get(hash: Hash): SignedTx | undefined {
    return this.#byHash.get(hash)?.tx;
  }

  has(hash: Hash): boolean {
    return this.#byHash.has(hash);
  }

  stats(): TxPoolStats {
    return {
      size: this.size,
      pending: this.#pending,
      queued: this.queuedCount,
      bytes: this.#bytes,
      senders: this.#senders.size,
      evicted: this.#evicted,
      rejected: { ...this.#rejected },
    };
  }

  /** Next nonce for `addr` counting its pending txs (eth_getTransactionCount 'pending'). */
  pendingNonce(addr: Address): bigint {
    const s = this.#senders.get(addr);
    return s ? s.base + BigInt(s.pendingLen) : this.#nonceOf(addr);
  }

  /**
   * Adds a transaction. Returns whether it is executable now ('pending'), waits for a nonce gap
   * to fill ('queued'), or replaced the sender's tx with the same nonce ('replaced').
   * Throws ChainError on rejection; a rejected tx leaves the pool exactly as it was.
   */
  add(tx: SignedTx): AddResult {
    if (this.#byHash.has(tx.hash)) throw this.#reject('TX_ALREADY_KNOWN', 'transaction already in the pool', { hash: tx.hash });
    if (tx.maxFeePerGas < this.#minFee) {
      throw this.#reject('TX_FEE_TOO_LOW', 'fee cap below the chain minimum; raise maxFeePerGas', {
        hash: tx.hash,
        maxFeePerGas: tx.maxFeePerGas,
        minFee: this.#minFee,
      });
    }
    if (tx.gasLimit > this.#blockGasLimit) {
      // No block could hold it: held, it would block its sender's later nonces for ever.
      throw this.#reject('TX_GAS_LIMIT_EXCEEDED', `gas limit exceeds the block gas limit ${this.#blockGasLimit}; lower the transaction's gas limit`, {
        hash: tx.hash,
        gasLimit: tx.gasLimit,
        blockGasLimit: this.#blockGasLimit,
      });
    }
    const s = this.#senders.get(tx.from);
    const base = s ? s.base : this.#nonceOf(tx.from);
    if (tx.nonce < base) {
      throw this.#reject('TX_NONCE_TOO_LOW', 'nonce already used; fetch the pending nonce and resend', {
        hash: tx.hash,
        from: tx.from,
        nonce: tx.nonce,
        accountNonce: base,
      });
    }
    // The gap is measured from the next executable nonce (confirmed nonce plus the sender's pending run),
    // so a sender may stream many in-order transactions while a gap stays bounded.
    const next = s ? s.base + BigInt(s.pendingLen) : base;
    if (tx.nonce > next + this.#maxNonceGap) {
      throw this.#reject('TX_NONCE_TOO_HIGH', 'nonce too far ahead of the account nonce; send the missing nonces first', {
        hash: tx.hash,
        from: tx.from,
        nonce: tx.nonce,
        accountNonce: base,
        maxNonce: next + this.#maxNonceGap,
      });
    }

    const idx = s ? lowerBound(s.entries, tx.nonce) : 0;
    const at = s?.entries[idx];
    const old = at && at.tx.nonce === tx.nonce ? at : undefined;
    if (old) {
      this.#checkBump(old.tx, tx);
    } else if (s && s.entries.length >= this.#maxPerSender) {
      throw this.#reject('TXPOOL_SENDER_LIMIT', 'sender holds too many transactions; wait for some to be mined', {
        hash: tx.hash,
        from: tx.from,
        held: s.entries.length,
        maxPerSender: this.#maxPerSender,
      });
    }

    const entry: Entry = { tx, sender: s ?? this.#newSender(tx.from, base), seq: this.#seq, tip: this.#tipOf(tx) };
    const needCount = this.#byHash.size + (old ? 0 : 1) - this.#maxTotal;
    const needBytes = this.#bytes + tx.raw.length - (old ? old.tx.raw.length : 0) - this.#maxBytes;
    let victims: Entry[] = [];
    if (needCount > 0 || needBytes > 0) {
      const plan = tx.raw.length > this.#maxBytes ? null : planEviction(this.#evictable, needCount, needBytes, entry);
      if (!plan) {
        throw this.#reject('TXPOOL_FULL', 'pool full and the transaction pays no more than the cheapest one held; raise its fees', {
          hash: tx.hash,
          size: this.#byHash.size,
          maxTotal: this.#maxTotal,
          bytes: this.#bytes,
          maxBytes: this.#maxBytes,
        });
      }
      victims = plan;
    }

    // Accepted: from here on nothing throws.
    this.#seq++;
    for (const v of victims) {
      const vs = v.sender;
      this.#removeAt(vs, vs.entries.length - 1);
      this.#settle(vs, Math.min(vs.pendingLen, vs.entries.length));
      this.#evicted++;
    }
    const sender = entry.sender;
    if (!s) this.#senders.set(sender.addr, sender);
    if (old) {
      sender.entries[idx] = entry;
      this.#byHash.delete(old.tx.hash);
      this.#bytes -= old.tx.raw.length;
    } else {
      sender.entries.splice(idx, 0, entry);
    }
    this.#byHash.set(tx.hash, entry);
    this.#bytes += tx.raw.length;
    // A new nonce never lands inside the pending run (those nonces are taken), so the run
    // before it stays valid and only needs extending.
    this.#settle(sender, sender.pendingLen);
    if (old) return 'replaced';
    return idx < sender.pendingLen ? 'pending' : 'queued';
  }

  /**
   * Executable transactions for the next block, best first, without removing them: each sender's
   * pending txs in nonce order, senders interleaved by the effective tip of their next tx
   * (geth's price-and-nonce merge). A sender whose next tx does not fit the remaining gas is
   * skipped from then on, since its later nonces cannot run without it.
   */
  select(maxGas: bigint, maxCount: number = Number.POSITIVE_INFINITY): SignedTx[] {
    return selectForBlock(this.#senders.values(), maxGas, maxCount);
  }

  /**
   * True when select(maxGas) would return something: some sender's next executable transaction fits
   * `maxGas`. Stops at the first such sender, which with admission's gas check is the first one.
   */
  hasSelectable(maxGas: bigint): boolean {
    for (const s of this.#senders.values()) if (s.pendingLen > 0 && (s.entries[0] as Entry).tx.gasLimit <= maxGas) return true;
    return false;
  }

  /**
   * After a block is committed: drops the included txs and everything whose nonce is now below
   * its sender's confirmed nonce, and promotes queued txs that became executable. Only the
   * senders of `included` are touched, so the cost is proportional to the block, not the pool.
   */
  onBlock(included: readonly SignedTx[]): void {
    const touched = new Map<Sender, SignedTx[]>();
    for (const tx of included) {
      const s = this.#senders.get(tx.from);
      if (!s) continue;
      const list = touched.get(s);
      if (list) list.push(tx);
      else touched.set(s, [tx]);
    }
    // One sender at a time, settled before the next is touched: the eviction heap tolerates
    // only one item with a changed key at a time.
    for (const [s, txs] of touched) {
      s.base = this.#nonceOf(s.addr);
      let stale = 0;
      while (stale < s.entries.length && (s.entries[stale] as Entry).tx.nonce < s.base) stale++;
      s.entries.splice(0, stale).forEach((e) => this.#unlink(e));
      // Included yet not below the confirmed nonce means state and block disagree; drop it anyway.
      for (const tx of txs) {
        const e = this.#byHash.get(tx.hash);
        if (e) this.#removeAt(s, lowerBound(s.entries, e.tx.nonce));
      }
      this.#settle(s, 0);
    }
  }

  /** Drops one transaction; the sender's later txs become queued until the nonce is filled again. */
  remove(hash: Hash): boolean {
    const e = this.#byHash.get(hash);
    if (!e) return false;
    const idx = lowerBound(e.sender.entries, e.tx.nonce);
    this.#removeAt(e.sender, idx);
    this.#settle(e.sender, Math.min(e.sender.pendingLen, idx));
    return true;
  }

  #reject(code: ChainErrorCode, message: string, fields: Record<string, unknown>): ChainError {
    this.#rejected[code] = (this.#rejected[code] ?? 0) + 1;
    return new ChainError(code, message, fields);
  }

  /** Effective tip with minFee as the base fee; never negative because fee caps below minFee are refused. */
  #tipOf(tx: SignedTx): bigint {
    const headroom = tx.maxFeePerGas - this.#minFee;
    return tx.maxPriorityFeePerGas < headroom ? tx.maxPriorityFeePerGas : headroom;
  }

  /** geth's rule: both caps strictly higher and at least priceBumpPercent above the old ones. */
  #checkBump(old: SignedTx, tx: SignedTx): void {
    const minFeeCap = (old.maxFeePerGas * (100n + this.#bump)) / 100n;
    const minTip = (old.maxPriorityFeePerGas * (100n + this.#bump)) / 100n;
    const ok =
      tx.maxFeePerGas > old.maxFeePerGas &&
      tx.maxPriorityFeePerGas > old.maxPriorityFeePerGas &&
      tx.maxFeePerGas >= minFeeCap &&
      tx.maxPriorityFeePerGas >= minTip;
    if (!ok) {
      throw this.#reject('TX_REPLACEMENT_UNDERPRICED', `replacement must raise both fee caps by ${this.#bump}%`, {
        hash: tx.hash,
        replaces: old.hash,
        from: tx.from,
        nonce: tx.nonce,
        minMaxFeePerGas: minFeeCap > old.maxFeePerGas ? minFeeCap : old.maxFeePerGas + 1n,
        minMaxPriorityFeePerGas: minTip > old.maxPriorityFeePerGas ? minTip : old.maxPriorityFeePerGas + 1n,
      });
    }
  }

  #newSender(addr: Address, base: bigint): Sender {
    return { addr, base, entries: [], pendingLen: 0, heapIndex: -1 };
  }

  /** Unlinks entries[idx]; the caller must #settle the sender afterwards. */
  #removeAt(s: Sender, idx: number): void {
    const [e] = s.entries.splice(idx, 1);
    if (e) this.#unlink(e);
  }

  #unlink(e: Entry): void {
    this.#byHash.delete(e.tx.hash);
    this.#bytes -= e.tx.raw.length;
  }

  /**
   * Recomputes the sender's pending run, given that its first `known` entries are still pending,
   * and its eviction-heap slot; forgets the sender when empty. `known` keeps this O(change) for
   * senders allowed many txs; onBlock passes 0 because the confirmed nonce itself moved.
   */
  #settle(s: Sender, known: number): void {
    let n = known;
    while (n < s.entries.length && (s.entries[n] as Entry).tx.nonce === s.base + BigInt(n)) n++;
    this.#pending += n - s.pendingLen;
    s.pendingLen = n;
    if (s.entries.length === 0) {
      if (s.heapIndex >= 0) this.#evictable.remove(s.heapIndex);
      this.#senders.delete(s.addr);
    } else if (s.heapIndex >= 0) {
      this.#evictable.fix(s.heapIndex);
    } else {
      this.#evictable.push(s);
    }
  }
}
