// MQTT into segments end to end: readings published at QoS 1 to mosquitto while `datagate dev` (reading
// them into its durable pipeline, PUBACK only after the fsync) is killed with SIGKILL and restarted; at the
// end every published reading is in a stored segment exactly once (the crash window between fsync and
// PUBACK itself is forced in mqtt-exactly-once.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { decodeSegment, keyNumber, prefixRange, P_SEGMENT } from '../../gateway/pipeline/pipeline-records.ts';
import { openPipelineDb } from '../../gateway/pipeline/segment-steps.ts';
import { loadOrCreateMasterKey, openSegment, unwrapKey } from '../../gateway/pipeline/segment-crypto.ts';
import { startDev, type DevProcess } from '../helpers/dev-process.ts';
import { mosquittoSkipReason, startMosquitto } from '../helpers/mosquitto.ts';

/** Every reading value of `stream` in the stored segments of `dataDir` (node stopped). */
async function storedValues(dataDir: string, stream: string): Promise<number[]> {
  const db = await openPipelineDb(join(dataDir, 'pipeline'), { create: false });
  const store = await UnixFsContentStore.open(join(dataDir, 'content'));
  const master = await loadOrCreateMasterKey(join(dataDir, 'master.key'));
  const out: number[] = [];
  try {
    for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
      const rec = decodeSegment(keyNumber(k), v);
      if (rec.stream !== stream || rec.cid === undefined) continue;
      const readings = openSegment(await store.get(rec.cid), unwrapKey(rec.wrappedKey, master, rec.manifestHash));
      for (const r of readings) out.push(r.value!);
    }
  } finally {
    await db.close();
    await store.close();
  }
  return out;
}

test('QoS 1 readings published while the gateway is killed and restarted all end up in segments, once', { skip: mosquittoSkipReason() }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-mqtt-e2e-'));
  const broker = await startMosquitto({ persistence: true });
  t.after(async () => {
    await broker.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = join(dir, 'gateway.json');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: join(dir, 'node'),
      pipeline: { segmentSeconds: 1 },
      sensors: { sources: [{ kind: 'mqtt', name: 'field', url: broker.url, subscriptions: [{ topic: 'e2e/+', stream: 'e2e/${1}', payload: 'number', qos: 1 }] }] },
    }),
  );
  let node: DevProcess = await startDev(['--config', config]);
  // Let the gateway's persistent session exist before publishing, so the broker queues for it while it is down.
  await new Promise((r) => setTimeout(r, 1000));
  const publisher = await mqtt.connectAsync(broker.url, { clientId: 'e2e-publisher' });
  const N = 600;
  const publishing = (async () => {
    for (let i = 0; i < N; i++) {
      await publisher.publishAsync('e2e/a', String(i), { qos: 1 });
      await new Promise((r) => setTimeout(r, 8));
    }
  })();
  for (let kill = 0; kill < 3; kill++) {
    await new Promise((r) => setTimeout(r, 1200));
    await node.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    node = await startDev(['--config', config]);
  }
  await publishing;
  await publisher.endAsync();
  // Give the gateway time to drain what the broker kept for it, then stop it cleanly (it seals its queue).
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await node.stop('SIGTERM'), 0, node.output().slice(-2000));

  const values = await storedValues(join(dir, 'node'), 'e2e/a');
  const seen = new Map<number, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !seen.has(i));
  assert.deepEqual(missing, [], `${missing.length} published readings missing`);
  const duplicates = [...seen].filter(([, c]) => c > 1).map(([v]) => v);
  assert.deepEqual(duplicates, [], 'readings stored twice');
});
