// The pipeline database and the state transitions of a segment, each ONE atomic, fsync'd LevelDB batch and
// each safe to redo after a crash (the layout is in pipeline-records.ts):
//   sealStep        queued -> sealed: sign the manifest, wrap the key under the master key, and in one batch
//                   take the readings out of the queue (queue-batches.ts) and write the record, the envelope, the stream record
//                   and the new storeBytes. A crash before the batch leaves the readings queued (sealed again
//                   on restart, with a fresh key), after it leaves them sealed: never both, never neither.
//   storeStep       sealed -> stored: add and pin the envelope in the content store, then in one batch record
//                   the CID, delete the envelope copy and mark the segment unsold. A crash between the add and
//                   the batch adds the same bytes again on restart: same CID, one object. A no-op once stored.
//   dropOldestStep  stored -> dropped: unpin (and delete, where the store can) the oldest unsold segment,
//                   then in one batch turn its record into a tombstone without key or CID.
//   gcAfterDrops    after a round of drops, one gc({scope: 'unpinned'}) of the content store (where it has
//                   one) removes the dropped segments' blocks. A crash before it leaves them unpinned: the
//                   next round's gc (or `datagate ipfs gc`) removes them.
import type { Level } from 'level';
import type { ContentGcResult, Logger, Signer } from '../../chain/index.ts';
import { bytesToHex, openVersionedLevel } from '../../chain/index.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import type { PipelineContentStore, SegmentRecord } from './pipeline-options.ts';
import type { StoredSegment } from './pipeline-records.ts';
import {
  P_ENVELOPE, P_SEGMENT, P_UNSOLD, PIPELINE_SCHEMA_UPGRADES, PIPELINE_SCHEMA_VERSION, corrupt, decodeSegment, encodeDecimal,
  encodeSegment, encodeStream, keyNumber, metaKey, numberKey, prefixRange, streamKey,
} from './pipeline-records.ts';
import { sealReadings, wrapKey } from './segment-crypto.ts';
import { manifestHash } from './segment-format.ts';
import type { ClosedSegment } from './segmenter.ts';
import { diskFullOr } from '../disk-space.ts';

export type Db = Level<Uint8Array, Uint8Array>;
export type Op = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

const EMPTY = new Uint8Array(0);

/** What the steps need: the database, its fsync'd batch writer, the content store, signer, master key, clock. */
export interface StepContext {
  readonly db: Db;
  /** One atomic batch with sync: true. */
  write(ops: Op[]): Promise<void>;
  readonly content: PipelineContentStore;
  readonly signer: Signer;
  readonly master: Uint8Array;
  readonly now: () => number;
}

/**
 * Open the pipeline database in `dir`, mapping LevelDB's errors to ours; `create: false` (verifyStore) refuses
 * a directory that holds no pipeline database instead of making one. Throws PIPELINE_LOCKED,
 * PIPELINE_SCHEMA_MISMATCH, PIPELINE_STATE_CORRUPT, PIPELINE_FAILED.
 */
export async function openPipelineDb(dir: string, { create = true }: { create?: boolean } = {}): Promise<Db> {
  return openVersionedLevel(dir, {
    versionKey: metaKey('schema'),
    version: PIPELINE_SCHEMA_VERSION,
    upgradeFrom: PIPELINE_SCHEMA_UPGRADES,
    create,
    // Small LevelDB buffers (defaults: 4 MiB write buffer, 8 MiB block cache): the queue is written once and
    // read back once, so a big cache buys nothing, and every MiB counts on a Pi-class board.
    writeBufferSize: 1 << 20,
    cacheSize: 2 << 20,
    errors: {
      locked: (err) => new PipelineRuntimeError('PIPELINE_LOCKED', `the pipeline database at ${dir} is in use by another process; stop the other datagate (or close the pipeline) first`, { dir }, { cause: err }),
      failed: (err) => diskFullOr(new PipelineRuntimeError('PIPELINE_FAILED', `cannot open the pipeline database at ${dir}: ${(err as Error).message}`, { dir }, { cause: err }), dir),
      mismatch: (found) => new PipelineRuntimeError('PIPELINE_SCHEMA_MISMATCH', `pipeline database ${dir} has schema ${found}, this datagate reads ${PIPELINE_SCHEMA_VERSION}; use a matching datagate release`, { dir }),
      unreadable: () => corrupt('schema is not a decimal integer'),
      missing: () => new PipelineRuntimeError('PIPELINE_STATE_CORRUPT', `${dir} holds no pipeline database (no schema record)`, { dir }),
    },
  });
}

/** The public view of a record. */
export function segmentRecordOf(s: StoredSegment): SegmentRecord {
  const { no, stream, state, firstSeq, lastSeq, count, firstTs, lastTs, runStart, envelopeBytes, sealedAt, cid } = s;
  return {
    id: no, stream, state, firstSeq, lastSeq, count, firstTs, lastTs, manifestHash: bytesToHex(s.manifestHash), runStart,
    bytes: envelopeBytes, sealedAt, ...(cid !== undefined ? { cid } : {}),
  };
}

/**
 * queued -> sealed, as segment number `no`; `storeBytes` is the total before, `queueOps` the writes that take
 * the segment's readings out of the queue (queue-batches.ts). Returns the record, the envelope and the new total.
 */
