// The publisher of the MQTT exactly-once test and the ingest benchmark: sends 0..n-1 at QoS 1 with its own
// `seq` in each JSON payload, keeping `window` unacknowledged, and opens a stopped gateway's segments to read
// the seqs back, so lost and duplicated readings are counted by the publisher's numbering, not the gateway's.
import { join } from 'node:path';
import mqtt from 'mqtt';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { decodeSegment, keyNumber, prefixRange, P_SEGMENT } from '../../gateway/pipeline/pipeline-records.ts';
import { openPipelineDb } from '../../gateway/pipeline/segment-steps.ts';
import { loadOrCreateMasterKey, openSegment, unwrapKey } from '../../gateway/pipeline/segment-crypto.ts';

/** Topic of message `seq` among `topics` topics: sensors/t1/reading .. sensors/t<topics>/reading. */
export const seqTopic = (seq: number, topics: number): string => `sensors/t${(seq % topics) + 1}/reading`;

/**
 * Publish seq 0..n-1 ({sensor, ts, value, seq}) at QoS 1 over `topics` topics. Resolves once connected, with
 * the start time and a promise of the rate (messages/s) the broker acknowledged them at.
 */
export async function publishSeqs(url: string, n: number, opts: { window: number; topics: number; clientId: string }): Promise<{ t0: number; done: Promise<number> }> {
  const client = await mqtt.connectAsync(url, { clientId: opts.clientId, protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  const t0 = performance.now();
  const done = new Promise<number>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const more = (): void => {
      while (next < n && next - acked < opts.window) {
        const seq = next++;
        const payload = JSON.stringify({ sensor: `t${(seq % opts.topics) + 1}`, ts: Date.now(), value: 18 + (seq % 800) / 100, seq });
        client.publish(seqTopic(seq, opts.topics), payload, { qos: 1 }, (err) => {
          if (err) return reject(err);
          if (++acked < n) return more();
          const secs = (performance.now() - t0) / 1000;
          client.end(false, {}, () => resolve(Math.round(n / secs)));
        });
      }
    };
    more();
  });
  return { t0, done };
}

/** values.seq of every reading in the stored segments of a stopped gateway's data dir (pipeline/, content/, master.key). */
export async function storedSeqs(dataDir: string): Promise<unknown[]> {
  const db = await openPipelineDb(join(dataDir, 'pipeline'), { create: false });
  const store = await UnixFsContentStore.open(join(dataDir, 'content'));
  const master = await loadOrCreateMasterKey(join(dataDir, 'master.key'));
  const seqs: unknown[] = [];
  try {
    for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
      const rec = decodeSegment(keyNumber(k), v);
      if (rec.cid === undefined) continue;
      for (const r of openSegment(await store.get(rec.cid), unwrapKey(rec.wrappedKey, master, rec.manifestHash))) seqs.push(r.values?.['seq']);
    }
  } finally {
    await db.close();
    await store.close();
  }
  return seqs;
}

/** Seqs of 0..n-1 never stored, and those stored more than once (each listed once), from `storedSeqs`. */
export function countSeqs(seqs: readonly unknown[], n: number): { lost: number[]; twice: number[]; outOfRange: number } {
  const counts = new Uint32Array(n);
  let outOfRange = 0;
  for (const s of seqs) {
    if (typeof s === 'number' && Number.isInteger(s) && s >= 0 && s < n) counts[s]!++;
    else outOfRange++;
  }
  const lost: number[] = [];
  const twice: number[] = [];
  counts.forEach((c, seq) => (c === 0 ? lost.push(seq) : c > 1 ? twice.push(seq) : 0));
  return { lost, twice, outOfRange };
}
