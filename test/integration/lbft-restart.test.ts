// Members of a real in-process committee crash (their drivers stop mid-height without closing their WALs)
// and restart from their consensus WAL and double-sign guard state: a validator replays the height, resumes
// and rejoins; a proposer stopped right after signing a block's seal proposes that same block again after
// the restart (its guard returns the same seal) and never stops; and no restarted node charges its own
// downtime to a proposer; a guard refusal leaves a node silent, never stopped; a WAL from the earlier driver
// still replays. No signer ever signs anything conflicting.
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { headerHash, sealHash } from '../../chain/block.ts';
import type { ChainSpec } from '../../chain/index.ts';
import { Ledger, LbftNode, LbftRecorder, MemoryTransport, TxPool, Wal, validatorKeyOf } from '../../chain/index.ts';
import type { EngineBlock } from '../../chain/index.ts';
import { decodeEvent, encodeEvent, engineBlock } from '../../chain/lbft/codec.ts';
import type { LbftEvent, Message } from '../../chain/lbft/types.ts';
import type { SignPurpose } from '../../chain/signing.ts';
import { GuardedSigner, MemorySigner } from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';

interface Booted {
  readonly node: LbftNode;
  readonly ledger: Ledger;
  readonly recorder: LbftRecorder;
  /** Set while the member is crashed: the transport drops its messages both ways. */
  down: boolean;
}

/** A committee of 4 validators and one proposer on disk under a temp dir, with crash and restart. */
function committee(t: TestContext, timing: { periodMs: number; timeoutMs: number }) {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const validatorKeys = [0, 1, 2, 3].map((i) => new MemorySigner(new Uint8Array(32).fill(0x21 + i)));
  const proposerKey = new MemorySigner(new Uint8Array(32).fill(0x51));
  const spec: ChainSpec = {
    chainId: 1337n,
    baseFee: 1_000_000_000n,
    gasLimit: 30_000_000n,
    committee: validatorKeys.map(validatorKeyOf),
    proposers: [proposerKey.address],
    ...timing,
    genesisTimestamp: 0,
    alloc: new Map(),
  };
  const transport = new MemoryTransport(spec.committee.map((m) => m.address));
  const members = new Map<string, Booted>();
  /** Every signature each member's guard let out, by member name. */
  const signed = new Map<string, { purpose: string; height: bigint; round: number; hash: string }[]>();
  const fatal: unknown[] = [];
  const nodes: LbftNode[] = [];
  const ledgers: Ledger[] = [];
  const wals: Wal[] = [];
  cleanup.push(async () => {
    for (const n of nodes) await n.stop();
    for (const w of wals) await w.close().catch(() => {});
    for (const l of ledgers) await l.close().catch(() => {});
  });

  async function boot(name: string, inner: MemorySigner, afterSign?: (purpose: SignPurpose, member: Booted) => Promise<void>): Promise<Booted> {
    const ledger = await Ledger.open(join(dir, name, 'chain'), spec);
    const wal = await Wal.open(join(dir, name, 'wal'));
    const guard = await GuardedSigner.open({ inner, stateFile: join(dir, name, 'sign-state.json') });
    const log = signed.get(name) ?? [];
    signed.set(name, log);
    const recording = {
      keyType: guard.keyType,
      publicKey: guard.publicKey,
      address: guard.address,
      async sign(digest: Uint8Array, purpose: SignPurpose, context?: { height: bigint; round: number; hash?: Uint8Array }) {
        const sig = await guard.sign(digest, purpose, context);
        if (context?.hash) log.push({ purpose, height: context.height, round: context.round, hash: Buffer.from(context.hash).toString('hex') });
        const self = members.get(inner.address);
        if (afterSign !== undefined && self !== undefined) await afterSign(purpose, self);
        return sig;
      },
    };
    const pool = new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit });
    const recorder = new LbftRecorder();
    const node = new LbftNode({ ledger, signer: recording, transport, wal, pool, metrics: recorder, onFatal: (err) => fatal.push(err) });
    const m: Booted = { node, ledger, recorder, down: false };
    members.set(inner.address, m);
    transport.add({ address: inner.address, ledger, deliver: (msg: Message<EngineBlock>) => m.node.deliver(msg), get down() { return m.down; }, set down(v) { m.down = v; } });
    nodes.push(node);
    ledgers.push(ledger);
    wals.push(wal);
    await node.start();
    return m;
  }

  /** Crash `m`: its driver stops where it is; its WAL and guard files stay as they are on disk. */
  async function crash(m: Booted): Promise<void> {
    m.down = true;
    await m.node.stop();
    await m.ledger.close();
  }

  return { dir, validatorKeys, proposerKey, boot, crash, signed, fatal };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** No member's signer signed two different hashes for one (purpose, height, round). */
