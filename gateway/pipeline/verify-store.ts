// The check of a pipeline's data, offline (verifyStore: for tests, `datagate segments verify` on a stopped node,
// and after a power cut) and live (verifyPipeline: a running node's admin API). Opens every sealed and stored
// segment the way a buyer would (envelope from the database or the content store, key unwrapped under the
// master key, openSegment with all its checks), and checks per stream that seq runs on without gaps from one
// segment to the next within a driver run, and that no reading (stream + seq + ts) is stored twice.
//
// A live pipeline is a moving target. verifyPipeline checks the segment records as they were when it started
// (one LevelDB snapshot): segments stored by then are opened from the content store; segments sealed but not
// yet stored (their envelope is on its way from the pipeline database to the content store) are counted as
// in flight, not opened, and their seq ranges count as covered; a segment dropped by 'drop-oldest-unsold' while
// the check runs counts as dropped; segments sealed after the start are left for the next check.
import { stat } from 'node:fs/promises';
import { bytesToHex, hasCode } from '../../chain/index.ts';
import type { Pipeline } from './pipeline.ts';
import type { PipelineContentStore, SegmentRecord } from './pipeline-options.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import { P_ENVELOPE, P_SEGMENT, decodeSegment, keyNumber, numberKey, prefixRange } from './pipeline-records.ts';
import type { Db } from './segment-steps.ts';
import { openPipelineDb, segmentRecordOf } from './segment-steps.ts';
import { countQueued } from './queue-batches.ts';
import { decodeEnvelope, loadOrCreateMasterKey, openSegment, unwrapKey } from './segment-crypto.ts';
import { manifestHash } from './segment-format.ts';

export interface VerifyStoreOptions {
  readonly dir: string;
  readonly contentStore: Pick<PipelineContentStore, 'get'>;
  readonly masterKeyPath: string;
}

export interface VerifyPipelineOptions {
  readonly pipeline: Pick<Pipeline, 'segments' | 'segmentKey' | 'status'>;
  readonly contentStore: Pick<PipelineContentStore, 'get'>;
  /** Stops the check between two segments (it then rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

export interface VerifyStoreReport {
  /** Segments opened with every check passing. */
  readonly segments: number;
  /** Readings in those segments. */
  readonly readings: number;
  /** Readings still in the queue (not yet sealed) when the check finished. */
  readonly queued: number;
  /** Segments dropped by 'drop-oldest-unsold' (their seq ranges count as covered, not as gaps). */
  readonly dropped: number;
  /** Places where seq jumps within a driver run (inside a segment or between consecutive segments of a stream). */
  readonly gaps: number;
  /** Readings whose stream + seq + ts was already seen. */
  readonly duplicates: number;
  /** Segments that fail to open or disagree with their record. */
  readonly corrupt: number;
  /** One line per gap, duplicate and corrupt segment (at most 1000 lines). */
  readonly details: string[];
}

/** The report of the live check. */
export interface VerifyPipelineReport extends VerifyStoreReport {
  /** Segments sealed but not yet in the content store when the check started: not opened, their seq ranges
   * count as covered. */
  readonly inFlight: number;
}

/** What the check reads: the segment records and, for one record, its envelope and key. */
interface VerifySource {
  /** Every segment record, in the order they were sealed. */
  records(): AsyncIterable<SegmentRecord>;
  /** The envelope of a sealed or stored segment, or null when it is in flight (not checked). Throws
   * PIPELINE_SEGMENT_DROPPED when the segment was dropped after records() listed it. */
  envelope(rec: SegmentRecord): Promise<Uint8Array | null>;
  /** The segment's key, unwrapped (the caller zeroes it). Throws PIPELINE_SEGMENT_DROPPED as envelope(). */
  key(rec: SegmentRecord): Promise<Uint8Array>;
  /** Readings in the queue. */
  queued(): Promise<number>;
}

const MAX_DETAILS = 1000;

/**
 * Check the pipeline database in `dir` and the segments it points to. Never writes and never creates a
 * master key. Throws MASTER_KEY_MISSING, PIPELINE_LOCKED (the pipeline is open), PIPELINE_SCHEMA_MISMATCH,
 * PIPELINE_FAILED (no database in `dir`), PIPELINE_STATE_CORRUPT (a record that does not decode).
 * Memory: one small string per stored reading (to find duplicates).
 */
export async function verifyStore(opts: VerifyStoreOptions): Promise<VerifyStoreReport> {
  try {
    await stat(opts.masterKeyPath);
  } catch (err) {
    throw new PipelineRuntimeError('MASTER_KEY_MISSING', `master key file ${opts.masterKeyPath} does not exist; segment keys cannot be unwrapped without it`, { path: opts.masterKeyPath }, { cause: err });
  }
  const db = await openPipelineDb(opts.dir, { create: false });
  let master: Uint8Array;
  try {
    master = await loadOrCreateMasterKey(opts.masterKeyPath);
  } catch (err) {
    await db.close();
    throw err;
  }
  try {
    const { inFlight: _none, ...report } = await verifySegments(dbSource(db, opts.contentStore, master));
    return report;
  } finally {
    master.fill(0);
    await db.close();
  }
}

