// The pipeline queue as records on disk (docs/architecture.md "Pipeline", layout in pipeline-records.ts):
// each group commit writes its readings as ONE queue batch record (0x08), numbered by its first reading's
// queue number, instead of one record per reading; schema 1 databases may still hold one-reading records
// (0x02), read back first. A segment takes readings of many batches, and a batch's readings go to the
// segments of several streams, so a batch leaves the queue piece by piece: the batch that seals a segment
// deletes each queue batch whose last reading it seals, and records in the consumed map (0x09) of each other
// batch it touches which of its readings are now sealed. Both in that one atomic batch, so after a crash a
// reading is either queued or in its segment, never both and never neither.
//
// Why: one LevelDB operation per reading written, and another to delete it, was the largest single cost
// of MQTT ingest (profiled: abstract-level's batch() copies and checks every operation). A queue batch is
// one put, and one delete once sealed.
import { prepareReading } from './pipeline-options.ts';
import {
  BATCH_ENTRY_HEADER, P_BATCH, P_CONSUMED, P_QUEUE, corrupt, decodeBatchEntry, decodeQueued, isConsumed, keyNumber, numberKey,
  prefixRange, splitBatch,
} from './pipeline-records.ts';
import type { Db, Op } from './segment-steps.ts';
import type { QueuedReading } from './segmenter.ts';

/** Queue bytes counted per reading of a batch: its entry and a key's worth of the record (an upper estimate). */
export function entryQueueBytes(readingBytes: number): number {
  return 9 + BATCH_ENTRY_HEADER + readingBytes;
}

/** A queue record as held in memory: which of its readings are still queued. */
interface QueueBatch {
  readonly first: number;
  readonly count: number;
  /** Readings not yet sealed. */
  live: number;
  /** The consumed map as on disk (null: none written). */
  consumed: Uint8Array | null;
  /** A schema 1 one-reading record (0x02). */
  readonly legacy: boolean;
}

/** What taking readings out of the queue writes, and how to record it in memory once written. */
export interface QueueRelease {
  readonly ops: Op[];
  commit(): void;
}

export class QueueBatches {
  /** Records with readings still queued, in queue order. */
  #batches: QueueBatch[] = [];
  #nextQueueNo = 0;

  /** The number the next reading taken gets. */
  get nextQueueNo(): number {
    return this.#nextQueueNo;
  }

  /** Number readings from `n` on at least (groups keyed by queue numbers outlive their queue batches). */
  startAtLeast(n: number): void {
    this.#nextQueueNo = Math.max(this.#nextQueueNo, n);
  }

  /** Hand out the next queue number. */
  take(): number {
    return this.#nextQueueNo++;
  }

  /** Queue records held (tests and status). */
  get records(): number {
    return this.#batches.length;
  }

  /** A batch of `count` readings from `first` on was written (0x08). */
  written(first: number, count: number): void {
    this.#add({ first, count, live: count, consumed: null, legacy: false });
  }

