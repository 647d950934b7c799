// A committee of separate `datagate start` processes (gateway/node/testnet.ts) under faults: transfers through
// the follower commit on every node with identical blocks; kill -9 of a validator and of a proposer at random
// moments and their restart; SIGSTOP/SIGCONT of a validator; two of four validators frozen (no quorum: no
// progress, no fork) and thawed; a follower started long after genesis; a peer that
// sends garbage. After every scenario: the same chain on all nodes, no refused double signature, heights moving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, parseEther } from 'ethers';
import { createLogger } from '../../gateway/logger.ts';
import type { TestnetNodeSpec, TestnetProcess } from '../../gateway/node/testnet.ts';
import { provisionTestnet, startTestnetNode, stopTestnetNodes } from '../../gateway/node/testnet.ts';

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }), signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

const head = async (n: TestnetNodeSpec): Promise<number> => Number(await rpc<string>(n.rpcUrl, 'eth_blockNumber'));
const hashAt = async (n: TestnetNodeSpec, h: number): Promise<string | null> => (await rpc<{ hash: string } | null>(n.rpcUrl, 'eth_getBlockByNumber', ['0x' + h.toString(16), false]))?.hash ?? null;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every running node has block `h`, with the same hash. */
async function sameChainAt(nodes: readonly TestnetNodeSpec[], h: number, timeoutMs = 60_000): Promise<string> {
  return until(`every node at height ${h} with one hash`, timeoutMs, async () => {
    const hashes = await Promise.all(nodes.map((n) => hashAt(n, h)));
    if (hashes.some((x) => x === null)) return undefined;
    assert.equal(new Set(hashes).size, 1, `nodes disagree at height ${h}: ${hashes.join(' ')}`);
    return hashes[0]!;
  });
}

/** Heights move: the highest head among `nodes` grows by `by` within the limit. */
async function heightsMove(nodes: readonly TestnetNodeSpec[], by = 3, timeoutMs = 60_000): Promise<number> {
  const start = Math.max(...(await Promise.all(nodes.map(head))));
  return until(`heights to move ${by} past ${start}`, timeoutMs, async () => {
    const now = Math.min(...(await Promise.all(nodes.map(head))));
    return now >= start + by ? now : undefined;
  });
}

