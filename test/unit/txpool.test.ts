// Unit tests of the transaction pool: nonce ordering and promotion, the replacement rule,
// per-sender and global limits with eviction from the end of a sender's nonce run, block
// selection and post-block cleanup. Transactions are built by hand; the pool checks no signatures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TxPool, type TxPoolOptions } from '../../chain/txpool.ts';
import { hasCode } from '../../chain/errors.ts';
import type { Address, SignedTx } from '../../chain/types.ts';

const GWEI = 1_000_000_000n;
const BLOCK_GAS = 30_000_000n;
let hashCounter = 0;

function addr(n: number): Address {
  return '0x' + n.toString(16).padStart(40, '0');
}

interface TxSpec {
  from: Address;
  nonce: number | bigint;
  /** maxFeePerGas in gwei (legacy: gas price). */
  fee?: bigint;
  /** maxPriorityFeePerGas in gwei; defaults to `fee`. */
  tip?: bigint;
  gas?: bigint;
  bytes?: number;
  legacy?: boolean;
}

/** A SignedTx with every field filled and a unique hash. */
function mkTx(spec: TxSpec): SignedTx {
  const fee = (spec.fee ?? 2n) * GWEI;
  const tip = (spec.tip ?? spec.fee ?? 2n) * GWEI;
  hashCounter++;
  return {
    hash: '0x' + hashCounter.toString(16).padStart(64, '0'),
    raw: new Uint8Array(spec.bytes ?? 110),
    type: spec.legacy ? 0 : 2,
    chainId: 1337n,
    nonce: BigInt(spec.nonce),
    gasLimit: spec.gas ?? 21_000n,
    maxFeePerGas: fee,
    maxPriorityFeePerGas: spec.legacy ? fee : tip,
    gasPrice: spec.legacy ? fee : null,
    to: addr(0xdead),
    value: 1n,
    data: new Uint8Array(0),
    accessListCost: 0n,
    from: spec.from,
    yParity: 0,
    v: 0n,
    r: 1n,
    s: 1n,
  };
}

/** A pool over a mutable nonce table; minFee 1 gwei so tips of `fee - 1` gwei apply. */
function mkPool(opts: Partial<TxPoolOptions> = {}): { pool: TxPool; nonces: Map<Address, bigint> } {
  const nonces = new Map<Address, bigint>();
  const pool = new TxPool({ nonceOf: (a) => nonces.get(a) ?? 0n, minFee: 1n * GWEI, blockGasLimit: BLOCK_GAS, ...opts });
  return { pool, nonces };
}

function rejects(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => hasCode(err, code));
}

/** Pool-wide invariants that every test can check cheaply. */
function checkInvariants(pool: TxPool): void {
  assert.equal(pool.pendingCount + pool.queuedCount, pool.size);
  const all = pool.select(1n << 62n);
  assert.equal(all.length, pool.pendingCount, 'every pending tx is selectable');
  const bySender = new Map<Address, bigint[]>();
  for (const tx of all) bySender.set(tx.from, [...(bySender.get(tx.from) ?? []), tx.nonce]);
  for (const [from, nonces] of bySender) {
    // A sender's selected txs are exactly its pending run, in nonce order without gaps.
    const first = pool.pendingNonce(from) - BigInt(nonces.length);
    assert.deepEqual(nonces, nonces.map((_, i) => first + BigInt(i)), `nonce run of ${from}`);
  }
}

const A = addr(1);
const B = addr(2);
const C = addr(3);

test('contiguous nonces are pending, gaps are queued and promoted when filled', () => {
  const { pool } = mkPool();
  assert.equal(pool.pendingNonce(A), 0n);
  assert.equal(pool.add(mkTx({ from: A, nonce: 0 })), 'pending');
  assert.equal(pool.add(mkTx({ from: A, nonce: 2 })), 'queued');
  assert.equal(pool.add(mkTx({ from: A, nonce: 3 })), 'queued');
  assert.equal(pool.pendingCount, 1);
  assert.equal(pool.queuedCount, 2);
  assert.equal(pool.pendingNonce(A), 1n);
  assert.deepEqual(pool.select(1_000_000n).map((t) => t.nonce), [0n]);

  assert.equal(pool.add(mkTx({ from: A, nonce: 1 })), 'pending');
  assert.equal(pool.pendingCount, 4);
  assert.equal(pool.queuedCount, 0);
  assert.equal(pool.pendingNonce(A), 4n);
  assert.deepEqual(pool.select(1_000_000n).map((t) => t.nonce), [0n, 1n, 2n, 3n]);
  checkInvariants(pool);
});

