// Memory of the libp2p peer transport (see docs/architecture.md, "Peers"): the RSS of a process with one
// libp2p node authenticated to 3 peers (each in its own process) and carrying consensus traffic, against
// the same process without libp2p. Prints figures, asserts nothing. Both children run with the heap flags
// of `npm start` and import the chain the same way, so the difference is what libp2p costs.
//   node --import tsx bench/network-rss.ts
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=256', '--expose-gc', '--import', 'tsx'];
const MIB = 1024 * 1024;
const GENESIS = '0x' + '00'.repeat(32);
const MESSAGES = 20_000;

type Role = 'baseline' | 'peer' | 'node';

async function child(role: Role, index: number, bootstrap: string[]): Promise<void> {
  const chain = await import('../chain/index.ts');
  const device = await import('../device/index.ts');
  const signers = [0, 1, 2, 3].map((i) => new device.MemorySigner(new Uint8Array(32).fill(0x10 + i)));
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const report = (extra: Record<string, unknown> = {}) => {
    const m = process.memoryUsage();
    console.log(JSON.stringify({ role, rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers, ...extra }));
  };
  if (role === 'baseline') {
    await settle();
    report();
    return;
  }
  const { generateKeyPair } = await import('@libp2p/crypto/keys');
  let received = 0;
  const transport = await chain.createLibp2pTransport({
    privateKey: await generateKeyPair('Ed25519'),
    bootstrap,
    chainId: 1337n,
    genesisHash: GENESIS,
    committee: signers.map(chain.validatorKeyOf),
    proposers: [],
    signer: signers[index]!,
    deliver: () => received++,
    source: { head: { header: { number: 0n } }, blockByNumber: async () => undefined, certificate: async () => undefined },
    limits: { ratePerSec: 1_000_000, burst: 1_000_000 },
  });
  if (role === 'peer') {
    console.log(JSON.stringify({ role, addr: transport.multiaddrs().find((a) => a.includes('127.0.0.1')) }));
    // Serve until the parent closes stdin.
    process.stdin.resume();
    await once(process.stdin, 'end');
    await transport.stop();
    return;
  }
  while (transport.peers().filter((p) => p.up).length < 3) await new Promise((r) => setTimeout(r, 20));
  const idle = process.memoryUsage().rss;
  // Consensus traffic: prepares to the 3 peers, in bursts the send queues absorb.
  const self = signers[0]!.address;
  for (let i = 0; i < MESSAGES; i++) {
    transport.broadcast(self, { type: 'prepare', height: BigInt(i), round: 0, sender: self, hash: '0x' + '11'.repeat(32), signature: new Uint8Array(65) });
    if (i % 500 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await settle();
  report({ rssConnectedIdle: idle, messages: MESSAGES, received });
  await transport.stop();
}

function run(role: Role, index = 0, bootstrap: string[] = []) {
  const p = spawn(process.execPath, [...FLAGS, SELF, role, String(index), ...bootstrap], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout! });
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    lines.once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>));
    p.once('exit', (code) => reject(new Error(`${role} exited with ${code} before reporting`)));
  });
  return { p, first };
}

async function main(): Promise<void> {
  const baseline = await run('baseline').first;
  const peers = [1, 2, 3].map((i) => run('peer', i));
  const addrs = await Promise.all(peers.map((x) => x.first.then((r) => r.addr as string)));
  const node = await run('node', 0, addrs).first;
  for (const x of peers) x.p.stdin!.end();
  await Promise.all(peers.map((x) => once(x.p, 'exit')));
  const mib = (v: unknown) => ((v as number) / MIB).toFixed(1);
  console.log(`baseline (chain imported, no libp2p): rss ${mib(baseline.rss)} MiB, heap ${mib(baseline.heapUsed)} MiB`);
  console.log(`libp2p node, 3 authenticated peers, idle: rss ${mib(node.rssConnectedIdle)} MiB`);
  console.log(`  after ${node.messages} prepares broadcast: rss ${mib(node.rss)} MiB, heap ${mib(node.heapUsed)} MiB, external ${mib(node.external)} MiB`);
  console.log(`libp2p costs ${mib((node.rss as number) - (baseline.rss as number))} MiB of RSS over the baseline`);
}

const [role, index, ...bootstrap] = process.argv.slice(2);
if (role === undefined) await main();
else await child(role as Role, Number(index), bootstrap);
