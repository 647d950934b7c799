// The pipeline's options, status and public record types, the validation of its options, and the one-line
// preparation of a reading for the queue (floor ts, copy, encode once so a reading that cannot be sealed is
// refused at ingest instead of poisoning the queue).
import type { ContentStore, Logger, Signer } from '../../chain/index.ts';
import type { Reading } from '../../sensors/index.ts';
import { PipelineError } from './errors.ts';
import type { SegmentState } from './pipeline-records.ts';
import { rlpEncode } from '../../chain/index.ts';
import { stringBytes } from './segment-codec.ts';
import { SEGMENT_FORMAT_VERSION, encodeReadingLeaf } from './segment-format.ts';

/** What to do when a disk bound is reached. */
export type FullPolicy = 'stop-accepting' | 'drop-oldest-unsold';
export const FULL_POLICIES: readonly FullPolicy[] = ['stop-accepting', 'drop-oldest-unsold'];

export interface PipelineLimits {
  /** Bound on the bytes of queued (not yet sealed) readings in the database. At it, ingest rejects with
   * PIPELINE_FULL whatever the policy (dropping acknowledged readings is never an option). */
  readonly maxQueueBytes: number;
  /** Bound on the envelope bytes of sealed and stored segments. */
  readonly maxStoreBytes: number;
  /** At maxStoreBytes: 'stop-accepting' leaves readings queued and ingest rejects once the store cannot take the
   * next segment; 'drop-oldest-unsold' deletes the oldest stored, unsold segments to make room. */
  readonly policy: FullPolicy;
  /** Share of a bound at which the alarm goes on (default 0.9). Over it the queue also seals early. */
  readonly alarmRatio?: number;
  /** Free bytes to leave on the pipeline's filesystem (shared with the chain and the content store): ingest
   * rejects with PIPELINE_FULL (bound 'disk') before free space falls under it; default 64 MiB. */
  readonly minFreeBytes?: number;
}

/** Default of limits.minFreeBytes: room for LevelDB compactions, the chain and the logs once ingest stops. */
export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

/**
 * The content store as the pipeline uses it. `unpin`, `delete` and `gc` are used when present
 * (drop-oldest-unsold): each dropped segment is unpinned (and deleted), then one gc() per round of drops
 * removes the blocks. With neither `delete` nor `gc`, a dropped segment's blocks stay in the content store.
 */
export type PipelineContentStore = Pick<ContentStore, 'add' | 'get' | 'pin'> & Partial<Pick<ContentStore, 'unpin' | 'gc'>> & {
  delete?(cid: string): Promise<void>;
};

export interface PipelineOptions {
  /** Directory of the pipeline's LevelDB database (created when missing). */
  readonly dir: string;
  readonly contentStore: PipelineContentStore;
  /** Signs segment manifests (purpose 'message'). */
  readonly signer: Signer;
  /** Gateway master key file (created when missing, see loadOrCreateMasterKey). */
  readonly masterKeyPath: string;
  /** Time window of a segment (ms), default 60 000. */
  readonly windowMs?: number;
  /** Size bound of a segment (bytes of encoded readings), default 262 144. */
  readonly maxSegmentBytes?: number;
  readonly limits: PipelineLimits;
  /** Clock (ms). When injected the pipeline runs no timer: the caller calls tick(). */
  readonly now?: () => number;
  readonly logger?: Logger;
  /** Group commit: wait up to this long (ms) for more readings before a queue write; default 0 (the next
   * turn of the event loop; readings that arrive during a write go in the next one anyway). */
  readonly commitDelayMs?: number;
  /** Group commit: at most this many readings per queue write; default 1024. */
  readonly maxBatchReadings?: number;
}

/** A segment as segments() lists it. */
export interface SegmentRecord {
  /** Local number: segments of the pipeline in the order they were sealed. */
  readonly id: number;
  readonly stream: string;
  readonly state: SegmentState;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly count: number;
  readonly firstTs: number;
  readonly lastTs: number;
  /** 0x-hex manifest hash: the segment's global identity (segment-format.ts manifestHash). */
  readonly manifestHash: string;
  /** The first reading starts a driver run: seq continuity with the previous segment is not expected. */
  readonly runStart: boolean;
  /** Envelope bytes. */
  readonly bytes: number;
  readonly sealedAt: number;
  /** Content store CID of the envelope, from state stored on. */
  readonly cid?: string;
}

