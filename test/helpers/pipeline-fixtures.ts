// Fixtures of the pipeline tests: a scriptable in-memory content store (failures on demand, delete), a
// stopped clock, a recording logger, simulator-like readings, and reading every stored reading back the way
// a buyer would (segment key + envelope + openSegment).
import { createHash } from 'node:crypto';
import type { ContentListEntry, LogFields, Logger } from '../../chain/index.ts';
import { ContentError } from '../../chain/index.ts';
import type { Reading } from '../../sensors/index.ts';
import type { Pipeline, PipelineContentStore, SegmentRecord } from '../../gateway/pipeline/pipeline.ts';
import { openSegment } from '../../gateway/pipeline/segment-crypto.ts';

/** A content store in memory: CIDs are fake ('mem-' + sha256 hex) but content-addressed like real ones. */
export class MemoryContentStore implements PipelineContentStore {
  readonly blocks = new Map<string, Uint8Array>();
  readonly pins = new Set<string>();
  adds = 0;
  /** Fail the next N add() calls (before storing anything). */
  failAdds = 0;
  /** Fail the next N pin() calls (after add() stored the bytes: a crash between add and the record). */
  failPins = 0;

  async add(bytes: Uint8Array): Promise<string> {
    if (this.failAdds > 0) {
      this.failAdds--;
      throw new ContentError('CONTENT_STORE_FAILED', 'scripted add failure');
    }
    this.adds++;
    const cid = `mem-${createHash('sha256').update(bytes).digest('hex')}`;
    this.blocks.set(cid, Uint8Array.from(bytes));
    return cid;
  }

  async get(cid: string): Promise<Uint8Array> {
    const b = this.blocks.get(cid);
    if (b === undefined) throw new ContentError('CONTENT_NOT_FOUND', `${cid} not here`, { cid });
    return b;
  }

  async has(cid: string): Promise<boolean> {
    return this.blocks.has(cid);
  }

  async pin(cid: string): Promise<void> {
    if (this.failPins > 0) {
      this.failPins--;
      throw new ContentError('CONTENT_STORE_FAILED', 'scripted pin failure');
    }
    if (!this.blocks.has(cid)) throw new ContentError('CONTENT_NOT_FOUND', `${cid} not here`, { cid });
    this.pins.add(cid);
  }

  async unpin(cid: string): Promise<void> {
    this.pins.delete(cid);
  }

  async delete(cid: string): Promise<void> {
    this.blocks.delete(cid);
  }

  async *list(): AsyncIterable<ContentListEntry> {
    for (const cid of this.blocks.keys()) yield { cid, pinned: this.pins.has(cid) };
  }
}

/** A stopped clock moved by hand. */
export function fakeClock(start = Date.UTC(2024, 4, 1)): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

export type LogLine = { level: string; msg: string; fields: LogFields };

/** A Logger that keeps every line. */
export function recordingLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at = (level: string) => (msg: string, fields: LogFields = {}) => void lines.push({ level, msg, fields });
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

/** Reading `seq` of a simulator-like stream: a value stream, or a values stream when `stream` ends in '/gps'. */
export function simReading(stream: string, seq: number, ts: number): Reading {
  if (stream.endsWith('/gps')) {
    return { stream, seq, ts, values: { lat: 59.9 + Math.sin(seq / 50) * 1e-3, lon: 10.7 + Math.cos(seq / 50) * 1e-3 }, unit: 'deg', quality: 1 };
  }
  return { stream, seq, ts: ts + 0.25, value: 20 + 5 * Math.sin(seq / 100), unit: '°C' };
}

/** Every segment record, in order. */
export async function allSegments(p: Pick<Pipeline, 'segments'>, stream?: string): Promise<SegmentRecord[]> {
  const out: SegmentRecord[] = [];
  for await (const s of p.segments(stream === undefined ? {} : { stream })) out.push(s);
  return out;
}

/** The readings of every stored segment, opened with its unwrapped key, keyed by segment id. */
export async function storedReadings(p: Pick<Pipeline, 'segments' | 'segmentKey'>, content: Pick<PipelineContentStore, 'get'>): Promise<Map<number, Reading[]>> {
  const out = new Map<number, Reading[]>();
  for (const s of await allSegments(p)) {
    if (s.state !== 'stored') continue;
    const key = await p.segmentKey(s.id);
    try {
      out.set(s.id, openSegment(await content.get(s.cid!), key));
    } finally {
      key.fill(0);
    }
  }
  return out;
}
