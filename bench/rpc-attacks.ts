// RPC abuse benchmark: runs the attacks of issue 10 against a real `datagate dev` process (with the gateway's
// heap flags) and prints, for each, how the attack was answered, the node's RSS before / at peak / after, and
// the latency of an honest client polling eth_blockNumber meanwhile. Prints figures; asserts nothing.
//   npm run bench:rpc [-- --bodies 60 --ws 40 --ws-seconds 30]
import { writeFileSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { GATEWAY_NODE_FLAGS } from '../gateway/bin/node-flags.mjs';
import { tempDir } from '../test/helpers/chain.ts';
import { rpcCall, startDev, type DevProcess } from '../test/helpers/dev-process.ts';

const { values } = parseArgs({
  options: {
    bodies: { type: 'string', default: '60' },
    ws: { type: 'string', default: '40' },
    'ws-seconds': { type: 'string', default: '30' },
  },
});
const BODIES = Number(values.bodies);
const WS_CLIENTS = Number(values.ws);
const WS_SECONDS = Number(values['ws-seconds']);
const MiB = 1024 * 1024;

/** The node's resident memory, NaN once it is gone (an attack may kill it). */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `attack` while an honest client polls eth_blockNumber every 50 ms and RSS is sampled every 20 ms;
 * prints the attack's outcome with RSS (before, peak, 5 s after) and the honest client's worst latency.
 */
async function measure(node: DevProcess, label: string, attack: () => Promise<string>): Promise<void> {
  const pid = node.child.pid!;
  const before = rssMiB(pid);
  let peak = before;
  let running = true;
  const latencies: number[] = [];
  let failures = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid) || 0)), 20);
  const honest = (async () => {
    while (running) {
      const t = performance.now();
      try {
        const res = await rpcCall(node.rpcUrl, 'eth_blockNumber');
        if (res.result === undefined) failures++;
      } catch {
        failures++;
      }
      latencies.push(performance.now() - t);
      await sleep(50);
    }
  })();
  const headBefore = Number((await rpcCall(node.rpcUrl, 'eth_blockNumber')).result);
  const t0 = performance.now();
  let outcome: string;
  try {
    outcome = await attack();
  } catch (err) {
    outcome = `attack failed: ${String(err)}`;
  }
  const took = performance.now() - t0;
  running = false;
  await honest;
  await sleep(5000);
  clearInterval(sampler);
  const after = rssMiB(pid);
  const headAfter = Number((await rpcCall(node.rpcUrl, 'eth_blockNumber').catch(() => ({ result: NaN }))).result);
  latencies.sort((a, b) => a - b);
  const p50 = latencies[Math.floor(latencies.length / 2)] ?? NaN;
  const max = latencies.at(-1) ?? NaN;
  const alive = node.child.exitCode === null && node.child.signalCode === null;
  console.log(`\n== ${label}`);
  console.log(`  outcome: ${outcome} (${took.toFixed(0)} ms)`);
  console.log(`  node RSS: ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB peak, ${after.toFixed(0)} MiB 5 s after; ${alive ? 'alive' : 'DEAD'}`);
  console.log(`  honest eth_blockNumber: ${latencies.length} calls, p50 ${p50.toFixed(1)} ms, max ${max.toFixed(0)} ms, ${failures} failed`);
  console.log(`  chain: ${headAfter - headBefore} blocks committed in the ${((performance.now() - t0) / 1000).toFixed(1)} s of attack and settling`);
}

async function post(url: string, body: string): Promise<{ code?: number; took: number }> {
  const t = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = (await res.json()) as { error?: { code: number } };
  return { code: json.error?.code, took: performance.now() - t };
}

function bigBody(url: URL, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function main(): Promise<void> {
  const dir = tempDir({ after: () => {} });
  const config = join(dir, 'bench.json');
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), log: { level: 'warn', format: 'json' } }));
  process.env.DATAGATE_DEV_NODE_ARGS ??= GATEWAY_NODE_FLAGS.join(' ');
  console.log(`node flags: ${process.env.DATAGATE_DEV_NODE_ARGS || '(none)'}`);
  const node = await startDev(['--config', config, '--log-level', 'warn']);
  try {
    await sleep(5000);
    const url = node.rpcUrl;

    // Payloads are built before each measurement: building them would stall the honest client, which shares
    // this process's event loop.
    const call = (method: string, params: unknown[]) => JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
    const pcts = Array.from({ length: 100_000 }, (_, i) => i / 1000);
    const feeHistory = call('eth_feeHistory', ['0x400', 'latest', pcts]);
    await measure(node, 'eth_feeHistory, 1024 blocks x 100,000 reward percentiles', async () => `error ${(await post(url, feeHistory)).code}`);

    const addresses = Array.from({ length: 100_000 }, (_, i) => '0x' + i.toString(16).padStart(40, '0'));
    const logs = call('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest', address: addresses }]);
    await measure(node, 'eth_getLogs from block 0, 100,000 addresses', async () => `error ${(await post(url, logs)).code}`);

    const allowed = call('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest', address: addresses.slice(0, 1000) }]);
    await measure(node, 'eth_getLogs from block 0, 1,000 addresses (the most allowed)', async () => {
      const head = Number((await rpcCall(url, 'eth_blockNumber')).result);
      const r = await post(url, allowed);
      return `${r.code === undefined ? 'answered' : `error ${r.code}`}, ${head} blocks scanned`;
    });

    const body = Buffer.from(call('eth_chainId', ['x'.repeat(5 * MiB - 200)]));
    await measure(node, `${BODIES} concurrent 5 MiB request bodies`, async () => {
      const statuses = await Promise.all(Array.from({ length: BODIES }, () => bigBody(new URL(url), body)));
      const count = (s: number) => statuses.filter((x) => x === s).length;
      return `${count(200)} answered 200, ${count(503)} refused 503, ${BODIES - count(200) - count(503)} other`;
    });

    await measure(node, `${WS_CLIENTS} WebSocket clients with 1,000 newHeads subscriptions each that stop reading`, async () => {
      const clients: WebSocket[] = [];
      const droppedBefore = (node.output().match(/closing slow WebSocket consumer/g) ?? []).length;
      const subscribe = (k: number) => JSON.stringify(Array.from({ length: 100 }, (_, j) => ({ jsonrpc: '2.0', id: k * 100 + j, method: 'eth_subscribe', params: ['newHeads'] })));
      for (let i = 0; i < WS_CLIENTS; i++) {
        const ws = new WebSocket(node.wsUrl);
        ws.on('error', () => {});
        await new Promise((r) => ws.once('open', r));
        let answered = 0;
        const subscribed = new Promise<void>((resolve) =>
          ws.on('message', () => {
            if (++answered === 10) resolve();
          }),
        );
        for (let k = 0; k < 10; k++) ws.send(subscribe(k));
        await subscribed;
        // From here on the client reads nothing: every block adds ~1,000 notifications to its backlog.
        (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
        clients.push(ws);
      }
      await sleep(WS_SECONDS * 1000);
      const dropped = (node.output().match(/closing slow WebSocket consumer/g) ?? []).length - droppedBefore;
      for (const ws of clients) ws.terminate();
      return `${WS_CLIENTS} connected; after ${WS_SECONDS} s the node had dropped ${dropped} as slow consumers`;
    });
  } finally {
    const exit = await node.stop();
    console.log(`node exit: ${exit}`);
    if (exit !== 0) console.log(`last node output:\n${node.output().slice(-600)}`);
  }
}

await main();
