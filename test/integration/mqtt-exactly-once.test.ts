// MQTT exactly once across a crash, with a real mosquitto: the gateway process (MqttDriver feeding a durable
// Pipeline, PUBACK after the fsync) kills itself with SIGKILL right after a reading is durable and before
// its PUBACK, the one window where the broker must redeliver a message that is already stored (DUP set,
// same packet id). With the pipeline as the driver's DeliveryLog each published value is stored exactly once
// and seq stays gap-free; without it the same crashes store values twice (so the test can tell).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { verifyStore } from '../../gateway/pipeline/verify-store.ts';
import { decodeSegment, keyNumber, prefixRange, P_SEGMENT } from '../../gateway/pipeline/pipeline-records.ts';
import { openPipelineDb } from '../../gateway/pipeline/segment-steps.ts';
import { loadOrCreateMasterKey, openSegment, unwrapKey } from '../../gateway/pipeline/segment-crypto.ts';
import { tempDir } from '../helpers/chain.ts';
import { mosquittoSkipReason, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts';

const CHILD = fileURLToPath(new URL('../helpers/mqtt-pipeline-child.ts', import.meta.url));

/** Run the child until it dies (crashAfter > 0) or until SIGTERM after `drainMs` (crashAfter 0); returns its stdout. */
function runChild(url: string, base: string, crashAfter: number, mode: 'dedup' | 'no-dedup', drainMs = 1500): Promise<{ out: string; signal: string | null; code: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, base, String(crashAfter), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (crashAfter === 0 && out.includes('ready\n') && !out.includes('drain')) {
      out += 'drain\n';
      setTimeout(() => child.kill('SIGTERM'), drainMs);
    }
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ out: out + err, signal, code });
    }),
  );
}

async function storedValues(base: string): Promise<number[]> {
  const db = await openPipelineDb(join(base, 'pipeline'), { create: false });
  const store = await UnixFsContentStore.open(join(base, 'content'));
  const master = await loadOrCreateMasterKey(join(base, 'master.key'));
  const values: number[] = [];
  try {
    for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
      const rec = decodeSegment(keyNumber(k), v);
      if (rec.cid === undefined) continue;
      for (const r of openSegment(await store.get(rec.cid), unwrapKey(rec.wrappedKey, master, rec.manifestHash))) values.push(r.value!);
    }
  } finally {
    await db.close();
    await store.close();
  }
  return values;
}

/** Publish 0..n-1 at QoS 1 (all queued by the broker for the gateway's session), crash the gateway `crashes` times mid-stream, drain, count. */
async function scenario(broker: Mosquitto, base: string, mode: 'dedup' | 'no-dedup', n: number, crashes: number): Promise<{ counts: Map<number, number>; values: number[] }> {
  // First run: creates the persistent session (subscribed), then is stopped cleanly with nothing to do.
  const first = await runChild(broker.url, base, 0, mode, 200);
  assert.match(first.out, /flushed/, first.out);
  const publisher = await mqtt.connectAsync(broker.url, { clientId: `once-publisher-${mode}`, protocolVersion: 4 });
  for (let i = 0; i < n; i++) await publisher.publishAsync('once/a', String(i), { qos: 1 });
  await publisher.endAsync();
  for (let c = 0; c < crashes; c++) {
    const run = await runChild(broker.url, base, 7 + c * 11, mode);
    assert.equal(run.signal, 'SIGKILL', `run ${c} should have killed itself:\n${run.out.slice(-2000)}`);
  }
  const last = await runChild(broker.url, base, 0, mode, 2500);
  assert.match(last.out, /flushed/, last.out);
  const values = await storedValues(base);
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return { counts, values };
}

test('a crash between storing a QoS 1 reading and its PUBACK stores nothing twice (pipeline as DeliveryLog)', { skip: mosquittoSkipReason() }, async (t) => {
  // The broker settings deploy/ ships (raised queue limits: mosquitto's defaults drop QoS 1 messages beyond
  // 1000 queued per client); startMosquitto sets persistence and its location itself.
  const shipped = readFileSync(fileURLToPath(new URL('../../deploy/mosquitto/datagate.conf', import.meta.url)), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('persistence'));
  assert.ok(shipped.some((l) => l.startsWith('max_queued_messages')), 'deploy/mosquitto/datagate.conf sets max_queued_messages');
  const broker = await startMosquitto({ persistence: true, extra: shipped });
  t.after(() => broker.cleanup());
  const N = 400;
  const CRASHES = 4;

  const base = tempDir(t);
  const { counts } = await scenario(broker, join(base, 'dedup'), 'dedup', N, CRASHES);
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !counts.has(i));
  const twice = [...counts].filter(([, c]) => c > 1).map(([v]) => v);
  assert.deepEqual(missing, [], 'every published value is stored');
  assert.deepEqual(twice, [], 'no value is stored twice');
  const store = await UnixFsContentStore.open(join(base, 'dedup', 'content'));
  const report = await verifyStore({ dir: join(base, 'dedup', 'pipeline'), contentStore: store, masterKeyPath: join(base, 'dedup', 'master.key') });
  await store.close();
  assert.equal(report.readings, N);
  assert.deepEqual([report.gaps, report.duplicates, report.corrupt], [0, 0, 0], report.details.join('\n'));

  // The same crashes without the DeliveryLog: the redelivered messages are stored a second time.
  const plain = await scenario(broker, join(base, 'plain'), 'no-dedup', N, CRASHES);
  const doubled = [...plain.counts].filter(([, c]) => c > 1).length;
  assert.ok(doubled >= CRASHES, `without the DeliveryLog each crash should store its message twice; ${doubled} values were`);
});