function assertNoConflicts(signed: ReadonlyMap<string, readonly { purpose: string; height: bigint; round: number; hash: string }[]>): void {
  for (const [name, log] of signed) {
    const seen = new Map<string, string>();
    for (const s of log) {
      const key = `${s.purpose}/${s.height}/${s.round}`;
      const prior = seen.get(key);
      assert.ok(prior === undefined || prior === s.hash, `${name}: conflicting ${key}`);
      seen.set(key, s.hash);
    }
  }
}

test('a validator restarted from its WAL and guard state rejoins without conflicting signatures', { timeout: 120_000 }, async (t) => {
  const c = committee(t, { periodMs: 50, timeoutMs: 200 });
  const nodes: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) nodes.push(await c.boot(`v${i}`, key));
  nodes.push(await c.boot('p0', c.proposerKey));
  const v0 = nodes[0]!;
  await waitFor(() => v0.ledger.head.header.number >= 5n, 'height 5');

  await c.crash(v0);
  const crashedAt = v0.ledger.head.header.number;
  const others = nodes.slice(1, 4).map((n) => n.ledger);
  await waitFor(() => others.every((l) => l.head.header.number >= crashedAt + 3n), 'the other validators to go on');

  // Restart it from the same directories: replay, resume, catch up by sync.
  const again = await c.boot('v0', c.validatorKeys[0]!);
  const target = others[0]!.head.header.number + 3n;
  await waitFor(() => [again.ledger, ...others].every((l) => l.head.header.number >= target), 'the restarted validator to catch up');
  const same = await Promise.all([again.ledger, ...others].map(async (l) => (await l.blockByNumber(target))!.hash));
  assert.equal(new Set(same).size, 1);
  assertNoConflicts(c.signed);
  assert.ok(c.signed.get('v0')!.length > 0);
  assert.deepEqual(c.fatal, []);
});

test('a proposer stopped right after sealing proposes that same block after its restart, and never stops', { timeout: 120_000 }, async (t) => {
  // A timeout above the time a restart takes on a loaded machine, so the sealed block usually makes it.
  const c = committee(t, { periodMs: 50, timeoutMs: 3000 });
  const nodes: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) nodes.push(await c.boot(`v${i}`, key));
  const crashedAt = new Set<bigint>();
  let reproposed = 0;
  let crashed: Promise<void> | null = null;
  // Like Ctrl-C landing between the seal's signature and the proposal: the driver stops mid-step. The seal
  // signed again after the restart (same height) is let through.
  const stopAfterSeal = async (purpose: SignPurpose, m: Booted) => {
    const height = m.ledger.head.header.number + 1n;
    if (purpose !== 'seal' || crashed !== null || height < 4n || crashedAt.has(height) || crashedAt.size >= 3) return;
    crashedAt.add(height);
    crashed = c.crash(m);
  };
  let p0 = await c.boot('p0', c.proposerKey, stopAfterSeal);
  const v0 = nodes[0]!.ledger;
  for (let i = 0; i < 3; i++) {
    await waitFor(() => crashed !== null, 'the proposer to sign a seal');
    await crashed;
    crashed = null;
    const sealed = c.signed.get('p0')!.filter((s) => s.purpose === 'seal').at(-1)!;
    // Back at once, with a new clock: the block of that height is the one it sealed, or I(h) when the
    // validators timed out first; never another block of this proposer.
    p0 = await c.boot('p0', c.proposerKey, stopAfterSeal);
    await waitFor(() => v0.head.header.number >= sealed.height, `height ${sealed.height} to be decided`);
    const block = (await v0.blockByNumber(sealed.height))!;
    if (block.header.seal.length === 0) continue;
    assert.equal(Buffer.from(sealHash(block.header)).toString('hex'), sealed.hash, `height ${sealed.height}: not the block sealed before the restart`);
    reproposed++;
  }
  assert.ok(reproposed > 0, 'no restarted proposer got its sealed block decided');
  const from = v0.head.header.number;
  await waitFor(() => v0.head.header.number >= from + 3n, 'three more heights');
  assert.equal(crashedAt.size, 3);
  assert.deepEqual(c.fatal, []);
  assert.equal(p0.node.status().signRefusals, 0);
  assertNoConflicts(c.signed);
});