test('pending starts at the confirmed nonce from state', () => {
  const { pool, nonces } = mkPool();
  nonces.set(A, 5n);
  assert.equal(pool.pendingNonce(A), 5n);
  assert.equal(pool.add(mkTx({ from: A, nonce: 6 })), 'queued');
  assert.equal(pool.add(mkTx({ from: A, nonce: 5 })), 'pending');
  assert.equal(pool.pendingNonce(A), 7n);
});

test('nonce below the confirmed nonce or beyond the gap is rejected', () => {
  const { pool, nonces } = mkPool({ maxNonceGap: 64 });
  nonces.set(A, 5n);
  rejects(() => pool.add(mkTx({ from: A, nonce: 4 })), 'TX_NONCE_TOO_LOW');
  rejects(() => pool.add(mkTx({ from: A, nonce: 5 + 65 })), 'TX_NONCE_TOO_HIGH');
  assert.equal(pool.add(mkTx({ from: A, nonce: 5 + 64 })), 'queued');
  assert.equal(pool.size, 1);
  const rejected = pool.stats().rejected;
  assert.equal(rejected.TX_NONCE_TOO_LOW, 1);
  assert.equal(rejected.TX_NONCE_TOO_HIGH, 1);
});

test('a sender may stream in-order nonces past the gap; the gap counts from its pending run', () => {
  const { pool } = mkPool({ maxNonceGap: 8, maxPerSender: 1000 });
  for (let n = 0; n < 100; n++) assert.equal(pool.add(mkTx({ from: A, nonce: n })), 'pending');
  assert.equal(pool.pendingNonce(A), 100n);
  rejects(() => pool.add(mkTx({ from: A, nonce: 100 + 9 })), 'TX_NONCE_TOO_HIGH');
  assert.equal(pool.add(mkTx({ from: A, nonce: 100 + 8 })), 'queued');
});

test('fee cap below minFee is rejected, legacy and type 2', () => {
  const { pool } = mkPool({ minFee: 3n * GWEI });
  rejects(() => pool.add(mkTx({ from: A, nonce: 0, fee: 2n, tip: 1n })), 'TX_FEE_TOO_LOW');
  rejects(() => pool.add(mkTx({ from: A, nonce: 0, fee: 2n, legacy: true })), 'TX_FEE_TOO_LOW');
  assert.equal(pool.add(mkTx({ from: A, nonce: 0, fee: 3n, tip: 0n })), 'pending');
  assert.equal(pool.stats().rejected.TX_FEE_TOO_LOW, 2);
});

test('the same transaction twice is already known', () => {
  const { pool } = mkPool();
  const tx = mkTx({ from: A, nonce: 0 });
  pool.add(tx);
  rejects(() => pool.add(tx), 'TX_ALREADY_KNOWN');
  assert.equal(pool.size, 1);
});

test('replacement needs both fee caps raised by priceBumpPercent', () => {
  const { pool } = mkPool();
  const old = mkTx({ from: A, nonce: 0, fee: 100n, tip: 10n });
  pool.add(old);
  pool.add(mkTx({ from: A, nonce: 1, fee: 100n, tip: 10n }));
  const before = pool.stats();

  const underpriced = [
    mkTx({ from: A, nonce: 0, fee: 200n, tip: 10n }), // tip not raised
    mkTx({ from: A, nonce: 0, fee: 100n, tip: 20n }), // fee cap not raised
    mkTx({ from: A, nonce: 0, fee: 109n, tip: 11n }), // fee cap +9%
    mkTx({ from: A, nonce: 0, fee: 110n, tip: 10n }), // tip +0%
  ];
  for (const tx of underpriced) {
    rejects(() => pool.add(tx), 'TX_REPLACEMENT_UNDERPRICED');
    assert.equal(pool.has(tx.hash), false);
  }
  assert.equal(pool.get(old.hash), old);
  assert.equal(pool.size, before.size);
  assert.equal(pool.pendingCount, before.pending);
  assert.equal(pool.stats().bytes, before.bytes);
  assert.equal(pool.stats().rejected.TX_REPLACEMENT_UNDERPRICED, 4);

  const better = mkTx({ from: A, nonce: 0, fee: 110n, tip: 11n, bytes: 200 });
  assert.equal(pool.add(better), 'replaced');
  assert.equal(pool.has(old.hash), false);
  assert.equal(pool.get(better.hash), better);
  assert.equal(pool.size, 2);
  assert.equal(pool.pendingCount, 2);
  assert.equal(pool.stats().bytes, 310);
  assert.deepEqual(pool.select(1_000_000n).map((t) => t.hash)[0], better.hash);
  checkInvariants(pool);
});

