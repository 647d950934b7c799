// The libp2p peer transport between real nodes on 127.0.0.1 (see docs/architecture.md, "Peers"): a
// committee of 4 validators, a proposer and followers, each with its own libp2p node, ledger and LbftNode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { consensusDigest, createLibp2pTransport, decodeSignedTx, hexToBytes, engineBlock, PEER_PROTOCOLS } from '../../chain/index.ts';
import type { Libp2pTransport } from '../../chain/index.ts';
import type { EngineBlock } from '../../chain/index.ts';
import type { Message } from '../../chain/lbft/types.ts';
import { MemorySigner } from '../../device/index.ts';
import { frame } from '../../chain/net/frames.ts';
import { tempDir } from '../helpers/chain.ts';
import { ETH, startCluster, user, waitForHeight } from '../helpers/lbft-cluster.ts';
import type { NetNode } from '../helpers/libp2p-net.ts';
import { dialAddr, netSpec, startNetNode, stopNetNode, until } from '../helpers/libp2p-net.ts';

const bob = '0x' + 'b0'.repeat(20);

test('4 validators, a proposer and a follower commit blocks and a follower-submitted transfer with identical hashes; a late follower syncs', { timeout: 120_000 }, async (t) => {
  const nodes: NetNode[] = [];
  const dir = tempDir(t, [async () => { for (const n of nodes) await stopNetNode(n); }]);
  const { spec, validators, proposer } = netSpec();
  // Validators mesh among themselves; the proposer dials every validator; the follower knows only v0, so
  // its transaction reaches the proposer through v0.
  for (const [i, v] of validators.entries()) nodes.push(await startNetNode(dir, `v${i}`, spec, v, nodes.map((n) => dialAddr(n.transport))));
  const validatorAddrs = nodes.map((n) => dialAddr(n.transport));
  nodes.push(await startNetNode(dir, 'p0', spec, proposer, validatorAddrs));
  const follower = await startNetNode(dir, 'f0', spec, null, [validatorAddrs[0]!]);
  nodes.push(follower);
  await until('every validator to see 4 authenticated peers', () => nodes.slice(0, 4).every((n) => n.transport.peers().filter((p) => p.up).length >= 4));
  await until('the proposer to see the 4 validators', () => nodes[4]!.transport.peers().filter((p) => p.up && p.role === 'validator').length === 4);
  await until('the follower to be connected', () => follower.transport.peers().some((p) => p.up && p.role === 'validator'));

  const roles = new Map(nodes[0]!.transport.peers().map((p) => [p.address, p.role]));
  assert.equal(roles.get(proposer.address), 'proposer');
  assert.equal(roles.get(validators[1]!.address), 'validator');
  assert.equal(roles.get(null), 'follower');

  for (const n of nodes) await n.node.start();
  await until('height 3 everywhere', () => nodes.every((n) => n.ledger.head.header.number >= 3n), 60_000);

  const raw = await user.signTransaction({ type: 2, chainId: spec.chainId, nonce: 0, to: bob, value: ETH, gasLimit: 21_000n, maxFeePerGas: 2n * spec.baseFee, maxPriorityFeePerGas: 0n });
  follower.node.submitTransactions([decodeSignedTx(hexToBytes(raw), spec.chainId)]);
  await until('the transfer committed on every node', () => nodes.every((n) => n.ledger.state.account(bob).balance === ETH), 60_000);

  const height = nodes.reduce((min, n) => (n.ledger.head.header.number < min ? n.ledger.head.header.number : min), nodes[0]!.ledger.head.header.number);
  for (let h = 1n; h <= height; h++) {
    const hashes = new Set(await Promise.all(nodes.map(async (n) => (await n.ledger.blockByNumber(h))!.hash)));
    assert.equal(hashes.size, 1, `height ${h} has one hash on every node`);
  }

  // A follower started now, knowing only v2, catches up through the sync protocol.
  const late = await startNetNode(dir, 'f1', spec, null, [validatorAddrs[2]!]);
  nodes.push(late);
  await late.node.start();
  const target = nodes[0]!.ledger.head.header.number;
  await until(`the late follower to reach height ${target}`, () => late.ledger.head.header.number >= target, 60_000);
  for (let h = 1n; h <= target; h++) assert.equal((await late.ledger.blockByNumber(h))!.hash, (await nodes[0]!.ledger.blockByNumber(h))!.hash);
  assert.equal(late.ledger.state.account(bob).balance, ETH);
});