  #add(b: QueueBatch): void {
    const last = this.#batches.at(-1);
    if (last !== undefined && b.first < last.first + last.count) throw corrupt(`queue record ${b.first} overlaps record ${last.first}`, { first: b.first });
    this.#batches.push(b);
    this.#nextQueueNo = Math.max(this.#nextQueueNo, b.first + b.count);
  }

  /**
   * Read the queue back (schema 1 records first, then the batches), registering each record before its
   * readings are yielded, so the caller may seal while it reads. Throws PIPELINE_STATE_CORRUPT.
   */
  async *recover(db: Db): AsyncGenerator<QueuedReading> {
    // Read before any reading is yielded, so before anything is sealed: the maps are the ones of the batches below.
    const consumed = new Map<number, Uint8Array>();
    for await (const [k, v] of db.iterator(prefixRange(P_CONSUMED))) consumed.set(keyNumber(k), Uint8Array.from(v));
    for await (const [k, v] of db.iterator(prefixRange(P_QUEUE))) {
      const queueNo = keyNumber(k);
      const { arrivedAt, reading } = decodeQueued(v, queueNo);
      this.#add({ first: queueNo, count: 1, live: 1, consumed: null, legacy: true });
      yield queued(queueNo, reading, arrivedAt, k.length + v.length);
    }
    for await (const [k, v] of db.iterator(prefixRange(P_BATCH))) {
      const first = keyNumber(k);
      const entries = splitBatch(v, first);
      const map = consumed.get(first) ?? null;
      let live = 0;
      for (let i = 0; i < entries.length; i++) if (!isConsumed(map, i)) live++;
      if (live === 0) throw corrupt(`queue batch ${first} is wholly consumed but still there`, { first });
      this.#add({ first, count: entries.length, live, consumed: map, legacy: false });
      for (let i = 0; i < entries.length; i++) {
        if (isConsumed(map, i)) continue;
        const e = entries[i]!;
        yield queued(first + i, decodeBatchEntry(e, first + i), e.arrivedAt, entryQueueBytes(e.bytes.length));
      }
    }
  }

  /**
   * The writes that take the readings `queueNos` (increasing, all queued) out of the queue, for the batch that
   * seals their segment; `commit()` once that batch is written. Nothing changes in memory before.
   */
  release(queueNos: readonly number[]): QueueRelease {
    const ops: Op[] = [];
    const changes: { b: QueueBatch; live: number; consumed: Uint8Array | null }[] = [];
    let bi = this.#find(queueNos[0] ?? 0);
    for (let i = 0; i < queueNos.length;) {
      const b = this.#batches[bi];
      const no = queueNos[i]!;
      if (b === undefined || no < b.first) throw corrupt(`reading ${no} is not in the queue`, { queueNo: no });
      if (no >= b.first + b.count) {
        bi++;
        continue;
      }
      let map = b.legacy ? null : Uint8Array.from(b.consumed ?? new Uint8Array((b.count + 7) >> 3));
      let taken = 0;
      for (; i < queueNos.length && queueNos[i]! < b.first + b.count; i++) {
        const at = queueNos[i]! - b.first;
        if (map !== null) {
          if (isConsumed(map, at)) throw corrupt(`reading ${queueNos[i]} of queue batch ${b.first} is sealed twice`, { first: b.first });
          map[at >> 3] = (map[at >> 3] ?? 0) | (1 << (at & 7));
        }
        taken++;
      }
      const live = b.live - taken;
      if (live < 0) throw corrupt(`queue batch ${b.first} gives more readings than it holds`, { first: b.first });
      if (live === 0) {
        ops.push({ type: 'del', key: numberKey(b.legacy ? P_QUEUE : P_BATCH, b.first) });
        if (b.consumed !== null) ops.push({ type: 'del', key: numberKey(P_CONSUMED, b.first) });
        map = null;
      } else {
        ops.push({ type: 'put', key: numberKey(P_CONSUMED, b.first), value: map! });
      }
      changes.push({ b, live, consumed: map });
      bi++;
    }
    return {
      ops,
      commit: () => {
        let emptied = false;
        for (const c of changes) {
          c.b.live = c.live;
          c.b.consumed = c.consumed;
          if (c.live === 0) emptied = true;
        }
        if (emptied) this.#batches = this.#batches.filter((b) => b.live > 0);
      },
    };
  }

  /** Index of the record holding `queueNo` (or of the first record after it). */
  #find(queueNo: number): number {
    let lo = 0;
    let hi = this.#batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const b = this.#batches[mid]!;
      if (b.first + b.count <= queueNo) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Readings still queued in a database (verifyStore): schema 1 records and the unconsumed readings of the batches. */
export async function countQueued(db: Db): Promise<number> {
  let n = 0;
  for await (const _ of db.keys(prefixRange(P_QUEUE))) n++;
  const consumed = new Map<number, Uint8Array>();
  for await (const [k, v] of db.iterator(prefixRange(P_CONSUMED))) consumed.set(keyNumber(k), v);
  for await (const [k, v] of db.iterator(prefixRange(P_BATCH))) {
    const first = keyNumber(k);
    const map = consumed.get(first) ?? null;
    const entries = splitBatch(v, first);
    for (let i = 0; i < entries.length; i++) if (!isConsumed(map, i)) n++;
  }
  return n;
}

function queued(queueNo: number, raw: QueuedReading['reading'], arrivedAt: number, queueBytes: number): QueuedReading {
  const { reading, leaf, size } = prepareReading(raw);
  return { queueNo, reading, leaf, size, queueBytes, arrivedAt };
}