test('replacing a zero tip needs a non-zero tip (both caps strictly higher)', () => {
  const { pool } = mkPool();
  pool.add(mkTx({ from: A, nonce: 0, fee: 10n, tip: 0n }));
  rejects(() => pool.add(mkTx({ from: A, nonce: 0, fee: 20n, tip: 0n })), 'TX_REPLACEMENT_UNDERPRICED');
  assert.equal(pool.add(mkTx({ from: A, nonce: 0, fee: 11n, tip: 1n })), 'replaced');
});

test('replacing a queued tx keeps it queued; legacy replacement bumps the gas price', () => {
  const { pool } = mkPool();
  pool.add(mkTx({ from: A, nonce: 2, fee: 10n, legacy: true }));
  rejects(() => pool.add(mkTx({ from: A, nonce: 2, fee: 10n, legacy: true })), 'TX_REPLACEMENT_UNDERPRICED');
  assert.equal(pool.add(mkTx({ from: A, nonce: 2, fee: 11n, legacy: true })), 'replaced');
  assert.equal(pool.queuedCount, 1);
  assert.equal(pool.pendingCount, 0);
});

test('per-sender limit rejects new nonces but allows replacements', () => {
  const { pool } = mkPool({ maxPerSender: 3 });
  for (let n = 0; n < 3; n++) pool.add(mkTx({ from: A, nonce: n }));
  rejects(() => pool.add(mkTx({ from: A, nonce: 3 })), 'TXPOOL_SENDER_LIMIT');
  rejects(() => pool.add(mkTx({ from: A, nonce: 10 })), 'TXPOOL_SENDER_LIMIT');
  assert.equal(pool.add(mkTx({ from: A, nonce: 1, fee: 5n })), 'replaced');
  assert.equal(pool.add(mkTx({ from: B, nonce: 0 })), 'pending');
  assert.equal(pool.size, 4);
  assert.equal(pool.stats().rejected.TXPOOL_SENDER_LIMIT, 2);
});

test('a full pool evicts the cheapest sender from the end of its nonce run', () => {
  const { pool } = mkPool({ maxTotal: 10, maxPerSender: 100 });
  // A floods at the lowest fee: nonces 0..7 pending, 9..10 queued behind a gap.
  for (let n = 0; n < 8; n++) pool.add(mkTx({ from: A, nonce: n, fee: 2n }));
  pool.add(mkTx({ from: A, nonce: 9, fee: 2n }));
  pool.add(mkTx({ from: A, nonce: 10, fee: 2n }));
  assert.equal(pool.size, 10);
  assert.equal(pool.queuedCount, 2);

  // B pays more: A loses its queued txs first (highest nonce first), then its pending tail.
  const expectedLeft = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
  for (let n = 0; n < 10; n++) {
    assert.equal(pool.add(mkTx({ from: B, nonce: n, fee: 3n })), 'pending');
    assert.equal(pool.size, 10);
    assert.equal(pool.pendingNonce(A), BigInt(Math.min(8, expectedLeft[n] as number)));
    checkInvariants(pool);
  }
  assert.equal(pool.queuedCount, 0);
  assert.equal(pool.pendingNonce(A), 0n);
  assert.equal(pool.stats().evicted, 10);
  assert.equal(pool.stats().senders, 1);

  // Only B is left: B cannot evict itself, and C paying no more than B is refused.
  rejects(() => pool.add(mkTx({ from: B, nonce: 10, fee: 50n })), 'TXPOOL_FULL');
  rejects(() => pool.add(mkTx({ from: C, nonce: 0, fee: 3n })), 'TXPOOL_FULL');
  assert.equal(pool.size, 10);
  assert.equal(pool.stats().rejected.TXPOOL_FULL, 2);
  assert.equal(pool.add(mkTx({ from: C, nonce: 0, fee: 4n })), 'pending');
  assert.equal(pool.pendingNonce(B), 9n);
});