test("a peer outside the committee cannot get consensus messages to the driver; one forging another's message neither", { timeout: 60_000 }, async (t) => {
  const nodes: NetNode[] = [];
  const dir = tempDir(t, [async () => { for (const n of nodes) await stopNetNode(n); }]);
  const { spec, validators } = netSpec();
  const received: Message<EngineBlock>[] = [];
  // The victim records what its transport hands to the driver instead of running one.
  const victim = await startNetNode(dir, 'v0', spec, validators[0]!, [], (m) => received.push(m));
  nodes.push(victim);
  const outsider = new MemorySigner(new Uint8Array(32).fill(0x77));
  const rogue = await startNetNode(dir, 'rogue', spec, outsider, [dialAddr(victim.transport)]);
  const member = await startNetNode(dir, 'v1', spec, validators[1]!, [dialAddr(victim.transport)]);
  nodes.push(rogue, member);
  await until('both authenticated at the victim', () => victim.transport.peers().filter((p) => p.up).length === 2);
  // And the victim at both: a node sends nothing to a peer it has not authenticated yet.
  await until('the victim authenticated at both', () => [rogue, member].every((n) => n.transport.peers().some((p) => p.up && p.address === validators[0]!.address)));
  assert.deepEqual(victim.transport.peers().map((p) => p.role).sort(), ['follower', 'validator']);

  const hash = '0x' + '11'.repeat(32);
  const prepare = (sender: string, signature: Uint8Array = new Uint8Array(65)) => ({ type: 'prepare' as const, height: 1n, round: 0, sender, hash, signature });
  const genesis = engineBlock((await victim.ledger.blockByNumber(0n))!);
  const decided = { type: 'decided' as const, height: 0n, block: genesis, certificate: { height: 0n, round: 0, blockHash: genesis.hash, signatures: [] } };
  // The rogue addresses the victim as a validator; the member signs as someone else. Both are dropped, and
  // the decided block each sends after them (same stream, so in order) shows the drop was not a delay.
  const victimAddress = validators[0]!.address;
  rogue.transport.sendTo(victimAddress, prepare(outsider.address));
  rogue.transport.sendTo(victimAddress, decided);
  member.transport.sendTo(victimAddress, prepare(validators[2]!.address));
  member.transport.sendTo(victimAddress, decided);
  await until('both decided blocks to arrive', () => received.length >= 2);
  assert.deepEqual(received.map((m) => m.type), ['decided', 'decided']);
  // A member's own message, signed by its key, goes through; with a bad signature it would not.
  member.transport.sendTo(victimAddress, prepare(validators[1]!.address));
  const signature = await validators[1]!.sign(consensusDigest('prepare', spec.chainId, 1n, 0, hexToBytes(hash)), 'prepare', { height: 1n, round: 0, hash: hexToBytes(hash) });
  member.transport.sendTo(victimAddress, prepare(validators[1]!.address, signature));
  await until('the member prepare', () => received.length === 3);
  assert.equal(received[2]!.type, 'prepare');
});

test('garbage frames and an oversized frame get the peer disconnected', { timeout: 60_000 }, async (t) => {
  const nodes: NetNode[] = [];
  const dir = tempDir(t, [async () => { for (const n of nodes) await stopNetNode(n); }]);
  const { spec, validators } = netSpec();
  const victim = await startNetNode(dir, 'v0', spec, validators[0]!, []);
  const garbler = await startNetNode(dir, 'g', spec, null, [dialAddr(victim.transport)]);
  const big = await startNetNode(dir, 'b', spec, validators[1]!, [dialAddr(victim.transport)]);
  nodes.push(victim, garbler, big);
  await until('both authenticated', () => victim.transport.peers().filter((p) => p.up).length === 2);
  await until('the victim authenticated at both', () => [garbler, big].every((n) => n.transport.peers().some((p) => p.up)));
  const victimId = victim.transport.libp2p.peerId;

  const stream = await garbler.transport.libp2p.dialProtocol(victimId, PEER_PROTOCOLS.lbft);
  for (let i = 0; i < 3; i++) stream.send(frame(new TextEncoder().encode(`not a message ${i}`)));
  await until('the garbler disconnected', () => garbler.transport.libp2p.getConnections(victimId).length === 0);
  assert.notEqual(victim.transport.peers().find((p) => p.peerId === garbler.transport.peerId)?.up, true);

  const s2 = await big.transport.libp2p.dialProtocol(victimId, PEER_PROTOCOLS.txs);
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, 64 * 1024 * 1024);
  s2.send(header);
  await until('the oversized sender disconnected', () => big.transport.libp2p.getConnections(victimId).length === 0);
  // Banned for a while: its redials are refused.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(big.transport.libp2p.getConnections(victimId).length, 0);
});