test('a testnet of separate processes: transfers, kill -9, SIGSTOP, a late follower and a garbage peer', { timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-testnet-'));
  const running: TestnetProcess[] = [];
  t.after(async () => {
    await stopTestnetNodes(running, 10_000);
    rmSync(dir, { recursive: true, force: true });
  });
  const sender = Wallet.createRandom();
  const { nodes } = await provisionTestnet({ dir, validators: 4, proposers: 2, followers: 2, periodMs: 300, timeoutMs: 1500, alloc: [sender.address], logger: createLogger({ level: 'error' }) });
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const late = byName.get('follower-1')!;
  const started = new Map<string, TestnetProcess>();
  const start = async (n: TestnetNodeSpec) => {
    const p = await startTestnetNode(n);
    running.push(p);
    started.set(n.name, p);
    return p;
  };
  for (const n of nodes) if (n !== late) await start(n);
  const live = () => nodes.filter((n) => started.has(n.name) && started.get(n.name)!.child.exitCode === null && started.get(n.name)!.child.signalCode === null);
  const follower = byName.get('follower-0')!;

  await t.test('blocks are made and every node has the same chain; the follower reports its peers and no sync', async () => {
    const h = await heightsMove(live(), 3);
    await sameChainAt(live(), h);
    // The follower dials the six enrolled nodes of the genesis' bootstrap list.
    await until('the follower connected to the 6 enrolled nodes', 60_000, async () => (Number(await rpc<string>(follower.rpcUrl, 'net_peerCount')) >= 6 ? true : undefined));
    assert.equal(await rpc<unknown>(follower.rpcUrl, 'eth_syncing'), false);
  });

  await t.test('a transfer sent to the follower commits on every node in the same block', async () => {
    const chainId = BigInt(await rpc<string>(follower.rpcUrl, 'eth_chainId'));
    const to = Wallet.createRandom().address;
    const raw = await sender.signTransaction({ type: 2, chainId, nonce: 0, to, value: parseEther('1'), gasLimit: 21_000, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
    const hash = await rpc<string>(follower.rpcUrl, 'eth_sendRawTransaction', [raw]);
    const receipt = await until('the receipt', 60_000, async () => (await rpc<{ blockNumber: string; blockHash: string; status: string } | null>(follower.rpcUrl, 'eth_getTransactionReceipt', [hash])) ?? undefined);
    assert.equal(receipt.status, '0x1');
    const blockHash = await sameChainAt(live(), Number(receipt.blockNumber));
    assert.equal(blockHash, receipt.blockHash);
    for (const n of live()) assert.equal(BigInt(await rpc<string>(n.rpcUrl, 'eth_getBalance', [to, 'latest'])), parseEther('1'), n.name);
  });

  await t.test('kill -9 of a validator and of a proposer at random moments; both come back and catch up', async () => {
    for (const name of ['validator-1', 'proposer-0']) {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 2000)));
      const p = started.get(name)!;
      p.child.kill('SIGKILL');
      await p.exited;
      await heightsMove(live(), 3);
      await start(byName.get(name)!);
    }
    const h = await heightsMove(live(), 3, 120_000);
    await sameChainAt(live(), h, 120_000);
  });

  await t.test('SIGSTOP of a validator: the other three go on; after SIGCONT it catches up', async () => {
    const p = started.get('validator-2')!;
    p.child.kill('SIGSTOP');
    try {
      await heightsMove(live().filter((n) => n.name !== 'validator-2'), 5);
    } finally {
      p.child.kill('SIGCONT');
    }
    const h = await heightsMove(live(), 2, 120_000);
    await sameChainAt(live(), h, 120_000);
  });

  await t.test('two of four validators frozen: no quorum, so no progress and no fork; thawed, the chain goes on', async () => {
    const frozen = ['validator-1', 'validator-2'].map((n) => started.get(n)!);
    for (const p of frozen) p.child.kill('SIGSTOP');
    try {
      const others = live().filter((n) => !frozen.some((f) => f.name === n.name));
      await new Promise((r) => setTimeout(r, 1500)); // a block already certified may still land
      const before = Math.max(...(await Promise.all(others.map(head))));
      await new Promise((r) => setTimeout(r, 5000));
      const after = Math.max(...(await Promise.all(others.map(head))));
      assert.ok(after <= before + 1, `heights moved without a quorum: ${before} -> ${after}`);
    } finally {
      for (const p of frozen) p.child.kill('SIGCONT');
    }
    const h = await heightsMove(live(), 3, 120_000);
    await sameChainAt(live(), h, 120_000);
  });

  await t.test('a follower started long after genesis syncs to the head', async () => {
    const target = await head(follower);
    assert.ok(target > 10, `the chain is at ${target}`);
    await start(late);
    await until(`the late follower past ${target}`, 120_000, async () => ((await head(late)) >= target ? true : undefined));
    await sameChainAt(live(), target);
  });

  await t.test('a peer that sends garbage to a validator changes nothing', async () => {
    const v0 = byName.get('validator-0')!;
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((done) => {
        const s = connect(v0.peerPort, '127.0.0.1', () => s.end(Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256)))));
        s.on('error', () => done());
        s.on('close', () => done());
        s.setTimeout(5000, () => s.destroy());
      });
    }
    const h = await heightsMove(live(), 3);
    await sameChainAt(live(), h);
  });

  await t.test('no node refused to double-sign, and every node stops cleanly on SIGTERM', async () => {
    const procs = [...started.values()];
    await stopTestnetNodes(procs, 30_000);
    for (const p of procs) {
      const log = readFileSync(join(p.dataDir, 'node.log'), 'utf8');
      assert.doesNotMatch(log, /SIGN_CONFLICT/, `${p.name} refused a conflicting signature`);
    }
    for (const p of procs.filter((x) => x.child.signalCode === null)) assert.equal(await p.exited, 0, `${p.name}: ${p.output().slice(-2000)}`);
  });
});