export interface PipelineStatus {
  /** Readings made durable (acknowledged) since open. */
  readonly ingested: number;
  readonly rejectedInvalid: number;
  readonly rejectedFull: number;
  /** fsync'd queue writes (group commits). */
  readonly commits: number;
  /** Times a group commit waited for the sealer because closed segments awaiting their seal held too many bytes. */
  readonly backlogWaits: number;
  readonly sealed: number;
  readonly stored: number;
  readonly droppedSegments: number;
  readonly droppedReadings: number;
  readonly sealErrors: number;
  readonly storeErrors: number;
  /** Times an alarm went on. */
  readonly alarms: number;
  readonly queueBytes: number;
  readonly queuedReadings: number;
  readonly storeBytes: number;
  readonly openSegments: number;
  readonly awaitingSeal: number;
  readonly awaitingStore: number;
  /** Bytes free on the pipeline's filesystem (statfs, less what was written since it was read); null if unknown. */
  readonly freeBytes: number | null;
  /** Some bound is over alarmRatio (or the store cannot take the next segment). */
  readonly alarm: boolean;
  readonly alarmOn: readonly ('queue' | 'store' | 'disk')[];
  /** ingest is rejecting readings with PIPELINE_FULL. */
  readonly full: boolean;
  /** Set once a database write failed: nothing more is accepted. */
  readonly failed: string | null;
}

export interface ResolvedOptions {
  readonly windowMs: number;
  readonly maxSegmentBytes: number;
  readonly maxQueueBytes: number;
  readonly maxStoreBytes: number;
  readonly policy: FullPolicy;
  readonly alarmRatio: number;
  readonly minFreeBytes: number;
  readonly commitDelayMs: number;
  readonly maxBatchReadings: number;
}

/** Longest stream name (UTF-8 bytes) and largest reading (encoded bytes) the pipeline takes. */
export const MAX_STREAM_BYTES = 256;
export const MAX_READING_BYTES = 16_384;

export function invalid(argument: string, message: string): PipelineError {
  return new PipelineError('PIPELINE_INVALID_INPUT', `${argument}: ${message}`, { argument });
}

