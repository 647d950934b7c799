// The segmenter cuts a segment before a reading would take its sealed envelope past maxSegmentBytes, so at
// the default 256 KiB every segment is one IPFS block; and it cuts no earlier than it must (within the size
// of one reading and a few bytes of header slack).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { CID } from 'multiformats/cid';
import { MemorySigner, MemoryP256Signer } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { prepareReading } from '../../gateway/pipeline/pipeline-options.ts';
import { sealReadings } from '../../gateway/pipeline/segment-crypto.ts';
import type { ClosedSegment, QueuedReading } from '../../gateway/pipeline/segmenter.ts';
import { Segmenter } from '../../gateway/pipeline/segmenter.ts';
import type { Reading } from '../../sensors/index.ts';
import { mulberry32 } from '../../sensors/index.ts';
import { tempDir } from '../helpers/chain.ts';

const K1 = new MemorySigner(new Uint8Array(32).fill(3));
const P256 = new MemoryP256Signer(new Uint8Array(32).fill(4));

/** Readings of one stream with shapes that change now and then (values with new names, units), so the schema grows. */
function* readings(stream: string, seed: number): Generator<Reading> {
  const rand = mulberry32(seed);
  for (let seq = 0; ; seq++) {
    const ts = 1_700_000_000_000 + seq * 10;
    const k = rand();
    if (k < 0.6) yield { stream, seq, ts, value: rand() * 100 };
    else if (k < 0.9) yield { stream, seq, ts, value: rand(), unit: `u${Math.floor(rand() * 40)}` };
    else yield { stream, seq, ts, values: Object.fromEntries(Array.from({ length: 1 + Math.floor(rand() * 4) }, (_, i) => [`name-${Math.floor(rand() * 30)}-${i}`, rand()])) };
  }
}

/** A reading's entry in the manifest schema, as segment-format.ts documents it. */
function shapeOf(r: Reading): string {
  const enc = new TextEncoder();
  let shape = 'value';
  if (r.values !== undefined) {
    const names = Object.keys(r.values).sort((a, b) => Buffer.compare(Buffer.from(enc.encode(a)), Buffer.from(enc.encode(b))));
    shape = `values(${names.map((n) => JSON.stringify(n)).join(',')})`;
  }
  return r.unit === undefined ? shape : `${shape} ${JSON.stringify(r.unit)}`;
}

function feed(segmenter: Segmenter, gen: Generator<Reading>, n: number): { closed: ClosedSegment[]; next: QueuedReading[] } {
  const closed: ClosedSegment[] = [];
  const all: QueuedReading[] = [];
  for (let i = 0; i < n; i++) {
    const reading = gen.next().value as Reading;
    const { leaf, size } = prepareReading(reading);
    const q: QueuedReading = { queueNo: i, reading, leaf, size, queueBytes: 0, arrivedAt: 0 };
    all.push(q);
    closed.push(...segmenter.add(q));
  }
  return { closed, next: all };
}

for (const [label, signer, max] of [['secp256k1, 256 KiB', K1, 262_144], ['P-256, 8 KiB', P256, 8192], ['secp256k1, 1 KiB', K1, 1024]] as const) {
  test(`segments sealed by ${label}: every envelope within the bound, none cut much early`, async () => {
    for (const stream of ['s', 'farm/greenhouse-7/temperature', 'ünï/'.repeat(30)]) {
      const segmenter = new Segmenter({ windowMs: 1e12, maxSegmentBytes: max });
      const { closed, next } = feed(segmenter, readings(stream, stream.length), max === 262_144 ? 30_000 : 3_000);
      assert.ok(closed.length >= 2, `${closed.length} segments closed`);
      let at = 0;
      for (const seg of closed) {
        assert.equal(seg.reason, 'size');
        const sealed = await sealReadings(seg.readings, signer);
        sealed.key.fill(0);
        assert.ok(sealed.envelope.length <= max, `${stream}: envelope of ${sealed.envelope.length} bytes over ${max}`);
        at += seg.count;
        const following = next[at]!;
        // The next reading did not fit: the bound is over by at most 64 bytes (numbers counted at 8 bytes, the
        // longer signature, header slack), beyond the next reading and the schema entry its shape would add.
        const shape = shapeOf(following.reading);
        const growth = seg.readings.summary.schema.split('; ').includes(shape) ? 0 : new TextEncoder().encode(shape).length + 2;
        assert.ok(sealed.envelope.length + following.size + growth + 64 > max, `${stream}: cut at ${sealed.envelope.length} of ${max} bytes, next reading ${following.size} (+${growth} schema)`);
      }
    }
  });
}

test('at the default size a sealed segment is one raw IPFS block', async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const store = await UnixFsContentStore.open(join(dir, 'content'));
  cleanup.push(() => store.close());
  const segmenter = new Segmenter({ windowMs: 1e12, maxSegmentBytes: 262_144 });
  const { closed } = feed(segmenter, readings('farm/temp', 1), 25_000);
  const sealed = await sealReadings(closed[0]!.readings, K1);
  const cid = CID.parse(await store.add(sealed.envelope));
  assert.equal(cid.code, 0x55, 'raw codec: the whole envelope is the block');
  assert.deepEqual(await store.get(cid.toString()), sealed.envelope);
});
