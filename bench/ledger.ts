// Ledger benchmark: signature recoveries per second (native libsecp256k1 vs @noble), then transfers per
// second executed and committed by a real `datagate dev` process fed pre-signed transfers over JSON-RPC
// by 4 senders, with p50/p99 inclusion latency. Prints figures; asserts nothing.
//   npm run bench:ledger [-- --seconds 30 --senders 4 --batch 100 --modes solo,committee]
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Signature, Transaction } from 'ethers';
import WebSocket from 'ws';
import { bytesToHex, hexToBytes, keccak256, loadNativeSecp256k1, nobleSecp256k1 } from '../chain/crypto/index.ts';
import type { Secp256k1Backend } from '../chain/crypto/index.ts';
import { GATEWAY_NODE_FLAGS } from '../gateway/bin/node-flags.mjs';
import { DEV_MNEMONIC, deriveAccounts } from '../gateway/dev-accounts.ts';
import { tempDir } from '../test/helpers/chain.ts';
import { startDev } from '../test/helpers/dev-process.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    senders: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
    'skip-recover': { type: 'boolean', default: false },
    modes: { type: 'string', default: 'solo,committee' },
  },
});
const MODES = String(values.modes).split(',');
const SECONDS = Number(values.seconds);
const SENDERS = Number(values.senders);
const BATCH = Number(values.batch);

function recoveriesPerSecond(backend: Secp256k1Backend, sigs: { digest: Uint8Array; sig: Uint8Array; recid: 0 | 1 }[]): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < 2000) {
    for (const s of sigs) backend.recoverPublicKey(s.digest, s.sig, s.recid);
    n += sigs.length;
  }
  return n / ((performance.now() - start) / 1000);
}

function benchRecover(): void {
  const native = loadNativeSecp256k1();
  const key = keccak256(new TextEncoder().encode('bench key'));
  const sigs = Array.from({ length: 200 }, (_, i) => {
    const digest = keccak256(new Uint8Array([i, i >> 8]));
    const { signature, recid } = nobleSecp256k1.sign(digest, key);
    return { digest, sig: signature, recid };
  });
  const noble = recoveriesPerSecond(nobleSecp256k1, sigs);
  console.log(`secp256k1 recover, noble:  ${noble.toFixed(0)}/s`);
  if (native === null) {
    console.log('secp256k1 recover, native: unavailable (the optional secp256k1 addon is not installed)');
    return;
  }
  const fast = recoveriesPerSecond(native, sigs);
  console.log(`secp256k1 recover, native: ${fast.toFixed(0)}/s (${(fast / noble).toFixed(1)}x noble)`);
}

