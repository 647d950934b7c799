// How the transaction pool orders what it holds: each sender's entries by nonce, and entries across
// senders by price. From that order come the block builder's selection (best first, nonces in sequence)
// and the eviction victims when the pool is full (cheapest tail first, never leaving a sender a gap).

import { Heap } from './heap.ts';
import type { Address, SignedTx } from './types.ts';

/** One pooled transaction with what ordering needs. */
export interface Entry {
  readonly tx: SignedTx;
  readonly sender: Sender;
  /** Arrival order: breaks price ties in selection (earlier first) and eviction (later first). */
  readonly seq: number;
  /** Effective tip over minFee: what the block producer earns per gas. */
  readonly tip: bigint;
}

/** One sender's transactions in the pool. */
export interface Sender {
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

/** True when `a` is a cheaper eviction victim than `b`: lower tip, then lower fee cap, then newer. */
export function cheaper(a: Entry, b: Entry): boolean {
  if (a.tip !== b.tip) return a.tip < b.tip;
  if (a.tx.maxFeePerGas !== b.tx.maxFeePerGas) return a.tx.maxFeePerGas < b.tx.maxFeePerGas;
  return a.seq > b.seq;
}

/** True when `a` pays strictly more than `b`: higher tip, or equal tip and higher fee cap. */
export function pricier(a: Entry, b: Entry): boolean {
  return a.tip !== b.tip ? a.tip > b.tip : a.tx.maxFeePerGas > b.tx.maxFeePerGas;
}

/** True when `a` goes into a block before `b`: higher tip, then earlier arrival. */
export function better(a: Entry, b: Entry): boolean {
  return a.tip !== b.tip ? a.tip > b.tip : a.seq < b.seq;
}

/** Index of the first entry whose nonce is >= `nonce`. */
export function lowerBound(entries: readonly Entry[], nonce: bigint): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((entries[mid] as Entry).tx.nonce < nonce) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Executable transactions for the next block, best first, from `senders` (left unchanged); at most
 * `maxCount` of them and `maxGas` gas in total. See TxPool.select.
 */
export function selectForBlock(senders: Iterable<Sender>, maxGas: bigint, maxCount: number): SignedTx[] {
  const out: SignedTx[] = [];
  if (!(maxCount > 0)) return out;
  const cursors: { s: Sender; i: number }[] = [];
  for (const s of senders) if (s.pendingLen > 0) cursors.push({ s, i: 0 });
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
 * Chooses the txs to drop so `incoming` fits: repeatedly the cheapest tail (highest nonce) of
 * any other sender, so no sender is left with a gap. Returns null, changing nothing, when a
 * needed victim pays at least as much as `incoming`. Senders popped from the eviction heap
 * while looking are pushed back unchanged; a local heap holds the next tail of each sender
 * already hit, so a sender can lose several txs from its end.
 */
export function planEviction(evictable: Heap<Sender>, needCount: number, needBytes: number, incoming: Entry): Entry[] | null {
  type Cursor = { s: Sender; i: number };
  const at = (c: Cursor): Entry => c.s.entries[c.i] as Entry;
  const next = new Heap<Cursor>((a, b) => cheaper(at(a), at(b)));
  const popped: Sender[] = [];
  const victims: Entry[] = [];
  let freedBytes = 0;
  try {
    while (victims.length < needCount || freedBytes < needBytes) {
      let top = evictable.peek();
      while (top && top === incoming.sender) {
        popped.push(top);
        evictable.pop();
        top = evictable.peek();
      }
      const fromHeap = top ? { s: top, i: top.entries.length - 1 } : undefined;
      const fromNext = next.peek();
      let pick: Cursor;
      if (fromHeap && (!fromNext || cheaper(at(fromHeap), at(fromNext)))) {
        popped.push(fromHeap.s);
        evictable.pop();
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
    for (const s of popped) evictable.push(s);
  }
}