/**
 * Check the segments of a running pipeline, through its own handles (see the head of this file for what a
 * live check covers). Same report as verifyStore, with `inFlight` counted. Throws PIPELINE_STATE_CORRUPT (a
 * record that does not decode) and the signal's reason when aborted. Memory: as verifyStore.
 */
export function verifyPipeline(opts: VerifyPipelineOptions): Promise<VerifyPipelineReport> {
  const { pipeline, contentStore } = opts;
  const source: VerifySource = {
    records: () => pipeline.segments(),
    async envelope(rec) {
      if (rec.state !== 'stored') return null;
      try {
        return await contentStore.get(rec.cid!);
      } catch (err) {
        // Dropped since the snapshot? segmentKey throws PIPELINE_SEGMENT_DROPPED then; else the error stands.
        (await pipeline.segmentKey(rec.id)).fill(0);
        throw err;
      }
    },
    key: (rec) => pipeline.segmentKey(rec.id),
    queued: () => Promise.resolve(pipeline.status().queuedReadings),
  };
  return verifySegments(source, opts.signal);
}

function dbSource(db: Db, content: Pick<PipelineContentStore, 'get'>, master: Uint8Array): VerifySource {
  return {
    async *records() {
      for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) yield segmentRecordOf(decodeSegment(keyNumber(k), v));
    },
    async envelope(rec) {
      if (rec.state === 'stored') return content.get(rec.cid!);
      const envelope = await db.get(numberKey(P_ENVELOPE, rec.id));
      if (envelope === undefined) throw new Error('sealed, but its envelope is not in the database');
      return envelope;
    },
    async key(rec) {
      const v = await db.get(numberKey(P_SEGMENT, rec.id));
      if (v === undefined) throw new Error('its record is gone');
      const stored = decodeSegment(rec.id, v);
      return unwrapKey(stored.wrappedKey, master, stored.manifestHash);
    },
    async queued() {
      return countQueued(db);
    },
  };
}

async function verifySegments(source: VerifySource, signal?: AbortSignal): Promise<VerifyPipelineReport> {
  const r = { segments: 0, readings: 0, queued: 0, dropped: 0, inFlight: 0, gaps: 0, duplicates: 0, corrupt: 0, details: [] as string[] };
  const note = (line: string): void => {
    if (r.details.length < MAX_DETAILS) r.details.push(line);
  };
  const streams = new Map<string, { lastSeq: number | undefined; seen: Set<string> }>();
  for await (const rec of source.records()) {
    signal?.throwIfAborted();
    let s = streams.get(rec.stream);
    if (s === undefined) streams.set(rec.stream, (s = { lastSeq: undefined, seen: new Set() }));
    const where = `segment ${rec.id} (${rec.stream} seq ${rec.firstSeq}..${rec.lastSeq})`;
    if (!rec.runStart && s.lastSeq !== undefined && rec.firstSeq !== s.lastSeq + 1) {
      r.gaps++;
      note(`${where}: gap, previous segment of the stream ended at seq ${s.lastSeq} and no driver restart is recorded`);
    }
    s.lastSeq = rec.lastSeq;
    if (rec.state === 'dropped') {
      r.dropped++;
      continue;
    }
    let readings;
    try {
      readings = await openRecorded(rec, source);
    } catch (err) {
      if (hasCode(err, 'PIPELINE_SEGMENT_DROPPED')) {
        r.dropped++;
        continue;
      }
      r.corrupt++;
      note(`${where}: corrupt, ${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`);
      continue;
    }
    if (readings === null) {
      r.inFlight++;
      continue;
    }
    r.segments++;
    r.readings += readings.length;
    let prev: number | undefined;
    for (const reading of readings) {
      if (prev !== undefined && reading.seq !== prev + 1) {
        r.gaps++;
        note(`${where}: gap inside the segment, seq ${prev} then ${reading.seq}`);
      }
      prev = reading.seq;
      const id = `${reading.seq}/${reading.ts}`;
      if (s.seen.has(id)) {
        r.duplicates++;
        note(`${where}: duplicate reading seq ${reading.seq} ts ${reading.ts}`);
      }
      s.seen.add(id);
    }
  }
  r.queued = await source.queued();
  return r;
}

/** The readings of a sealed or stored segment after every check and its agreement with its record; null: in flight. */
async function openRecorded(rec: SegmentRecord, source: VerifySource) {
  const envelope = await source.envelope(rec);
  if (envelope === null) return null;
  const key = await source.key(rec);
  try {
    const readings = openSegment(envelope, key);
    const m = decodeEnvelope(envelope).manifest;
    if (bytesToHex(manifestHash(m)) !== rec.manifestHash) throw new Error(`its manifest hash is not the recorded ${rec.manifestHash}`);
    for (const f of ['stream', 'firstSeq', 'lastSeq', 'count', 'firstTs', 'lastTs'] as const) {
      if (m[f] !== rec[f]) throw new Error(`its manifest's ${f} is ${String(m[f])}, the record says ${String(rec[f])}`);
    }
    return readings;
  } finally {
    key.fill(0);
  }
}
