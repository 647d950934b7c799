// Network benchmark: a committee of separate `datagate start` processes on this machine (docs/architecture.md
// "Provisioning a committee"), n validators + 2 proposers + 1 follower (+1 follower started late), all on
// 127.0.0.1. Per run it prints finality (proposal to commit, from the validators' own decision records in
// lbft_status), inclusion latency measured here (send -> block seen on the follower), committed transfers/s
// through the follower, catch-up of a fresh follower, and the RSS of every node. Validators run their data plane
// on simulated sensors, and the nodes run the compiled code (the npm script builds dist/ first), as on a gateway.
// Prints figures; asserts nothing.
//   npm run bench:network [-- --validators 4,7 --seconds 30 --period-ms 250]
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Signature, Transaction } from 'ethers';
import { bytesToHex, hexToBytes, keccak256, loadNativeSecp256k1, nobleSecp256k1, publicKeyToAddress } from '../chain/crypto/index.ts';
import { createLogger } from '../gateway/logger.ts';
import type { TestnetNodeSpec, TestnetProcess } from '../gateway/node/testnet.ts';
import { TESTNET_CHAIN_ID, provisionTestnet, startTestnetNode, stopTestnetNodes } from '../gateway/node/testnet.ts';

const HELP = `npm run bench:network [-- flags]
  --validators LIST   committee sizes to run, comma-separated (default 4,7); each run adds 2 proposers,
                      1 follower taking the load and 1 follower started last for the catch-up figure
  --seconds N         load window per run in seconds (default 30)
  --period-ms N       block period of the genesis (default 250)
  --senders N         funded sender accounts, transfers are spread over them round-robin (default 1000)
  --lanes N           concurrent HTTP keep-alive lanes sending JSON-RPC batches to the follower (default 4)
  --batch N           transfers per JSON-RPC batch (default 100, the RPC server's batch limit)
  --rate N            most transfers pre-signed per second of window (default 4000)
  --outstanding N     most transfers accepted but not yet seen in a block before the lanes wait (default 15000)
  --grow-seconds N    after the load, seconds with one validator stopped before the late follower starts (default 5)
  --catch-up-limit N  seconds the late follower gets to reach the head before its partial figure is printed (default 90)
  --sensors N         simulated sensor streams each validator's data plane reads (default 8; 0: no data plane)
  --sensor-rate N     readings per second of each stream (default 10)
  --keep              keep the testnet directories (default: removed)
  --help              this text`;