test('eviction picks the cheapest tail across senders, not the sender with the cheapest tx', () => {
  const { pool } = mkPool({ maxTotal: 4 });
  const a0 = mkTx({ from: A, nonce: 0, fee: 2n });
  const a1 = mkTx({ from: A, nonce: 1, fee: 9n });
  const b0 = mkTx({ from: B, nonce: 0, fee: 5n });
  const b1 = mkTx({ from: B, nonce: 1, fee: 4n });
  for (const tx of [a0, a1, b0, b1]) pool.add(tx);
  // Tails are a1 (tip 8 gwei) and b1 (tip 3 gwei); C at tip 4 gwei evicts b1 and keeps a0 and a1.
  pool.add(mkTx({ from: C, nonce: 0, fee: 5n }));
  assert.equal(pool.has(b1.hash), false);
  for (const tx of [a0, a1, b0]) assert.equal(pool.has(tx.hash), true);
  // Next cheapest tail is b0 (tip 4 gwei): an equal tip with an equal fee cap does not evict it.
  rejects(() => pool.add(mkTx({ from: C, nonce: 1, fee: 5n })), 'TXPOOL_FULL');
  assert.equal(pool.size, 4);
});

test('byte cap evicts enough txs to fit a large one', () => {
  const { pool } = mkPool({ maxBytes: 1000 });
  for (let n = 0; n < 10; n++) pool.add(mkTx({ from: A, nonce: n, fee: 2n, bytes: 100 }));
  assert.equal(pool.stats().bytes, 1000);
  rejects(() => pool.add(mkTx({ from: B, nonce: 0, fee: 9n, bytes: 1001 })), 'TXPOOL_FULL');
  pool.add(mkTx({ from: B, nonce: 0, fee: 9n, bytes: 350 }));
  assert.equal(pool.stats().bytes, 950);
  assert.equal(pool.size, 7);
  assert.equal(pool.pendingNonce(A), 6n);
  checkInvariants(pool);
});

test('a flood of 100k txs never grows the pool past maxTotal', () => {
  const maxTotal = 2000;
  const { pool } = mkPool({ maxTotal });
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const nextNonce = new Map<Address, number>();
  let accepted = 0;
  let rejected = 0;
  for (let i = 0; i < 100_000; i++) {
    const from = addr(1000 + rand(5000));
    const nonce = nextNonce.get(from) ?? 0;
    // Mostly in order, sometimes a gap, so queued txs exist too.
    const gap = rand(10) === 0 ? 2 : 0;
    try {
      pool.add(mkTx({ from, nonce: nonce + gap, fee: 1n + BigInt(rand(50)), tip: BigInt(rand(5)) }));
      accepted++;
      if (gap === 0) nextNonce.set(from, nonce + 1);
    } catch (err) {
      assert.ok(
        ['TXPOOL_FULL', 'TXPOOL_SENDER_LIMIT', 'TX_NONCE_TOO_HIGH', 'TX_REPLACEMENT_UNDERPRICED'].some((c) => hasCode(err, c)),
        String(err),
      );
      rejected++;
      // The sender's run was evicted; start over from what the pool says.
      nextNonce.set(from, Number(pool.pendingNonce(from)));
    }
    assert.ok(pool.size <= maxTotal);
  }
  assert.equal(pool.size, maxTotal);
  assert.ok(accepted > maxTotal && rejected > 0);
  assert.ok(pool.stats().evicted > 0);
  checkInvariants(pool);
});

