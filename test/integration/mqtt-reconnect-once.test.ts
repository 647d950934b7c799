// MQTT exactly once at speed, across lost connections and crashes, counted by the publisher's own sequence
// numbers: a publisher sends 0..N-1 at QoS 1 (a window of 500 in flight) to a real mosquitto run with the
// shipped settings; the gateway's ingest path (test/helpers/mqtt-pipeline-child.ts 'pump': MqttDriver with PUBACKs
// deferred until the group commit, pumpInto, Pipeline as DeliveryLog) reads them through a TCP relay that the
// test cuts mid-stream (PUBACKs in flight are lost with the connection, as with a keepalive timeout) and is
// SIGKILLed and restarted. Every seq must be stored exactly once; segments are opened to count them.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/chain.ts';
import { mosquittoSkipReason, startMosquitto } from '../helpers/mosquitto.ts';
import { countSeqs, publishSeqs, storedSeqs } from '../helpers/seq-publisher.ts';

const CHILD = fileURLToPath(new URL('../helpers/mqtt-pipeline-child.ts', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP relay to 127.0.0.1:`port` whose cut() resets every connection at once, dropping what is in flight. */
async function relay(port: number): Promise<{ url: string; cut(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = createConnection({ host: '127.0.0.1', port });
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const own = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `mqtt://127.0.0.1:${own}`,
    cut: () => {
      const n = sockets.size;
      for (const s of sockets) s.resetAndDestroy();
      return n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The gateway child: its `durable` reports, `flushed`, and how to stop it. */
function startChild(url: string, base: string): { proc: ChildProcess; ready: Promise<void>; lastChange: () => number; ingested: () => number; output: () => string; exited: Promise<void> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, url, base, '0', 'pump'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let last = Date.now();
  let lastIngested = -1;
  let readyResolve: () => void = () => {};
  const ready = new Promise<void>((r) => (readyResolve = r));
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('ready\n')) readyResolve();
    const m = /durable (\d+) \d+ \d+\n$/.exec(out);
    if (m !== null && Number(m[1]) !== lastIngested) {
      lastIngested = Number(m[1]);
      last = Date.now();
    }
    if (out.length > 200_000) out = out.slice(-100_000);
  });
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, ready, lastChange: () => last, ingested: () => Math.max(0, lastIngested), output: () => out, exited };
}

test('QoS 1 readings are stored exactly once at speed across cut connections and gateway crashes (by publisher seq)', { skip: mosquittoSkipReason(), timeout: 300_000 }, async (t) => {
  const shipped = readFileSync(fileURLToPath(new URL('../../deploy/mosquitto/datagate.conf', import.meta.url)), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('persistence'));
  const broker = await startMosquitto({ persistence: true, extra: shipped });
  const net = await relay(broker.port);
  const base = tempDir(t);
  let child = startChild(net.url, base);
  t.after(async () => {
    child.proc.kill('SIGKILL');
    await net.close();
    await broker.cleanup();
  });
  await child.ready;

  const N = 20_000;
  const WINDOW = 500;
  const { done: published } = await publishSeqs(broker.url, N, { window: WINDOW, topics: 10, clientId: 'once-seq-publisher' });

  // Cut the gateway's connection six times and crash the gateway twice while the messages flow.
  let cuts = 0;
  let ingestedBefore = 0; // by the children killed so far, as last reported
  for (const step of ['cut', 'cut', 'crash', 'cut', 'cut', 'crash', 'cut', 'cut']) {
    await sleep(700);
    if (step === 'cut') {
      cuts += net.cut();
    } else {
      child.proc.kill('SIGKILL');
      await child.exited;
      ingestedBefore += child.ingested();
      child = startChild(net.url, base);
      await child.ready;
    }
  }
  const t0 = Date.now();
  await published;
  // Drained: every seq reported durable, or (a killed child's last report can be short) nothing new for 15 s.
  const deadline = Date.now() + 120_000;
  while (ingestedBefore + child.ingested() < N && Date.now() - child.lastChange() < 15_000) {
    assert.ok(Date.now() < deadline, `the gateway did not drain:\n${child.output().slice(-2000)}`);
    await sleep(200);
  }
  t.diagnostic(`drained ${Date.now() - t0} ms after the disruptions`);
  const report = /durable (\d+) (\d+) (\d+)\n(?![\s\S]*durable)/.exec(child.output());
  child.proc.kill('SIGTERM');
  await child.exited;
  assert.match(child.output(), /flushed/, child.output().slice(-2000));
  assert.ok(cuts >= 4, `the relay cut ${cuts} connections`);

  const { lost, twice, outOfRange } = countSeqs(await storedSeqs(base), N);
  assert.equal(outOfRange, 0, 'every stored reading carries a publisher seq');
  t.diagnostic(`last run: ingested ${report?.[1]}, commits ${report?.[2]}, reconnects ${report?.[3]}; connections cut ${cuts}`);
  assert.deepEqual(lost.slice(0, 20), [], `${lost.length} seqs lost`);
  assert.deepEqual(twice.slice(0, 20), [], `${twice.length} seqs stored twice`);
});