/** Pre-sign `count` transfers per sender with the native signer (ethers' own signing is too slow to feed the node). */
function presign(count: number): string[][] {
  const signer = loadNativeSecp256k1() ?? nobleSecp256k1;
  const accounts = deriveAccounts(DEV_MNEMONIC, SENDERS + 1);
  const to = accounts[SENDERS]!.address;
  return accounts.slice(0, SENDERS).map((account) => {
    const raws: string[] = [];
    for (let nonce = 0; nonce < count; nonce++) {
      const tx = Transaction.from({ type: 2, chainId: 1337n, nonce, to, value: 1n, gasLimit: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
      const { signature, recid } = signer.sign(hexToBytes(tx.unsignedHash), account.privateKey);
      tx.signature = Signature.from({ r: bytesToHex(signature.subarray(0, 32)), s: bytesToHex(signature.subarray(32)), yParity: recid });
      raws.push(tx.serialized);
    }
    return raws;
  });
}

function post(url: URL, agent: Agent, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve(data));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Peak resident memory of a process (Linux VmHWM), or 'unknown'. */
function peakRss(pid: number | undefined): string {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 'unknown' : `${(Number(m[1]) / 1024).toFixed(0)} MiB`;
  } catch {
    return 'unknown';
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function benchThroughput(label: string, devArgs: string[]): Promise<void> {
  console.log(`\n== datagate dev ${devArgs.join(' ') || '(default: 4 validators, 2 proposers, RPC follower)'}: ${label}`);
  const perSender = Math.ceil((SECONDS * 6000) / SENDERS);
  console.log(`pre-signing ${perSender * SENDERS} transfers (${SENDERS} senders)...`);
  const t0 = performance.now();
  const raws = presign(perSender);
  console.log(`  signed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const dir = tempDir({ after: () => {} });
  const config = join(dir, 'bench.json');
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), txpool: { maxTotal: 200_000, maxPerSender: 100_000 }, log: { level: 'warn', format: 'json' } }));
  // As `npm start` and the datagate shebang run it, unless the caller says otherwise.
  process.env.DATAGATE_DEV_NODE_ARGS ??= GATEWAY_NODE_FLAGS.join(' ');
  console.log(`node flags: ${process.env.DATAGATE_DEV_NODE_ARGS || '(none)'}`);
  const node = await startDev(['--config', config, '--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn', ...devArgs]);
  try {
    const url = new URL(node.rpcUrl);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let committed = 0;
    const deadline = performance.now() + SECONDS * 1000;
    let firstBlockAt = 0;
    let lastBlockAt = 0;

    // Inclusion: newHeads over WebSocket, then the block's transaction hashes.
    const ws = new WebSocket(node.wsUrl);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
    let reqId = 100;
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { method?: string; params?: { result: { number: string } }; result?: { transactions?: string[] } };
      if (msg.method === 'eth_subscription') {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: reqId++, method: 'eth_getBlockByNumber', params: [msg.params!.result.number, false] }));
      } else if (msg.result && typeof msg.result === 'object' && Array.isArray(msg.result.transactions)) {
        const now = performance.now();
        if (now > deadline) return;
        for (const h of msg.result.transactions) {
          const at = sentAt.get(h);
          if (at === undefined) continue;
          latencies.push(now - at);
          committed++;
        }
        if (msg.result.transactions.length > 0) {
          if (firstBlockAt === 0) firstBlockAt = now;
          lastBlockAt = now;
        }
      }
    });

    let accepted = 0;
    let rejected = 0;
    const start = performance.now();
    await Promise.all(
      raws.map(async (list) => {
        const agent = new Agent({ keepAlive: true, maxSockets: 2 });
        for (let i = 0; i < list.length && performance.now() < deadline; i += BATCH) {
          const chunk = list.slice(i, i + BATCH);
          const hashes = chunk.map((raw) => bytesToHex(keccak256(hexToBytes(raw))));
          const now = performance.now();
          for (const h of hashes) sentAt.set(h, now);
          const body = JSON.stringify(chunk.map((raw, j) => ({ jsonrpc: '2.0', id: j, method: 'eth_sendRawTransaction', params: [raw] })));
          const res = JSON.parse(await post(url, agent, body)) as { error?: unknown }[];
          for (const r of res) if (r.error === undefined) accepted++; else rejected++;
          if (rejected > 0 && rejected < 300) console.log('  rejection:', JSON.stringify(res.find((r) => r.error !== undefined)));
        }
        agent.destroy();
      }),
    );
    const sendSeconds = (performance.now() - start) / 1000;
    // Let the node finish what it accepted before the deadline.
    while (performance.now() < deadline + 1000 && committed < accepted) await new Promise((r) => setTimeout(r, 100));
    ws.close();
    const window = (Math.min(lastBlockAt, deadline) - start) / 1000;
    latencies.sort((a, b) => a - b);
    console.log(`sent: ${accepted} accepted, ${rejected} rejected in ${sendSeconds.toFixed(1)} s (${(accepted / sendSeconds).toFixed(0)}/s offered)`);
    console.log(`committed: ${committed} transfers in ${window.toFixed(1)} s = ${(committed / window).toFixed(0)} transfers/s`);
    console.log(`inclusion latency: p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`);
    console.log(`node peak RSS: ${peakRss(node.child.pid)}`);
    if (committed === 0) console.log('node output (nothing committed):\n' + node.output().split('\n').slice(-15).join('\n'));
    if (process.env.BENCH_LOG_LEVEL !== undefined) writeFileSync('/tmp/bench-node.log', node.output());
  } finally {
    await node.stop();
  }
}

if (!values['skip-recover']) benchRecover();
for (const mode of MODES) {
  if (mode === 'solo') await benchThroughput('one node validates and proposes: the ledger alone', ['--solo']);
  else await benchThroughput('LBFT committee in one process: every block executed by 7 ledgers on 2 cores', []);
}