test('select merges senders by effective tip, keeps nonce order, respects gas and count', () => {
  const { pool } = mkPool();
  // A: tips 5 then 1; B: tip 3 twice; C: tip 4 but its first tx is too large for the block.
  const a0 = mkTx({ from: A, nonce: 0, fee: 10n, tip: 5n });
  const a1 = mkTx({ from: A, nonce: 1, fee: 10n, tip: 1n });
  const b0 = mkTx({ from: B, nonce: 0, fee: 10n, tip: 3n });
  const b1 = mkTx({ from: B, nonce: 1, fee: 10n, tip: 3n });
  const c0 = mkTx({ from: C, nonce: 0, fee: 10n, tip: 4n, gas: 200_000n });
  const c1 = mkTx({ from: C, nonce: 1, fee: 10n, tip: 9n });
  for (const tx of [a0, a1, b0, b1, c0, c1]) pool.add(tx);

  assert.deepEqual(pool.select(10_000_000n), [a0, c0, c1, b0, b1, a1]);
  // C's first tx does not fit, so none of C's txs are taken; the others still are.
  assert.deepEqual(pool.select(150_000n), [a0, b0, b1, a1]);
  assert.deepEqual(pool.select(63_000n), [a0, b0, b1]);
  assert.deepEqual(pool.select(10_000_000n, 2), [a0, c0]);
  assert.deepEqual(pool.select(10_000_000n, 0), []);
  assert.equal(pool.size, 6, 'select removes nothing');
});

test('select: effective tip is capped by fee cap minus minFee; ties go by arrival', () => {
  const { pool } = mkPool();
  const a0 = mkTx({ from: A, nonce: 0, fee: 3n, tip: 3n }); // effective tip 2 gwei
  const b0 = mkTx({ from: B, nonce: 0, fee: 10n, tip: 2n }); // 2 gwei, arrived later
  const c0 = mkTx({ from: C, nonce: 0, fee: 10n, tip: 3n }); // 3 gwei
  for (const tx of [a0, b0, c0]) pool.add(tx);
  assert.deepEqual(pool.select(1_000_000n), [c0, a0, b0]);
  // Queued txs are never selected.
  pool.add(mkTx({ from: A, nonce: 5, fee: 50n }));
  assert.equal(pool.select(1_000_000n).length, 3);
});

test('onBlock drops included and stale txs and promotes queued ones', () => {
  const { pool, nonces } = mkPool();
  const a = [0, 1, 2, 3].map((n) => mkTx({ from: A, nonce: n }));
  for (const tx of a) pool.add(tx);
  const bQueued = mkTx({ from: B, nonce: 1 });
  pool.add(bQueued);
  const c0 = mkTx({ from: C, nonce: 0 });
  pool.add(c0);
  assert.equal(pool.queuedCount, 1);

  // The block holds A's first two txs and B's nonce 0, which this pool never saw.
  const foreignB0 = mkTx({ from: B, nonce: 0 });
  nonces.set(A, 2n);
  nonces.set(B, 1n);
  pool.onBlock([a[0] as SignedTx, a[1] as SignedTx, foreignB0]);
  assert.equal(pool.has((a[0] as SignedTx).hash), false);
  assert.equal(pool.has((a[1] as SignedTx).hash), false);
  assert.equal(pool.size, 4);
  assert.equal(pool.queuedCount, 0, "B's queued tx is now executable");
  assert.equal(pool.pendingNonce(A), 4n);
  assert.equal(pool.pendingNonce(B), 2n);
  assert.equal(pool.has(c0.hash), true);
  checkInvariants(pool);

  // A competing tx with A's nonce 2 was mined elsewhere: A's nonce-2 tx goes as stale.
  nonces.set(A, 3n);
  pool.onBlock([mkTx({ from: A, nonce: 2, fee: 7n })]);
  assert.equal(pool.has((a[2] as SignedTx).hash), false);
  assert.equal(pool.pendingNonce(A), 4n);

  nonces.set(A, 4n);
  pool.onBlock([a[3] as SignedTx]);
  assert.equal(pool.stats().senders, 2);
  rejects(() => pool.add(mkTx({ from: A, nonce: 3 })), 'TX_NONCE_TOO_LOW');
  assert.equal(pool.add(mkTx({ from: A, nonce: 4 })), 'pending');
});