test('a bootstrap peer that restarts is redialled and authenticated again', { timeout: 60_000 }, async (t) => {
  const nodes: NetNode[] = [];
  const restarted: Libp2pTransport[] = [];
  const dir = tempDir(t, [async () => { for (const r of restarted) await r.stop(); for (const n of nodes) await stopNetNode(n); }]);
  const { spec, validators } = netSpec();
  const genesis = await (async () => {
    const probe = await startNetNode(dir, 'probe', spec, null, []);
    nodes.push(probe);
    return (await probe.ledger.blockByNumber(0n))!.hash;
  })();
  const privateKey = await generateKeyPair('Ed25519');
  const start = (listen: string) =>
    createLibp2pTransport({ privateKey, listen: [listen], chainId: spec.chainId, genesisHash: genesis, committee: spec.committee, proposers: spec.proposers, signer: validators[1]!, deliver: () => {}, source: nodes[0]!.ledger });
  const first = await start('/ip4/127.0.0.1/tcp/0');
  const addr = dialAddr(first);
  const a = await startNetNode(dir, 'v0', spec, validators[0]!, [addr]);
  nodes.push(a);
  const bUp = () => a.transport.peers().find((p) => p.address === validators[1]!.address)?.up === true;
  await until('the bootstrap peer authenticated', bUp);
  await first.stop();
  await until('the bootstrap peer seen down', () => !bUp());
  restarted.push(await start(addr.replace(/\/p2p\/.*$/, '')));
  await until('the restarted bootstrap peer authenticated again', bUp);
});

test('sync hands over only blocks whose certificate a quorum of the committee signed', { timeout: 60_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  // A chain of a few blocks, made by an in-memory committee: the honest and the forging server answer from it.
  const cluster = await startCluster(join(dir, 'cluster'), { periodMs: 50 });
  cleanup.push(() => cluster.stop());
  await waitForHeight(cluster.nodes, 3n);
  const ledger = cluster.nodes[0]!.ledger;
  const genesisHash = (await ledger.blockByNumber(0n))!.hash;
  const serve = async (forge: boolean) =>
    createLibp2pTransport({
      privateKey: await generateKeyPair('Ed25519'),
      chainId: cluster.spec.chainId,
      genesisHash,
      committee: cluster.spec.committee,
      proposers: cluster.spec.proposers,
      signer: null,
      deliver: () => {},
      source: {
        head: ledger.head,
        blockByNumber: (n) => ledger.blockByNumber(n),
        // One signature short of a quorum: a forger without the committee's keys can do no better.
        certificate: async (hash) => {
          const c = (await ledger.certificate(hash))!;
          return forge ? { ...c, signatures: c.signatures.slice(0, 1) } : c;
        },
      },
    });
  for (const forge of [true, false]) {
    const server = await serve(forge);
    cleanup.push(() => server.stop());
    const client = await createLibp2pTransport({ privateKey: await generateKeyPair('Ed25519'), bootstrap: [dialAddr(server)], chainId: cluster.spec.chainId, genesisHash, committee: cluster.spec.committee, proposers: cluster.spec.proposers, signer: null, deliver: () => {}, source: ledger });
    cleanup.push(() => client.stop());
    await until('the client authenticated', () => client.peers().some((p) => p.up));
    const got = await client.fetchDecided(1n, 3n);
    if (forge) assert.equal(got.length, 0, 'no block with a forged certificate comes back');
    else assert.deepEqual(got.map((d) => d.block.hash), await Promise.all([1n, 2n, 3n].map(async (h) => (await ledger.blockByNumber(h))!.hash)));
  }
});