function int(v: unknown, argument: string, min: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw invalid(argument, `must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** Check `opts` at the edge, naming the bad argument (PIPELINE_INVALID_INPUT); fill in the defaults. */
export function resolveOptions(opts: PipelineOptions): ResolvedOptions {
  if (typeof opts !== 'object' || opts === null) throw invalid('options', 'must be an object');
  if (typeof opts.dir !== 'string' || opts.dir === '') throw invalid('dir', 'must be a non-empty path');
  if (typeof opts.masterKeyPath !== 'string' || opts.masterKeyPath === '') throw invalid('masterKeyPath', 'must be a non-empty path');
  const cs = opts.contentStore as Partial<PipelineContentStore> | undefined;
  if (typeof cs?.add !== 'function' || typeof cs.get !== 'function' || typeof cs.pin !== 'function') throw invalid('contentStore', 'must have add, get and pin');
  if (typeof opts.signer?.sign !== 'function') throw invalid('signer', 'must be a Signer');
  if (opts.now !== undefined && typeof opts.now !== 'function') throw invalid('now', 'must be a function returning ms');
  const limits = opts.limits as Partial<PipelineLimits> | undefined;
  if (typeof limits !== 'object' || limits === null) throw invalid('limits', 'must be { maxQueueBytes, maxStoreBytes, policy }');
  if (!FULL_POLICIES.includes(limits.policy as FullPolicy)) throw invalid('limits.policy', `must be one of ${FULL_POLICIES.join(', ')}`);
  const alarmRatio = limits.alarmRatio ?? 0.9;
  if (typeof alarmRatio !== 'number' || !(alarmRatio > 0 && alarmRatio <= 1)) throw invalid('limits.alarmRatio', 'must be in (0, 1]');
  return {
    windowMs: int(opts.windowMs, 'windowMs', 1, 60_000),
    maxSegmentBytes: int(opts.maxSegmentBytes, 'maxSegmentBytes', 64, 262_144),
    maxQueueBytes: int(limits.maxQueueBytes, 'limits.maxQueueBytes', 1024),
    maxStoreBytes: int(limits.maxStoreBytes, 'limits.maxStoreBytes', 1024),
    policy: limits.policy as FullPolicy,
    alarmRatio,
    minFreeBytes: int(limits.minFreeBytes, 'limits.minFreeBytes', 0, DEFAULT_MIN_FREE_BYTES),
    commitDelayMs: int(opts.commitDelayMs, 'commitDelayMs', 0, 0),
    maxBatchReadings: int(opts.maxBatchReadings, 'maxBatchReadings', 1, 1024),
  };
}

/** A reading ready for the queue. */
export interface PreparedReading {
  readonly reading: Reading;
  /** encodeReadings([reading]): what the queue stores. */
  readonly bytes: Uint8Array;
  /** Its Merkle leaf (encodeReadingLeaf), which the segment builder appends as it is. */
  readonly leaf: Uint8Array;
  /** Bytes it adds to a segment's readings: its leaf and the leaf's RLP prefix. */
  readonly size: number;
}

/**
 * UTF-8 of the stream names, value names and units seen lately (checked by stringBytes), shared by every
 * reading: a source sends the same few names over and over, and encoding them per reading was a good part of
 * ingest's cost. Emptied when it grows past NAMES_CACHED, so a source with ever-new names cannot grow it.
 */
const names = new Map<string, Uint8Array>();
const NAMES_CACHED = 4096;

function cachedUtf8(s: string, argument: string): Uint8Array {
  const hit = names.get(s);
  if (hit !== undefined) return hit;
  if (names.size >= NAMES_CACHED) names.clear();
  const bytes = stringBytes(s, argument);
  names.set(s, bytes);
  return bytes;
}

/** Floor ts, copy the reading (the caller may reuse its object) and encode it once. Throws PIPELINE_INVALID_INPUT. */
export function prepareReading(r: Reading): PreparedReading {
  if (typeof r !== 'object' || r === null) throw invalid('reading', 'must be a Reading object');
  if (typeof r.stream !== 'string' || r.stream === '') throw invalid('reading.stream', 'must be a non-empty string');
  const streamBytes = cachedUtf8(r.stream, 'reading.stream');
  if (streamBytes.length > MAX_STREAM_BYTES) throw invalid('reading.stream', `must be at most ${MAX_STREAM_BYTES} bytes of UTF-8`);
  if (typeof r.ts !== 'number' || !Number.isFinite(r.ts)) throw invalid('reading.ts', 'must be a finite number of ms');
  // Assigned field by field: conditional spreads made a throwaway object per field, per reading.
  const reading: { -readonly [K in keyof Reading]: Reading[K] } = { stream: r.stream, ts: Math.floor(r.ts), seq: r.seq };
  if (r.value !== undefined) reading.value = r.value;
  if (r.values !== undefined) reading.values = typeof r.values === 'object' && r.values !== null ? { ...r.values } : r.values;
  if (r.unit !== undefined) reading.unit = r.unit;
  if (r.quality !== undefined) reading.quality = r.quality;
  if (names.size >= NAMES_CACHED) names.clear(); // encodeReadingLeaf adds this reading's value names and unit
  const leaf = encodeReadingLeaf(reading, names);
  // The same bytes as encodeReadings([reading]), without encoding the reading twice.
  const bytes = rlpEncode([SEGMENT_FORMAT_VERSION, streamBytes, [leaf]]);
  if (bytes.length > MAX_READING_BYTES) throw invalid('reading', `encodes to ${bytes.length} bytes, over ${MAX_READING_BYTES}`);
  return { reading, bytes, leaf, size: leaf.length + (leaf.length <= 55 ? 1 : leaf.length < 256 ? 2 : 3) };
}
