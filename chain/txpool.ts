// The transaction pool: signed transactions waiting for a block. It keeps each sender's
// transactions in nonce order (a contiguous run from the confirmed nonce is pending, the rest
// is queued until the gap fills), applies geth's replacement and eviction rules, and hands the
// block builder a price-ordered selection. Everything is bounded by count and by raw bytes so a
// flood cannot grow memory, and every operation costs O(log senders) or O(one sender's txs),
// never O(pool), because the ledger must take several thousand transfers per second.

import { ChainError, type ChainErrorCode } from './errors.ts';
import type { Address, Hash, SignedTx } from './types.ts';

/** What the pool needs from its owner. */
export interface TxPoolOptions {
  /** Confirmed account nonce from state (the nonce the next executed tx of `addr` must carry). */
  readonly nonceOf: (addr: Address) => bigint;
  /** Minimum fee per gas the chain accepts; also the base fee against which tips are measured. */
  readonly minFee: bigint;
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

interface Entry {
  readonly tx: SignedTx;
  readonly sender: Sender;
  /** Arrival order: breaks price ties in selection (earlier first) and eviction (later first). */
  readonly seq: number;
  /** Effective tip over minFee: what the block producer earns per gas. */
  readonly tip: bigint;
}

interface Sender {
  readonly addr: Address;
  /** Confirmed nonce, cached from nonceOf; refreshed by onBlock and whenever the sender reappears. */
  base: bigint;
  /** Sorted by nonce, at most maxPerSender long, so linear work here is bounded by a constant. */
  entries: Entry[];
  /** entries[0 .. pendingLen) carry nonces base, base+1, ... and are executable. */
  pendingLen: number;
  /** Position in the eviction heap; -1 when absent. */
  heapIndex: number;
}

/** Binary heap ordered by `before`; `moved` lets items remember their slot for update/remove. */
class Heap<T> {
  readonly items: T[];
  readonly #before: (a: T, b: T) => boolean;
  readonly #moved: (item: T, index: number) => void;

  constructor(before: (a: T, b: T) => boolean, moved: (item: T, index: number) => void = () => {}, items: T[] = []) {
    this.#before = before;
    this.#moved = moved;
    this.items = items;
    items.forEach((item, i) => moved(item, i));
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.#moved(item, this.items.length - 1);
    this.#up(this.items.length - 1);
  }

  pop(): T | undefined {
    return this.items.length === 0 ? undefined : this.remove(0);
  }

  /** Removes and returns the item at `index`. */
  remove(index: number): T {
    const items = this.items;
    const item = items[index] as T;
    const last = items.pop() as T;
    if (index < items.length) {
      items[index] = last;
      this.#moved(last, index);
      this.fix(index);
    }
    this.#moved(item, -1);
    return item;
  }

  /** Restores heap order after the key of the item at `index` changed. */
  fix(index: number): void {
    if (!this.#up(index)) this.#down(index);
  }

  #up(i: number): boolean {
    const items = this.items;
    const item = items[i] as T;
    const start = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (!this.#before(item, parent)) break;
      items[i] = parent;
      this.#moved(parent, i);
      i = p;
    }
    items[i] = item;
    this.#moved(item, i);
    return i !== start;
  }

  #down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#before(items[r] as T, items[l] as T) ? r : l;
      const child = items[c] as T;
      if (!this.#before(child, item)) break;
      items[i] = child;
      this.#moved(child, i);
      i = c;
    }
    items[i] = item;
    this.#moved(item, i);
  }
}

/** True when `a` is a cheaper eviction victim than `b`: lower tip, then lower fee cap, then newer. */
function cheaper(a: Entry, b: Entry): boolean {
  if (a.tip !== b.tip) return a.tip < b.tip;
  if (a.tx.maxFeePerGas !== b.tx.maxFeePerGas) return a.tx.maxFeePerGas < b.tx.maxFeePerGas;
  return a.seq > b.seq;
}

/** True when `a` pays strictly more than `b`: higher tip, or equal tip and higher fee cap. */
function pricier(a: Entry, b: Entry): boolean {
  return a.tip !== b.tip ? a.tip > b.tip : a.tx.maxFeePerGas > b.tx.maxFeePerGas;
}

/** True when `a` goes into a block before `b`: higher tip, then earlier arrival. */
function better(a: Entry, b: Entry): boolean {
  return a.tip !== b.tip ? a.tip > b.tip : a.seq < b.seq;
}

/** Index of the first entry whose nonce is >= `nonce`. */
function lowerBound(entries: readonly Entry[], nonce: bigint): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((entries[mid] as Entry).tx.nonce < nonce) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

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
    this.#nonceOf = opts.nonceOf;
    this.#minFee = opts.minFee;
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
      const plan = tx.raw.length > this.#maxBytes ? null : this.#planEviction(needCount, needBytes, entry);
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
    const out: SignedTx[] = [];
    if (!(maxCount > 0)) return out;
    const cursors: { s: Sender; i: number }[] = [];
    for (const s of this.#senders.values()) if (s.pendingLen > 0) cursors.push({ s, i: 0 });
    const at = (c: { s: Sender; i: number }): Entry => c.s.entries[c.i] as Entry;
    const heap = new Heap(
      (a: { s: Sender; i: number }, b: { s: Sender; i: number }) => better(at(a), at(b)),
      undefined,
      cursors,
    );
    let gasLeft = maxGas;
    while (out.length < maxCount) {
      const top = heap.peek();
      if (!top) break;
      const e = at(top);
      if (e.tx.gasLimit > gasLeft) {
        heap.pop();
        continue;
      }
      out.push(e.tx);
      gasLeft -= e.tx.gasLimit;
      top.i++;
      if (top.i < top.s.pendingLen) heap.fix(0);
      else heap.pop();
    }
    return out;
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

  /**
   * Chooses the txs to drop so `incoming` fits: repeatedly the cheapest tail (highest nonce) of
   * any other sender, so no sender is left with a gap. Returns null, changing nothing, when a
   * needed victim pays at least as much as `incoming`. Senders popped from the eviction heap
   * while looking are pushed back unchanged; a local heap holds the next tail of each sender
   * already hit, so a sender can lose several txs from its end.
   */
  #planEviction(needCount: number, needBytes: number, incoming: Entry): Entry[] | null {
    type Cursor = { s: Sender; i: number };
    const at = (c: Cursor): Entry => c.s.entries[c.i] as Entry;
    const next = new Heap<Cursor>((a, b) => cheaper(at(a), at(b)));
    const popped: Sender[] = [];
    const victims: Entry[] = [];
    let freedBytes = 0;
    try {
      while (victims.length < needCount || freedBytes < needBytes) {
        let top = this.#evictable.peek();
        while (top && top === incoming.sender) {
          popped.push(top);
          this.#evictable.pop();
          top = this.#evictable.peek();
        }
        const fromHeap = top ? { s: top, i: top.entries.length - 1 } : undefined;
        const fromNext = next.peek();
        let pick: Cursor;
        if (fromHeap && (!fromNext || cheaper(at(fromHeap), at(fromNext)))) {
          popped.push(fromHeap.s);
          this.#evictable.pop();
          pick = fromHeap;
        } else if (fromNext) {
          next.pop();
          pick = fromNext;
        } else {
          return null;
        }
        const victim = at(pick);
        if (!pricier(incoming, victim)) return null;
        victims.push(victim);
        freedBytes += victim.tx.raw.length;
        if (pick.i > 0) next.push({ s: pick.s, i: pick.i - 1 });
      }
      return victims;
    } finally {
      for (const s of popped) this.#evictable.push(s);
    }
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
