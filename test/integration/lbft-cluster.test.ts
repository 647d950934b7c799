// LBFT over real ledgers in one process: 4 validators and 2 proposers agree on blocks with transfers,
// a proposer that stops is impeached: the committee commits I(h) and counts it in state, and a proposer
// proposes before its period only for a transaction a block can take.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getBytes } from 'ethers';
import { decodeSignedTx, verifyCertificate } from '../../chain/index.ts';
import { impeachmentCount } from '../../chain/ledger.ts';
import { tempDir } from '../helpers/chain.ts';
import { ETH, startCluster, user, waitForHeight } from '../helpers/lbft-cluster.ts';

test('4 validators and 2 proposers commit the same blocks, with a transfer', async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const cluster = await startCluster(tempDir(t, cleanup));
  cleanup.push(() => cluster.stop());
  const to = '0x' + '77'.repeat(20);
  const raw = await user.signTransaction({ type: 2, chainId: 1337n, nonce: 0, to, value: ETH, gasLimit: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
  const tx = decodeSignedTx(getBytes(raw), 1337n);
  for (const n of cluster.nodes.filter((n) => n.name.startsWith('p'))) n.pool.add(tx);
  await waitForHeight(cluster.nodes, 6n);
  const hashes = await Promise.all(cluster.nodes.map(async (n) => (await n.ledger.blockByNumber(5n))!.hash));
  assert.equal(new Set(hashes).size, 1);
  for (const n of cluster.nodes) assert.equal(n.ledger.state.account(to).balance, ETH);
  // Proposers alternate and none was impeached.
  const v0 = cluster.nodes[0]!.ledger;
  const proposers = await Promise.all([1n, 2n, 3n, 4n].map(async (h) => (await v0.blockByNumber(h))!.header.proposer));
  assert.deepEqual(proposers, [cluster.spec.proposers[1], cluster.spec.proposers[0], cluster.spec.proposers[1], cluster.spec.proposers[0]]);
  assert.equal(cluster.nodes[0]!.metrics.impeachments.length, 0);
});

test('a proposer that goes down is impeached; the chain keeps going', async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const cluster = await startCluster(tempDir(t, cleanup));
  cleanup.push(() => cluster.stop());
  await waitForHeight(cluster.nodes, 2n);
  const p0 = cluster.nodes.find((n) => n.name === 'p0')!;
  p0.down = true;
  const up = cluster.nodes.filter((n) => !n.down);
  const target = cluster.nodes[0]!.ledger.head.header.number + 6n;
  await waitForHeight(up, target);
  const ledger = cluster.nodes[0]!.ledger;
  const impeached = cluster.nodes[0]!.metrics.impeachments;
  assert.ok(impeached.length >= 2, `impeachments: ${impeached.length}`);
  assert.ok(impeached.every((i) => i.proposer === p0.signer.address && i.cause === 'timeout'));
  assert.ok(impeachmentCount(ledger.state, p0.signer.address) >= 2n);
  let sawImpeachmentBlock = false;
  for (let h = 3n; h <= target; h++) {
    const b = (await ledger.blockByNumber(h))!;
    if (b.header.seal.length === 0) {
      sawImpeachmentBlock = true;
      assert.equal(b.header.proposer, p0.signer.address);
      assert.equal(b.txs.length, 0);
    }
  }
  assert.ok(sawImpeachmentBlock);
  const hashes = new Set(up.map((n) => n.ledger.head.header.number >= target ? 'x' : 'y'));
  assert.deepEqual([...hashes], ['x']);
});

test('a committee with P-256 validators (TPM / secure element keys) agrees and certificates verify', async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const cluster = await startCluster(tempDir(t, cleanup), { p256Validators: 2 });
  cleanup.push(() => cluster.stop());
  assert.deepEqual(cluster.spec.committee.map((m) => m.keyType), ['p256', 'p256', 'secp256k1', 'secp256k1']);
  await waitForHeight(cluster.nodes, 4n);
  const ledger = cluster.nodes[3]!.ledger;
  const block = (await ledger.blockByNumber(3n))!;
  const cert = (await ledger.certificate(block.hash))!;
  verifyCertificate(cert, 1337n, 3n, block.hash, cluster.spec.committee);
  const hashes = await Promise.all(cluster.nodes.map(async (n) => (await n.ledger.blockByNumber(4n))!.hash));
  assert.equal(new Set(hashes).size, 1);
});

test('a pooled transaction no block can take does not make proposers propose before the period', { timeout: 60_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  // Long enough that an early block (one consensus round after its parent) cannot pass for a paced one.
  const periodMs = 600;
  const cluster = await startCluster(tempDir(t, cleanup), { periodMs, poolGasLimit: 60_000_000n });
  cleanup.push(() => cluster.stop());
  await waitForHeight(cluster.nodes, 2n);
  const raw = await user.signTransaction({ type: 2, chainId: 1337n, nonce: 0, to: '0x' + '77'.repeat(20), value: 1n, gasLimit: 30_000_001n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
  const tx = decodeSignedTx(getBytes(raw), 1337n);
  const proposers = cluster.nodes.filter((n) => n.name.startsWith('p'));
  for (const n of proposers) {
    n.pool.add(tx);
    n.node.transactionsArrived();
  }
  const v0 = cluster.nodes[0]!.ledger;
  const from = v0.head.header.number;
  await waitForHeight(cluster.nodes, from + 6n);
  // A block proposed at once follows its parent by one consensus round; paced ones by the period (less
  // a timer's rounding).
  for (let h = from + 1n; h <= from + 6n; h++) {
    const [block, parent] = await Promise.all([v0.blockByNumber(h), v0.blockByNumber(h - 1n)]);
    assert.ok(block!.header.timestamp - parent!.header.timestamp >= periodMs - 5, `height ${h} came ${block!.header.timestamp - parent!.header.timestamp} ms after its parent`);
    assert.equal(block!.txs.length, 0);
  }
  for (const n of proposers) assert.equal(n.pool.size, 1);
});

test('a transaction submitted at a validator reaches the proposers through the transport and commits everywhere', { timeout: 60_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const cluster = await startCluster(tempDir(t, cleanup), { periodMs: 5_000, timeoutMs: 20_000 });
  cleanup.push(() => cluster.stop());
  const to = '0x' + '78'.repeat(20);
  const raw = await user.signTransaction({ type: 2, chainId: 1337n, nonce: 0, to, value: ETH, gasLimit: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
  // Proposers wait out a long period unless a transaction arrives: this one reaches them only through
  // the transport, and they propose at once.
  cluster.nodes[0]!.node.submitTransactions([decodeSignedTx(getBytes(raw), 1337n)]);
  const deadline = Date.now() + 30_000;
  while (cluster.nodes.some((n) => n.ledger.state.account(to).balance !== ETH)) {
    assert.ok(Date.now() < deadline, 'the transfer committed on every node');
    await new Promise((r) => setTimeout(r, 20));
  }
});
