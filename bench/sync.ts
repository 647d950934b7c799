// Block sync benchmark (see docs/architecture.md, "Peers"): builds a chain of --blocks empty blocks, each
// sealed by the proposer and certified by a quorum of a 4-member committee, in one ledger; then a fresh
// follower, on its own libp2p node (TCP on 127.0.0.1, Noise, Yamux), learns of the
// head from one VALIDATE and catches up through the sync protocol. Prints blocks/s of the catch-up against
// the goal (10,000 blocks in under 10 s); asserts nothing. The chain is built and served by a child process
// (this file with --serve), so the two ends do not share a JS thread.
//   npm run bench:sync [-- --blocks 10000 --batch 32]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { ChainSpec, CommitCertificate, Libp2pTransport } from '../chain/index.ts';
import { consensusDigest, createLibp2pTransport, engineBlock, headerHash, hexToBytes, Ledger, LbftNode, quorum, secp256k1BackendName, validatorKeyOf } from '../chain/index.ts';
import { sealHashDigest } from '../chain/ledger.ts';
import { decodeMessage, encodeMessage } from '../chain/net/wire.ts';
import { MemorySigner } from '../device/index.ts';

const { values } = parseArgs({
  options: { blocks: { type: 'string', default: '10000' }, batch: { type: 'string', default: '32' }, serve: { type: 'boolean', default: false }, dir: { type: 'string' } },
});
const BLOCKS = BigInt(values.blocks);
const BATCH = Number(values.batch);

const validators = [1, 2, 3, 4].map((i) => new MemorySigner(new Uint8Array(32).fill(0x10 + i)));
const proposer = new MemorySigner(new Uint8Array(32).fill(0x40));
const spec: ChainSpec = {
  chainId: 1337n,
  baseFee: 1_000_000_000n,
  gasLimit: 30_000_000n,
  committee: validators.map(validatorKeyOf),
  proposers: [proposer.address],
  periodMs: 1000,
  timeoutMs: 3000,
  genesisTimestamp: 0,
  alloc: new Map(),
};

/** Extend `ledger` by `count` empty blocks, each sealed and certified as the committee would. */
async function buildChain(ledger: Ledger, count: bigint): Promise<void> {
  const q = quorum(validators.length);
  for (let i = 0n; i < count; i++) {
    const candidate = ledger.buildBlock({ proposer: proposer.address, timestamp: ledger.head.header.timestamp + 1000, round: 0, txs: [] });
    const number = candidate.header.number;
    const seal = await proposer.sign(sealHashDigest(spec.chainId, candidate.header), 'seal');
    const header = { ...candidate.header, seal };
    const hash = headerHash(header);
    const digest = consensusDigest('commit', spec.chainId, number, 0, hexToBytes(hash));
    const signatures = [];
    for (const v of validators.slice(0, q)) signatures.push({ signer: v.address, signature: await v.sign(digest, 'commit') });
    const certificate: CommitCertificate = { height: number, round: 0, blockHash: hash, signatures };
    await ledger.commit({ ...candidate, header }, certificate);
  }
}

function transport(ledger: Ledger, genesisHash: string, signer: MemorySigner | null, bootstrap: string[], deliver: (m: Parameters<LbftNode['deliver']>[0]) => void): Promise<Libp2pTransport> {
  return generateKeyPair('Ed25519').then((privateKey) =>
    createLibp2pTransport({ privateKey, bootstrap, chainId: spec.chainId, genesisHash, committee: spec.committee, proposers: spec.proposers, signer, deliver, source: ledger, limits: { reconnectBaseMs: 100, maxSyncBatch: BATCH } }),
  );
}

/** The serving side (--serve): build the chain, serve it, print where to dial; runs until its parent ends it. */
async function serve(dir: string): Promise<void> {
  const source = await Ledger.open(join(dir, 'source'), spec);
  const t0 = performance.now();
  await buildChain(source, BLOCKS);
  const genesis = (await source.blockByNumber(0n))!.hash;
  const server = await transport(source, genesis, validators[0]!, [], () => {});
  const head = source.head;
  const certificate = (await source.certificate(head.hash))!;
  console.log(
    JSON.stringify({
      buildSeconds: (performance.now() - t0) / 1000,
      backend: secp256k1BackendName(),
      genesis,
      addr: server.multiaddrs().find((a) => a.includes('/ip4/127.0.0.1/'))!,
      head: encodeMessage({ type: 'decided', height: head.header.number, block: engineBlock(head), certificate }).toString(),
    }),
  );
  process.stdin.resume();
  process.stdin.on('end', () => void server.stop().then(() => source.close()).then(() => process.exit(0)));
}

/** The syncing side: a fresh follower that hears the head's VALIDATE and catches up from the server. */
async function catchUp(dir: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', '--blocks', values.blocks, '--batch', values.batch, '--dir', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the serving process exited with ${code} before it was ready`)));
  });
  const info = JSON.parse(first) as { buildSeconds: number; backend: string; genesis: string; addr: string; head: string };
  console.log(`built ${BLOCKS} blocks in ${info.buildSeconds.toFixed(1)} s in the serving process (secp256k1: ${info.backend})`);
  const announced = decodeMessage(Uint8Array.from(info.head.split(',').map(Number)), spec.chainId);
  const fresh = await Ledger.open(join(dir, 'fresh'), spec);
  let node: LbftNode | null = null;
  const client = await transport(fresh, info.genesis, null, [info.addr], (m) => node?.deliver(m));
  node = new LbftNode({ ledger: fresh, signer: null, address: '0x' + 'f0'.repeat(20), transport: client, wal: null, syncBatch: BATCH });
  while (!client.peers().some((p) => p.up)) await new Promise((r) => setTimeout(r, 10));
  await node.start();

  const t0 = performance.now();
  node.deliver(announced);
  let last = 0n;
  let lastAt = t0;
  while (fresh.head.header.number < announced.height) {
    await new Promise((r) => setTimeout(r, 50));
    const now = performance.now();
    if (now - lastAt >= 1000) {
      console.log(`  ${fresh.head.header.number} / ${announced.height} (${Math.round((Number(fresh.head.header.number - last) * 1000) / (now - lastAt))} blocks/s)`);
      last = fresh.head.header.number;
      lastAt = now;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const rate = Number(BLOCKS) / seconds;
  console.log(`caught up ${BLOCKS} blocks over libp2p (two processes, 127.0.0.1, batch ${BATCH}) in ${seconds.toFixed(2)} s: ${Math.round(rate)} blocks/s`);
  console.log(`goal 10,000 blocks in under 10 s (1,000 blocks/s): ${rate >= 1000 ? 'met' : 'not met'}`);
  await node.stop();
  await client.stop();
  await fresh.close();
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
}

if (values.serve) await serve(values.dir!);
else {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-bench-sync-'));
  try {
    await catchUp(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