test('a validator restarted after a long downtime does not impeach the proposer for it', { timeout: 120_000 }, async (t) => {
  // A timeout well above the time the five restarts take on a loaded machine, and a downtime above it.
  const c = committee(t, { periodMs: 50, timeoutMs: 4000 });
  const nodes: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) nodes.push(await c.boot(`v${i}`, key));
  const p0 = await c.boot('p0', c.proposerKey);
  // The whole committee goes down mid-height and stays down well past a round timeout.
  await waitFor(() => nodes[0]!.ledger.head.header.number >= 3n, 'height 3');
  for (const m of [...nodes, p0]) await c.crash(m);
  await new Promise((r) => setTimeout(r, 5000));
  const again: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) again.push(await c.boot(`v${i}`, key));
  await c.boot('p0', c.proposerKey);
  const from = again[0]!.ledger.head.header.number;
  await waitFor(() => again.every((m) => m.ledger.head.header.number >= from + 3n), 'three more heights');
  for (const m of again) assert.deepEqual(m.recorder.impeachments, [], 'a restarted validator impeached the proposer');
  assert.deepEqual(c.fatal, []);
  assertNoConflicts(c.signed);
});

test('a signature the guard refuses leaves the node silent for it, never stopped: the committee impeaches and goes on', { timeout: 120_000 }, async (t) => {
  const c = committee(t, { periodMs: 50, timeoutMs: 300 });
  // A data directory left by the old driver: the guard holds a seal for height 4 of a block never recorded.
  // (Its failing start on every later attempt is what this replaces.)
  await mkdir(join(c.dir, 'p0'), { recursive: true });
  const old = await GuardedSigner.open({ inner: c.proposerKey, stateFile: join(c.dir, 'p0', 'sign-state.json') });
  await old.sign(new Uint8Array(32).fill(1), 'seal', { height: 4n, round: 0, hash: new Uint8Array(32).fill(2) });
  const nodes: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) nodes.push(await c.boot(`v${i}`, key));
  const p0 = await c.boot('p0', c.proposerKey);
  const v0 = nodes[0]!.ledger;
  await waitFor(() => v0.head.header.number >= 7n, 'height 7');
  // Seals at heights 1-4 are refused (at or below the guard's last point): impeachment blocks there.
  for (const h of [1n, 2n, 3n, 4n]) assert.equal((await v0.blockByNumber(h))!.header.seal.length, 0, `height ${h} is not the impeachment block`);
  const later = await Promise.all([5n, 6n, 7n].map(async (h) => (await v0.blockByNumber(h))!.header.seal.length));
  assert.ok(later.some((n) => n > 0), 'the proposer did not propose again after the refusals');
  assert.equal(p0.node.status().signRefusals, 4, JSON.stringify(p0.recorder.rejections));
  assert.equal(p0.recorder.rejections['sign-conflict:seal'], 4, JSON.stringify(p0.recorder.rejections));
  assert.deepEqual(c.fatal, []);
});

test('a WAL from before seals were recorded apart (its built block already sealed) replays into the same proposal', { timeout: 120_000 }, async (t) => {
  const c = committee(t, { periodMs: 50, timeoutMs: 1000 });
  const nodes: Booted[] = [];
  for (const [i, key] of c.validatorKeys.entries()) nodes.push(await c.boot(`v${i}`, key));
  let crashed: Promise<void> | null = null;
  let height = 0n;
  await c.boot('p0', c.proposerKey, async (purpose, m) => {
    if (purpose !== 'seal' || crashed !== null || m.ledger.head.header.number < 3n) return;
    height = m.ledger.head.header.number + 1n;
    crashed = c.crash(m);
  });
  await waitFor(() => crashed !== null, 'the proposer to sign a seal');
  await crashed;
  // Rewrite p0's WAL as the earlier driver wrote it: 'built' carried the block with its seal.
  const seal = (await GuardedSigner.open({ inner: c.proposerKey, stateFile: join(c.dir, 'p0', 'sign-state.json') })).lastSigned('seal')!.signature;
  const walDir = join(c.dir, 'p0', 'wal');
  const events: LbftEvent<EngineBlock>[] = [];
  const before = await Wal.open(walDir);
  for await (const record of before.replay()) events.push(decodeEvent(record, 1337n));
  await before.close();
  await rm(walDir, { recursive: true });
  const rewritten = await Wal.open(walDir);
  for (const e of events) {
    if (e.type !== 'built' || e.height !== height) {
      await rewritten.append(encodeEvent(e));
      continue;
    }
    const header = { ...e.block.header, seal };
    await rewritten.append(encodeEvent({ ...e, block: engineBlock({ header, hash: headerHash(header), txs: e.block.txs }) }));
  }
  await rewritten.close();
  assert.ok(events.some((e) => e.type === 'built' && e.height === height));

  const p0 = await c.boot('p0', c.proposerKey);
  const v0 = nodes[0]!.ledger;
  await waitFor(() => v0.head.header.number >= height, `height ${height} to be decided`);
  assert.deepEqual((await v0.blockByNumber(height))!.header.seal, seal);
  assert.equal(p0.node.status().signRefusals, 0);
  assert.deepEqual(c.fatal, []);
  assertNoConflicts(c.signed);
});
