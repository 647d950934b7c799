// Block sync of a node that fell far behind (see docs/architecture.md, "Peers"): it catches up in batches,
// commits only blocks whose certificate a quorum signed, reports its progress over eth_syncing, and then
// follows consensus again.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Address, ChainSpec, CommittedBlock, LbftTransport } from '../../chain/index.ts';
import { createEthApi, engineBlock, Ledger, LbftNode, TxPool } from '../../chain/index.ts';
import type { EngineBlock } from '../../chain/lbft/codec.ts';
import type { Decided, Message } from '../../chain/lbft/types.ts';
import { tempDir } from '../helpers/chain.ts';
import { startCluster, waitForHeight } from '../helpers/lbft-cluster.ts';

const HTTP = { transport: 'http', connectionId: null } as const;
const FOLLOWER: Address = '0x' + 'f0'.repeat(20);

/** A follower on `transport` whose sync requests are recorded; `serve` may change what they return. */
async function follower(dir: string, spec: ChainSpec, transport: LbftTransport, serve?: (d: Decided<EngineBlock>[]) => Decided<EngineBlock>[]) {
  const ledger = await Ledger.open(join(dir, 'follower'), spec);
  const pool = new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit });
  const requests: { from: bigint; to: bigint; got: number }[] = [];
  const recording: LbftTransport = {
    broadcast: (from, m) => transport.broadcast(from, m),
    sendDecided: (from, m) => transport.sendDecided(from, m),
    sendTo: (to, m) => transport.sendTo(to, m),
    sendTransactions: (from, txs) => transport.sendTransactions(from, txs),
    fetchDecided: async (from, to) => {
      const got = (serve ?? ((d) => d))(await transport.fetchDecided(from, to));
      requests.push({ from, to, got: got.length });
      return got;
    },
  };
  const make = () => new LbftNode({ ledger, signer: null, address: FOLLOWER, transport: recording, wal: null, pool });
  const eth = (node: LbftNode) => createEthApi({ ledger, pool, clientVersion: 'test', maxLogRange: 1000, syncing: () => node.syncing(), peerCount: () => 5 });
  return { ledger, requests, make, eth };
}

test('a follower stopped while the committee made 2,000 blocks catches up in batches, reports it over eth_syncing, then follows consensus', { timeout: 300_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  // Blocks as fast as the committee agrees; proposers down later leave one impeachment block per timeout.
  const cluster = await startCluster(dir, { periodMs: 1, timeoutMs: 400 });
  cleanup.push(() => cluster.stop());
  const f = await follower(dir, cluster.spec, cluster.transport);
  cleanup.push(() => f.ledger.close());
  let node = f.make();
  cleanup.push(() => node.stop());
  const member = { address: FOLLOWER, ledger: f.ledger, deliver: (m: Message<EngineBlock>) => node.deliver(m), down: false };
  cluster.transport.add(member);
  await node.start();
  await waitForCondition(() => f.ledger.head.header.number >= 5n);

  member.down = true;
  await node.stop();
  const stoppedAt = f.ledger.head.header.number;
  await waitForHeight(cluster.nodes, stoppedAt + 2_000n, 240_000);

  node = f.make();
  const eth = f.eth(node);
  assert.equal(eth.net_peerCount!([], HTTP), '0x5');
  // The first block the sync commits: the loop is running, so eth_syncing must say where it is going.
  let during: unknown = null;
  const onBlock = ({ block }: CommittedBlock) => {
    if (during === null) during = { at: block.header.number, target: node.status().syncTarget, syncing: eth.eth_syncing!([], HTTP) };
  };
  f.ledger.on('block', onBlock);
  member.down = false;
  await node.start();
  const caughtUp = cluster.nodes[0]!.ledger.head.header.number;
  await waitForCondition(() => f.ledger.head.header.number >= caughtUp, 240_000);
  f.ledger.off('block', onBlock);

  const d = during as unknown as { at: bigint; target: bigint | null; syncing: { startingBlock: string; currentBlock: string; highestBlock: string } };
  assert.equal(d.at, stoppedAt + 1n);
  assert.ok(d.target !== null && d.target > stoppedAt + 2_000n, `sync target ${d.target} is beyond the 2,000 blocks missed`);
  assert.deepEqual(d.syncing, { startingBlock: `0x${stoppedAt.toString(16)}`, currentBlock: `0x${(stoppedAt + 1n).toString(16)}`, highestBlock: `0x${d.target!.toString(16)}` });
  // Batches of at most 32 heights, and far fewer requests than one per 16 heights.
  assert.ok(f.requests.length > 0 && f.requests.every((r) => r.to - r.from < 32n), 'every request asks for at most 32 heights');
  assert.ok(f.requests.filter((r) => r.got > 0).length >= 2_000 / 32, `${f.requests.length} requests`);

  // Then it follows consensus: with the proposers down the committee makes a block per timeout, which the
  // engine commits from its VALIDATE (not the sync loop: that only runs with a target set).
  for (const n of cluster.nodes) if (n.name.startsWith('p')) n.down = true;
  let byEngine = 0;
  f.ledger.on('block', () => {
    if (node.status().syncTarget === null) byEngine++;
  });
  await waitForCondition(() => byEngine >= 3);
  const deadline = f.ledger.head.header.number;
  await waitForCondition(() => node.status().syncTarget === null);
  assert.equal(eth.eth_syncing!([], HTTP), false);
  for (const h of [1n, stoppedAt + 1n, stoppedAt + 1_000n, deadline]) {
    assert.equal((await f.ledger.blockByNumber(h))!.hash, (await cluster.nodes[0]!.ledger.blockByNumber(h))!.hash, `height ${h}`);
  }
  member.down = true;
  await node.stop();
});