test('onBlock that empties many senders at once leaves a consistent pool', () => {
  const { pool, nonces } = mkPool({ maxTotal: 150, maxPerSender: 200, maxNonceGap: 200 });
  const block: SignedTx[] = [];
  for (let i = 0; i < 50; i++) {
    const from = addr(100 + i);
    for (let n = 0; n < 3; n++) {
      const tx = mkTx({ from, nonce: n, fee: 2n + BigInt(i % 7) });
      pool.add(tx);
      if (i % 2 === 0) block.push(tx);
    }
    if (i % 2 === 0) nonces.set(from, 3n);
  }
  pool.onBlock(block);
  assert.equal(pool.size, 75);
  assert.equal(pool.stats().senders, 25);
  checkInvariants(pool);
  // The eviction heap must still be sound after the mass removal: fill up, then make room.
  for (let n = 0; n < 75; n++) pool.add(mkTx({ from: A, nonce: n, fee: 1n }));
  assert.equal(pool.size, 150);
  for (let n = 0; n < 80; n++) pool.add(mkTx({ from: B, nonce: n, fee: 50n }));
  assert.equal(pool.size, 150);
  assert.equal(pool.pendingNonce(A), 0n, 'the cheapest sender went first, from its last nonce');
  assert.equal(pool.stats().evicted, 80);
  checkInvariants(pool);
});

test('remove demotes the later txs of the sender until the nonce is filled again', () => {
  const { pool } = mkPool();
  const a = [0, 1, 2, 3].map((n) => mkTx({ from: A, nonce: n }));
  for (const tx of a) pool.add(tx);
  assert.equal(pool.remove((a[1] as SignedTx).hash), true);
  assert.equal(pool.remove((a[1] as SignedTx).hash), false);
  assert.equal(pool.size, 3);
  assert.equal(pool.pendingCount, 1);
  assert.equal(pool.queuedCount, 2);
  assert.equal(pool.pendingNonce(A), 1n);
  assert.deepEqual(pool.select(1_000_000n), [a[0]]);

  assert.equal(pool.add(mkTx({ from: A, nonce: 1 })), 'pending');
  assert.equal(pool.pendingCount, 4);
  checkInvariants(pool);

  for (const tx of pool.select(1_000_000n)) pool.remove(tx.hash);
  assert.equal(pool.size, 0);
  assert.deepEqual(pool.stats(), { size: 0, pending: 0, queued: 0, bytes: 0, senders: 0, evicted: 0, rejected: {} });
});

test('constructor refuses out-of-range options', () => {
  assert.throws(() => mkPool({ maxTotal: 0 }), RangeError);
  assert.throws(() => mkPool({ maxPerSender: 1.5 }), RangeError);
  assert.throws(() => mkPool({ minFee: -1n }), RangeError);
  assert.throws(() => mkPool({ blockGasLimit: 0n }), RangeError);
});

test('a transaction asking for more gas than a block holds is refused at admission', { timeout: 10_000 }, () => {
  const { pool } = mkPool();
  rejects(() => pool.add(mkTx({ from: addr(1), nonce: 0, gas: BLOCK_GAS + 1n })), 'TX_GAS_LIMIT_EXCEEDED');
  assert.equal(pool.size, 0);
  assert.equal(pool.stats().rejected.TX_GAS_LIMIT_EXCEEDED, 1);
  assert.equal(pool.add(mkTx({ from: addr(1), nonce: 0, gas: BLOCK_GAS })), 'pending');
  checkInvariants(pool);
});

test('hasSelectable says whether select would return anything', { timeout: 10_000 }, () => {
  const { pool } = mkPool();
  assert.equal(pool.hasSelectable(BLOCK_GAS), false);
  pool.add(mkTx({ from: addr(1), nonce: 1 }));
  assert.equal(pool.hasSelectable(BLOCK_GAS), false, 'a queued tx is not selectable');
  pool.add(mkTx({ from: addr(2), nonce: 0, gas: 50_000n }));
  assert.equal(pool.hasSelectable(BLOCK_GAS), true);
  assert.equal(pool.hasSelectable(49_999n), false);
  assert.equal(pool.select(49_999n).length, 0);
});
