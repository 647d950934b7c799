// The per-stream segmenter: the pure core that decides where segments end. It sees durable readings in
// queue order and closes a stream's open segment when its time window is over, before a reading would take
// its envelope past the size bound, or when seq does not increase (the driver restarted: the next reading starts a new run). No clock,
// no timers, no disk: the pipeline feeds it readings and the time, and seals what it returns.
// An open segment keeps its readings encoded (ReadingsBuilder: bytes, running Merkle root and summary), not as
// objects, so memory follows the encoded size, and closing a segment needs no pass over its readings.
import type { Reading } from '../../sensors/index.ts';
import { envelopeLengthBound } from './segment-crypto.ts';
import type { BuiltReadings } from './segment-format.ts';
import { ReadingsBuilder } from './segment-format.ts';

/** A reading that is durable in the queue. */
export interface QueuedReading {
  /** Its queue number (key 0x02 of the pipeline database). */
  readonly queueNo: number;
  readonly reading: Reading;
  /** Its Merkle leaf (encodeReadingLeaf). */
  readonly leaf: Uint8Array;
  /** Bytes it adds to a segment: the length of its encoding. */
  readonly size: number;
  /** Bytes it holds in the queue (key and value). */
  readonly queueBytes: number;
  /** Pipeline clock (ms) when it was ingested. */
  readonly arrivedAt: number;
}

export type CloseReason = 'window' | 'size' | 'seq-reset' | 'flush' | 'pressure';

/** A closed segment, ready to seal: readings of one stream, seq strictly increasing. */
export interface ClosedSegment {
  readonly stream: string;
  /** Queue numbers of its readings (to delete from the queue in the batch that seals it). */
  readonly queueNos: readonly number[];
  /** Its readings encoded, with Merkle root and summary. */
  readonly readings: BuiltReadings;
  /** Number of readings. */
  readonly count: number;
  /** Sum of the entries' size. */
  readonly size: number;
  /** Sum of the entries' queueBytes. */
  readonly queueBytes: number;
  /** The first reading starts a driver run (no seq continuity expected with the stream's previous segment). */
  readonly runStart: boolean;
  readonly reason: CloseReason;
}

interface OpenSegment {
  readonly builder: ReadingsBuilder;
  readonly queueNos: number[];
  size: number;
  queueBytes: number;
  readonly openedAt: number;
  readonly runStart: boolean;
}

export interface SegmenterOptions {
  /** A segment closes once it has been open this long (ms, pipeline clock, from its first reading's arrival). */
  readonly windowMs: number;
  /** A segment closes before a reading would make its sealed envelope (readings, signed manifest, AEAD tag)
   * longer than this; 262,144 makes each segment one IPFS block (one raw block in the content store). */
  readonly maxSegmentBytes: number;
}

export class Segmenter {
  readonly #open = new Map<string, OpenSegment>();
  readonly #lastSeq: Map<string, number>;

  /** `lastSeq`: each stream's last sealed seq (from the stream records), so a seq reset across a restart is seen. */
  constructor(
    private readonly opts: SegmenterOptions,
    lastSeq: ReadonlyMap<string, number> = new Map(),
  ) {
    this.#lastSeq = new Map(lastSeq);
  }

  /** Add a durable reading; returns `out` with the segments this closes appended (at most two: a seq reset, then size). */
  add(q: QueuedReading, out: ClosedSegment[] = []): ClosedSegment[] {
    const { stream, seq } = q.reading;
    const last = this.#lastSeq.get(stream);
    const reset = last === undefined || seq <= last;
    let open = this.#open.get(stream);
    if (open !== undefined && reset) {
      out.push(this.#close(stream, open, 'seq-reset'));
      open = undefined;
    }
    if (open !== undefined && this.#overflows(open, q)) {
      out.push(this.#close(stream, open, 'size'));
      open = undefined;
    }
    if (open === undefined) {
      open = { builder: new ReadingsBuilder(stream), queueNos: [], size: 0, queueBytes: 0, openedAt: q.arrivedAt, runStart: reset };
      this.#open.set(stream, open);
    }
    open.builder.add(q.reading, q.leaf);
    open.queueNos.push(q.queueNo);
    open.size += q.size;
    open.queueBytes += q.queueBytes;
    this.#lastSeq.set(stream, seq);
    return out;
  }

  /** Whether adding `q` would make `open`'s sealed envelope longer than maxSegmentBytes (a first reading always goes in). */
  #overflows(open: OpenSegment, q: QueuedReading): boolean {
    if (open.builder.count === 0) return false;
    return envelopeLengthBound(open.builder.readingsLength(q.size), open.builder.streamLength, open.builder.schemaLength(q.reading)) > this.opts.maxSegmentBytes;
  }

  /** Close every open segment whose window is over at `now`. */
  due(now: number): ClosedSegment[] {
    const out: ClosedSegment[] = [];
    for (const [stream, open] of this.#open) {
      if (now - open.openedAt >= this.opts.windowMs) out.push(this.#close(stream, open, 'window'));
    }
    return out;
  }

  /** Close every open segment now. */
  closeAll(reason: 'flush' | 'pressure'): ClosedSegment[] {
    return [...this.#open].map(([stream, open]) => this.#close(stream, open, reason));
  }

  /** Number of open segments and the readings in them. */
  openStats(): { segments: number; readings: number } {
    let readings = 0;
    for (const open of this.#open.values()) readings += open.queueNos.length;
    return { segments: this.#open.size, readings };
  }

  #close(stream: string, open: OpenSegment, reason: CloseReason): ClosedSegment {
    this.#open.delete(stream);
    return {
      stream, queueNos: open.queueNos, readings: open.builder.finish(), count: open.queueNos.length, size: open.size, queueBytes: open.queueBytes,
      runStart: open.runStart, reason,
    };
  }
}