test('blocks served with a short or forged certificate are never committed; the sync retries and stop() ends it', { timeout: 120_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const cluster = await startCluster(dir, { periodMs: 1, timeoutMs: 2_000 });
  cleanup.push(() => cluster.stop());
  await waitForHeight(cluster.nodes, 40n, 60_000);
  const source = cluster.nodes[0]!.ledger;
  const evil = new Map<bigint, 'short' | 'forged'>();
  let honest = false;
  // A peer that hands over the real blocks, each with its certificate cut below a quorum or with one
  // signature replaced by another block's.
  const tamper = (blocks: Decided<EngineBlock>[]) =>
    honest
      ? blocks
      : blocks.map((d, i) => {
          const how = i % 2 === 0 ? 'short' : 'forged';
          evil.set(d.height, how);
          const signatures = how === 'short' ? d.certificate.signatures.slice(0, 2) : [{ ...d.certificate.signatures[0]!, signature: blocks[(i + 1) % blocks.length]!.certificate.signatures[0]!.signature }, ...d.certificate.signatures.slice(1)];
          return { ...d, certificate: { ...d.certificate, signatures } };
        });
  const f = await follower(dir, cluster.spec, cluster.transport, tamper);
  cleanup.push(() => f.ledger.close());
  const node = f.make();
  cleanup.push(() => node.stop());
  const eth = f.eth(node);
  await node.start();
  // A genuine VALIDATE of height 30 tells the follower how far behind it is.
  const block = (await source.blockByNumber(30n))!;
  node.deliver({ type: 'decided', height: 30n, block: engineBlock(block), certificate: (await source.certificate(block.hash))! });
  await waitForCondition(() => f.requests.length >= 3);
  assert.equal(f.ledger.head.header.number, 0n, 'nothing committed from the tampered answers');
  assert.ok(evil.size > 0);
  assert.equal(node.status().syncTarget, 30n);
  assert.deepEqual(eth.eth_syncing!([], HTTP), { startingBlock: '0x0', currentBlock: '0x0', highestBlock: '0x1e' });

  // Honest answers from now on: the retry catches up.
  honest = true;
  await waitForCondition(() => node.status().syncTarget === null && f.ledger.head.header.number >= 29n);
  for (let h = 1n; h <= 29n; h++) assert.equal((await f.ledger.blockByNumber(h))!.hash, (await source.blockByNumber(h))!.hash);
  assert.equal(eth.eth_syncing!([], HTTP), false);

  // A sync waiting out its backoff ends at stop().
  honest = false;
  node.deliver({ type: 'decided', height: 39n, block: engineBlock((await source.blockByNumber(39n))!), certificate: (await source.certificate((await source.blockByNumber(39n))!.hash))! });
  const before = f.requests.length;
  await waitForCondition(() => node.status().syncTarget !== null && f.requests.length >= before + 2);
  await node.stop();
  assert.equal(node.status().syncTarget, null);
});

async function waitForCondition(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
