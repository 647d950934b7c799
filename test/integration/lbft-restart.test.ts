// A validator of a real in-process committee crashes (its driver stops mid-height without closing its WAL)
// and restarts from its consensus WAL and double-sign guard state: it replays the height, resumes, and the
// committee goes on with it; its signer never signs anything conflicting.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ChainSpec } from '../../chain/index.ts';
import { Ledger, LbftNode, MemoryTransport, TxPool, Wal, validatorKeyOf } from '../../chain/index.ts';
import type { EngineBlock } from '../../chain/index.ts';
import type { Message } from '../../chain/lbft/types.ts';
import { GuardedSigner, MemorySigner } from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';

test('a validator restarted from its WAL and guard state rejoins without conflicting signatures', async (t) => {
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
    periodMs: 50,
    timeoutMs: 200,
    genesisTimestamp: 0,
    alloc: new Map(),
  };
  const transport = new MemoryTransport(spec.committee.map((m) => m.address));
  const members = new Map<string, { node: LbftNode; down: boolean }>();
  const signed: { purpose: string; height: bigint; round: number; hash: string }[] = [];
  const ledgers: Ledger[] = [];
  const wals: Wal[] = [];

  async function boot(name: string, inner: MemorySigner): Promise<{ node: LbftNode; ledger: Ledger; wal: Wal }> {
    const ledger = await Ledger.open(join(dir, name, 'chain'), spec);
    const wal = await Wal.open(join(dir, name, 'wal'));
    const guard = await GuardedSigner.open({ inner, stateFile: join(dir, name, 'sign-state.json') });
    const recording = {
      keyType: guard.keyType,
      publicKey: guard.publicKey,
      address: guard.address,
      async sign(digest: Uint8Array, purpose: Parameters<GuardedSigner['sign']>[1], context?: { height: bigint; round: number; hash?: Uint8Array }) {
        const sig = await guard.sign(digest, purpose, context);
        if (name === 'v0' && context?.hash) signed.push({ purpose, height: context.height, round: context.round, hash: Buffer.from(context.hash).toString('hex') });
        return sig;
      },
    };
    const pool = new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit });
    const node = new LbftNode({ ledger, signer: recording, transport, wal, pool });
    const member = { node, down: false };
    members.set(inner.address, member);
    transport.add({ address: inner.address, ledger, deliver: (m: Message<EngineBlock>) => member.node.deliver(m), get down() { return member.down; }, set down(v) { member.down = v; } });
    ledgers.push(ledger);
    wals.push(wal);
    await node.start();
    return { node, ledger, wal };
  }

  const nodes = [];
  for (const [i, key] of validatorKeys.entries()) nodes.push(await boot(`v${i}`, key));
  nodes.push(await boot('p0', proposerKey));
  cleanup.push(async () => {
    for (const m of members.values()) await m.node.stop();
    for (const w of wals) await w.close().catch(() => {});
    for (const l of ledgers) await l.close().catch(() => {});
  });
  const waitFor = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const v0 = nodes[0]!;
  await waitFor(() => v0.ledger.head.header.number >= 5n, 'height 5');

  // Crash v0: its driver stops where it is; the WAL and guard files stay as they were on disk.
  const m0 = members.get(validatorKeys[0]!.address)!;
  m0.down = true;
  await v0.node.stop();
  const crashedAt = v0.ledger.head.header.number;
  await v0.ledger.close();
  const others = nodes.slice(1, 4).map((n) => n.ledger);
  await waitFor(() => others.every((l) => l.head.header.number >= crashedAt + 3n), 'the other validators to go on');

  // Restart it from the same directories: replay, resume, catch up by sync.
  const again = await boot('v0', validatorKeys[0]!);
  const target = others[0]!.head.header.number + 3n;
  await waitFor(() => [again.ledger, ...others].every((l) => l.head.header.number >= target), 'the restarted validator to catch up');
  const same = await Promise.all([again.ledger, ...others].map(async (l) => (await l.blockByNumber(target))!.hash));
  assert.equal(new Set(same).size, 1);

  // Its signer never signed two different hashes for one (purpose, height, round).
  const seen = new Map<string, string>();
  for (const s of signed) {
    const key = `${s.purpose}/${s.height}/${s.round}`;
    const prior = seen.get(key);
    assert.ok(prior === undefined || prior === s.hash, `conflicting ${key}`);
    seen.set(key, s.hash);
  }
  assert.ok(signed.length > 0);
});