export async function sealStep(ctx: StepContext, seg: ClosedSegment, no: number, storeBytes: number, queueOps: Op[]): Promise<{ rec: StoredSegment; envelope: Uint8Array; storeBytes: number }> {
  const sealed = await sealReadings(seg.readings, ctx.signer);
  const hash = manifestHash(sealed.manifest);
  let wrappedKey: Uint8Array;
  try {
    wrappedKey = wrapKey(sealed.key, ctx.master, hash);
  } finally {
    sealed.key.fill(0);
  }
  const m = sealed.manifest;
  const rec: StoredSegment = {
    no, state: 'sealed', stream: seg.stream, firstSeq: m.firstSeq, lastSeq: m.lastSeq, count: m.count, firstTs: m.firstTs, lastTs: m.lastTs,
    manifestHash: hash, runStart: seg.runStart, envelopeBytes: sealed.envelope.length, sealedAt: Math.max(0, Math.floor(ctx.now())), wrappedKey,
  };
  const total = storeBytes + sealed.envelope.length;
  const ops: Op[] = [...queueOps];
  ops.push(
    { type: 'put', key: numberKey(P_SEGMENT, no), value: encodeSegment(rec) },
    { type: 'put', key: numberKey(P_ENVELOPE, no), value: sealed.envelope },
    { type: 'put', key: streamKey(seg.stream), value: encodeStream(m.lastSeq, no) },
    { type: 'put', key: metaKey('storeBytes'), value: encodeDecimal(total) },
  );
  await ctx.write(ops);
  return { rec, envelope: sealed.envelope, storeBytes: total };
}

/** sealed -> stored for segment `no` (`envelope`: the bytes when still in memory). Returns false when it was stored already. */
export async function storeStep(ctx: StepContext, no: number, envelope?: Uint8Array): Promise<boolean> {
  const v = await ctx.db.get(numberKey(P_SEGMENT, no));
  if (v === undefined) throw corrupt(`segment ${no} has an envelope but no record`, { no });
  const rec = decodeSegment(no, v);
  if (rec.state !== 'sealed') return false;
  const bytes = envelope ?? (await ctx.db.get(numberKey(P_ENVELOPE, no)));
  if (bytes === undefined) throw corrupt(`sealed segment ${no} has no envelope`, { no });
  const cid = await ctx.content.add(bytes);
  await ctx.content.pin(cid);
  await ctx.write([
    { type: 'put', key: numberKey(P_SEGMENT, no), value: encodeSegment({ ...rec, state: 'stored', cid }) },
    { type: 'del', key: numberKey(P_ENVELOPE, no) },
    { type: 'put', key: numberKey(P_UNSOLD, no), value: EMPTY },
  ]);
  return true;
}

/** stored -> dropped for the oldest unsold segment; `storeBytes` is the total before. Returns what was dropped, or null when nothing is unsold. */
export async function dropOldestStep(ctx: StepContext, storeBytes: number): Promise<{ rec: StoredSegment } | null> {
  let no: number | undefined;
  for await (const k of ctx.db.keys({ ...prefixRange(P_UNSOLD), limit: 1 })) no = keyNumber(k);
  if (no === undefined) return null;
  const v = await ctx.db.get(numberKey(P_SEGMENT, no));
  if (v === undefined) throw corrupt(`unsold segment ${no} has no record`, { no });
  const rec = decodeSegment(no, v);
  if (rec.state !== 'stored' || rec.cid === undefined) throw corrupt(`unsold segment ${no} is in state ${rec.state}`, { no });
  if (ctx.content.unpin !== undefined) await ctx.content.unpin(rec.cid);
  if (ctx.content.delete !== undefined) await ctx.content.delete(rec.cid);
  const { cid: _cid, ...rest } = rec;
  await ctx.write([
    { type: 'put', key: numberKey(P_SEGMENT, no), value: encodeSegment({ ...rest, state: 'dropped', wrappedKey: EMPTY }) },
    { type: 'del', key: numberKey(P_UNSOLD, no) },
    { type: 'put', key: metaKey('storeBytes'), value: encodeDecimal(storeBytes - rec.envelopeBytes) },
  ]);
  return { rec };
}

/**
 * After a round of `dropped` drops: one gc() of the content store, when it has one, so the dropped segments'
 * blocks leave the disk (one gc per round, not per segment: it still walks every kept DAG's dag-pb nodes). Logs what
 * was freed at info. A failure is logged, not thrown: the drops are recorded and their accounting done, and
 * the blocks go at the next gc. Returns gc's result, or null without gc or when it failed.
 */
export async function gcAfterDrops(ctx: Pick<StepContext, 'content'>, log: Logger, dropped: number): Promise<ContentGcResult | null> {
  if (ctx.content.gc === undefined || dropped === 0) return null;
  try {
    // Scoped to what the drops unpinned: a full sweep would read every stored block on each round.
    const result = await ctx.content.gc({ scope: 'unpinned' });
    log.info('content store gc after dropping segments', { droppedSegments: dropped, ...result });
    return result;
  } catch (err) {
    log.warn('content store gc after dropping segments failed: their blocks stay on disk until the next gc', {
      droppedSegments: dropped, error: (err as Error).message, code: (err as { code?: string }).code,
    });
    return null;
  }
}