const { values } = parseArgs({
  options: {
    validators: { type: 'string', default: '4,7' },
    seconds: { type: 'string', default: '30' },
    'period-ms': { type: 'string', default: '250' },
    senders: { type: 'string', default: '1000' },
    lanes: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
    rate: { type: 'string', default: '4000' },
    outstanding: { type: 'string', default: '15000' },
    'grow-seconds': { type: 'string', default: '5' },
    'catch-up-limit': { type: 'string', default: '90' },
    sensors: { type: 'string', default: '8' },
    'sensor-rate': { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const SIZES = String(values.validators).split(',').map(Number);
const SECONDS = Number(values.seconds);
const PERIOD_MS = Number(values['period-ms']);
const SENDERS = Number(values.senders);
const LANES = Number(values.lanes);
const BATCH = Number(values.batch);
const RATE = Number(values.rate);
const OUTSTANDING = Number(values.outstanding);
const GROW_SECONDS = Number(values['grow-seconds']);
const CATCH_UP_LIMIT_S = Number(values['catch-up-limit']);
const SENSOR_STREAMS = Number(values.sensors);
const SENSOR_RATE = Number(values['sensor-rate']);
const MIB = 1024;

// Every process this script started, so that an error or Ctrl-C stops them all.
const running: TestnetProcess[] = [];
const dirs = new Set<string>();
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${sig}: stopping ${running.length} node process(es)...`);
    void stopTestnetNodes(running, 10_000).finally(() => {
      if (!values.keep) for (const d of dirs) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

interface Sender { readonly key: Uint8Array; readonly address: string }

function makeSenders(): Sender[] {
  const signer = loadNativeSecp256k1() ?? nobleSecp256k1;
  return Array.from({ length: SENDERS }, (_, i) => {
    const key = keccak256(new TextEncoder().encode(`bench/network sender ${i}`));
    return { key, address: publicKeyToAddress(signer.publicKey(key)) };
  });
}

/** Transfers in round-robin order (one per sender per round), so each sender's pending count stays small. */
function presign(senders: Sender[], count: number): { raw: string; hash: string }[] {
  const signer = loadNativeSecp256k1() ?? nobleSecp256k1;
  const to = '0x' + '42'.repeat(20);
  const out: { raw: string; hash: string }[] = [];
  for (let nonce = 0; out.length < count; nonce++) {
    for (const s of senders) {
      if (out.length >= count) break;
      const tx = Transaction.from({ type: 2, chainId: BigInt(TESTNET_CHAIN_ID), nonce, to, value: 1n, gasLimit: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n });
      const { signature, recid } = signer.sign(hexToBytes(tx.unsignedHash), s.key);
      tx.signature = Signature.from({ r: bytesToHex(signature.subarray(0, 32)), s: bytesToHex(signature.subarray(32)), yParity: recid });
      const raw = tx.serialized;
      out.push({ raw, hash: bytesToHex(keccak256(hexToBytes(raw))) });
    }
  }
  return out;
}

function post(url: string, agent: Agent, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, timeout: 30_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve(data));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const probeAgent = new Agent({ keepAlive: true, maxSockets: 4 });
async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const body = JSON.parse(await post(url, probeAgent, JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }))) as { result?: T; error?: { message: string } };
  if (body.error !== undefined) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}
const head = async (n: TestnetNodeSpec): Promise<number> => Number(await rpc<string>(n.rpcUrl, 'eth_blockNumber'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

function memory(pid: number | undefined): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / MIB, hwm: kb('VmHWM') / MIB };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

interface RunResult { n: number; finalityP50: number; finalityP99: number; decisions: number; inclP50: number; inclP99: number; tps: number; caughtUp: number; catchUpS: number; syncRate: number; startS: number; maxValidatorHwm: number }

async function run(n: number, senders: Sender[], txs: { raw: string; hash: string }[]): Promise<RunResult> {
  console.log(`\n== n=${n} validators, 2 proposers, 1 follower (+1 late follower), period ${PERIOD_MS} ms, ${SECONDS} s window`);
  const dir = mkdtempSync(join(tmpdir(), `datagate-bench-network-${n}-`));
  dirs.add(dir);
  const started: TestnetProcess[] = [];
  try {
    const { nodes } = await provisionTestnet({ dir, validators: n, proposers: 2, followers: 2, periodMs: PERIOD_MS, alloc: senders.map((s) => s.address), ...(SENSOR_STREAMS > 0 ? { sensors: { streams: SENSOR_STREAMS, rateHz: SENSOR_RATE } } : {}), logger: createLogger({ level: 'error' }) });
    const late = nodes.find((x) => x.name === 'follower-1')!;
    const follower = nodes.find((x) => x.name === 'follower-0')!;
    const validator = nodes.find((x) => x.name === 'validator-0')!;
    const t0 = performance.now();
    await Promise.all(nodes.filter((x) => x !== late).map(async (x) => {
      const p = await startTestnetNode(x);
      running.push(p);
      started.push(p);
    }));
    console.log(`started ${started.length} processes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Wait for blocks on the follower before loading.
    const h0 = await head(follower);
    while ((await head(follower)) < h0 + 2) await sleep(100);

    // Finality: each validator records proposal -> commit per decided height; lbft_status shows the last one.
    const finality = new Map<string, number>();
    // Inclusion: when this script sent a transfer, and when its block appeared on the follower.
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let committed = 0;
    let accepted = 0;
    let rejected = 0;
    let firstRejection = '';
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    let scanned = await head(follower);
    let done = false;

    const pollFinality = async () => {
      while (!done) {
        try {
          const s = await rpc<{ lastDecision: { height: string; totalMs: number | null } | null }>(validator.rpcUrl, 'lbft_status');
          if (s.lastDecision?.totalMs != null) finality.set(s.lastDecision.height, s.lastDecision.totalMs);
        } catch { /* a probe that failed is one sample fewer */ }
        await sleep(Math.max(20, PERIOD_MS / 5));
      }
    };
    const scanBlocks = async () => {
      while (!done) {
        const top = await head(follower).catch(() => scanned);
        for (let h = scanned + 1; h <= top; h++) {
          const block = await rpc<{ transactions: string[] } | null>(follower.rpcUrl, 'eth_getBlockByNumber', ['0x' + h.toString(16), false]).catch(() => null);
          if (block === null) break;
          const now = performance.now();
          if (now > deadline) { done = true; break; }
          for (const hash of block.transactions) {
            const at = sentAt.get(hash);
            if (at === undefined) continue;
            latencies.push(now - at);
            committed++;
          }
          scanned = h;
        }
        if (performance.now() > deadline) done = true;
        await sleep(50);
      }
    };
    let next = 0;
    const lane = async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      while (!done && performance.now() < deadline && next < txs.length) {
        if (accepted - committed > OUTSTANDING) { await sleep(20); continue; }
        const chunk = txs.slice(next, next + BATCH);
        next += chunk.length;
        const now = performance.now();
        for (const t of chunk) sentAt.set(t.hash, now);
        const body = JSON.stringify(chunk.map((t, j) => ({ jsonrpc: '2.0', id: j, method: 'eth_sendRawTransaction', params: [t.raw] })));
        const res = JSON.parse(await post(follower.rpcUrl, agent, body)) as { error?: { message: string } }[] | { error: { message: string } };
        if (!Array.isArray(res)) throw new Error(`batch refused: ${res.error.message}`);
        for (const r of res) {
          if (r.error === undefined) accepted++;
          else { rejected++; firstRejection ||= r.error.message; }
        }
      }
      agent.destroy();
    };
    await Promise.all([pollFinality(), scanBlocks(), ...Array.from({ length: LANES }, lane)]);
    const window = (performance.now() - start) / 1000;
    if (next >= txs.length) console.log(`note: all ${txs.length} pre-signed transfers were sent before the window ended (raise --rate)`);

    // RSS at the end of the load.
    const mem = started.map((p) => ({ name: p.name, role: p.role, ...memory(p.child.pid) }));

    // Catch-up: one validator stopped, the chain grows on, then the late follower syncs from genesis.
    const victim = started.find((p) => p.name === 'validator-0')!;
    await stopTestnetNodes([victim]);
    await sleep(GROW_SECONDS * 1000);
    const target = await head(follower);
    const spawnAt = performance.now();
    const lateProc = await startTestnetNode(late);
    running.push(lateProc);
    started.push(lateProc);
    const upAt = performance.now();
    let lateHead = 0;
    while ((lateHead = await head(late).catch(() => 0)) < target) {
      if (performance.now() - upAt > CATCH_UP_LIMIT_S * 1000) break;
      await sleep(20);
    }
    const doneAt = performance.now();
    const catchUpS = (doneAt - spawnAt) / 1000;
    const syncS = (doneAt - upAt) / 1000;
    const reached = Math.min(lateHead, target);
    const startS = (upAt - spawnAt) / 1000;

    const fin = [...finality.values()].sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    const tps = committed / window;
    console.log(`sent: ${accepted} accepted, ${rejected} rejected${firstRejection ? ` (first: ${firstRejection})` : ''}`);
    console.log(`committed through the follower: ${committed} transfers in ${window.toFixed(1)} s = ${tps.toFixed(0)} transfers/s   (goal at n=4: >= 2,000/s)`);
    console.log(`finality, proposal -> commit (validator-0's lbft_status decision records, ${fin.length} heights): p50 ${pct(fin, 50).toFixed(1)} ms, p99 ${pct(fin, 99).toFixed(1)} ms   (goal at n=4: p50 < 50 ms)`);
    console.log(`inclusion latency, client-side (batch sent -> block seen on the follower, polled every 50 ms): p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`);
    if (reached < target) console.log(`catch-up INCOMPLETE: the late follower reached ${reached} of ${target} blocks within --catch-up-limit ${CATCH_UP_LIMIT_S} s`);
    console.log(`catch-up: late follower reached height ${reached} (head ${target}) in ${catchUpS.toFixed(2)} s from spawn (${startS.toFixed(2)} s process start, ${syncS.toFixed(2)} s syncing = ${(reached / syncS).toFixed(1)} blocks/s), validator-0 stopped`);
    const rate = reached / syncS;
    if (reached === target && reached > 0) console.log(`  extrapolated (not measured) to 10,000 blocks at this rate: ${(startS + 10_000 / rate).toFixed(1)} s   (goal: < 10 s; these blocks carry the load's transfers)`);
    else console.log('  no extrapolation to 10,000 blocks: the catch-up did not finish (goal: < 10 s)');
    const dataPlane = SENSOR_STREAMS > 0 ? `validators with their data plane reading ${SENSOR_STREAMS} simulated streams at ${SENSOR_RATE} Hz` : 'no data plane';
    console.log(`RSS at the end of the load (VmRSS / VmHWM, MiB; ${dataPlane}; goal for validators: < 150 MiB):`);
    for (const m of mem) console.log(`  ${m.name.padEnd(12)} ${m.rss.toFixed(0).padStart(5)} / ${m.hwm.toFixed(0).padStart(5)}`);
    const maxValidatorHwm = Math.max(...mem.filter((m) => m.role === 'validator').map((m) => m.hwm));
    return { n, finalityP50: pct(fin, 50), finalityP99: pct(fin, 99), decisions: fin.length, inclP50: pct(latencies, 50), inclP99: pct(latencies, 99), tps, caughtUp: reached, catchUpS, syncRate: rate, startS, maxValidatorHwm };
  } finally {
    await stopTestnetNodes(started, 10_000);
    for (const p of started) running.splice(running.indexOf(p), 1);
    if (values.keep) console.log(`testnet kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const senders = makeSenders();
  const count = SECONDS * RATE;
  const t0 = performance.now();
  const txs = presign(senders, count);
  console.log(`pre-signed ${txs.length} transfers from ${senders.length} senders in ${((performance.now() - t0) / 1000).toFixed(1)} s (${loadNativeSecp256k1() === null ? 'noble' : 'native'} secp256k1)`);
  const results: RunResult[] = [];
  for (const n of SIZES) results.push(await run(n, senders, txs));
  console.log('\n  n | finality p50/p99 ms | inclusion p50/p99 ms | transfers/s | catch-up                          | max validator VmHWM');
  for (const r of results) {
    console.log(`${String(r.n).padStart(3)} | ${r.finalityP50.toFixed(1).padStart(8)} / ${r.finalityP99.toFixed(1).padEnd(8)} | ${r.inclP50.toFixed(0).padStart(8)} / ${r.inclP99.toFixed(0).padEnd(9)} | ${r.tps.toFixed(0).padStart(11)} | ${r.caughtUp} blocks in ${r.catchUpS.toFixed(2)} s (${r.syncRate.toFixed(1)} blocks/s) | ${r.maxValidatorHwm.toFixed(0)} MiB`);
  }
  console.log('goals: finality p50 < 50 ms at n=4; >= 2,000 transfers/s at n=4; 10,000 blocks caught up < 10 s; validator RSS < 150 MiB');
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await stopTestnetNodes(running, 10_000);
  probeAgent.destroy();
}
