// verifyStore: the offline check of a pipeline's data (for tests, `datagate` maintenance, and after a power
// cut). Opens every sealed and stored segment the way a buyer would (envelope from the database or the
// content store, key unwrapped under the master key, openSegment with all its checks), and checks per stream
// that seq runs on without gaps from one segment to the next within a driver run, and that no reading
// (stream + seq + ts) is stored twice. Needs the pipeline closed (the database allows one process).
import { stat } from 'node:fs/promises';
import { bytesToHex } from '../../chain/index.ts';
import type { PipelineContentStore } from './pipeline-options.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import type { StoredSegment } from './pipeline-records.ts';
import { P_ENVELOPE, P_QUEUE, P_SEGMENT, decodeSegment, keyNumber, numberKey, prefixRange } from './pipeline-records.ts';
import type { Db } from './segment-steps.ts';
import { openPipelineDb } from './segment-steps.ts';
import { decodeEnvelope, loadOrCreateMasterKey, openSegment, unwrapKey } from './segment-crypto.ts';
import { equalBytes, manifestHash } from './segment-format.ts';

export interface VerifyStoreOptions {
  readonly dir: string;
  readonly contentStore: Pick<PipelineContentStore, 'get'>;
  readonly masterKeyPath: string;
}

export interface VerifyStoreReport {
  /** Segments opened with every check passing. */
  readonly segments: number;
  /** Readings in those segments. */
  readonly readings: number;
  /** Readings still in the queue (not yet sealed). */
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
  const r = { segments: 0, readings: 0, queued: 0, dropped: 0, gaps: 0, duplicates: 0, corrupt: 0, details: [] as string[] };
  const note = (line: string): void => {
    if (r.details.length < MAX_DETAILS) r.details.push(line);
  };
  const streams = new Map<string, { lastSeq: number | undefined; seen: Set<string> }>();
  try {
    for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
      const rec = decodeSegment(keyNumber(k), v);
      let s = streams.get(rec.stream);
      if (s === undefined) streams.set(rec.stream, (s = { lastSeq: undefined, seen: new Set() }));
      const where = `segment ${rec.no} (${rec.stream} seq ${rec.firstSeq}..${rec.lastSeq})`;
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
        readings = await openRecorded(rec, db, opts.contentStore, master);
      } catch (err) {
        r.corrupt++;
        note(`${where}: corrupt, ${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`);
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
    for await (const _ of db.keys(prefixRange(P_QUEUE))) r.queued++;
  } finally {
    master.fill(0);
    await db.close();
  }
  return r;
}

/** The readings of a sealed or stored segment, after every check, and its agreement with its record. */
async function openRecorded(rec: StoredSegment, db: Db, content: Pick<PipelineContentStore, 'get'>, master: Uint8Array) {
  let envelope: Uint8Array | undefined;
  if (rec.state === 'sealed') {
    envelope = await db.get(numberKey(P_ENVELOPE, rec.no));
    if (envelope === undefined) throw new Error('sealed, but its envelope is not in the database');
  } else {
    envelope = await content.get(rec.cid!);
  }
  const key = unwrapKey(rec.wrappedKey, master, rec.manifestHash);
  try {
    const readings = openSegment(envelope, key);
    const m = decodeEnvelope(envelope).manifest;
    if (!equalBytes(manifestHash(m), rec.manifestHash)) throw new Error(`its manifest hash is not the recorded ${bytesToHex(rec.manifestHash)}`);
    for (const f of ['stream', 'firstSeq', 'lastSeq', 'count', 'firstTs', 'lastTs'] as const) {
      if (m[f] !== rec[f]) throw new Error(`its manifest's ${f} is ${String(m[f])}, the record says ${String(rec[f])}`);
    }
    return readings;
  } finally {
    key.fill(0);
  }
}
