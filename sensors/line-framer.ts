// Splits a byte stream (serial port, TCP, a file) into text lines: '\n' ends a line and one '\r' before it is
// dropped, each line is decoded as strict UTF-8, and a line longer than the limit is dropped up to its end
// instead of being buffered forever. The result does not depend on how the bytes were chunked.
import { SensorError } from './reading.ts';

export interface FramedLines {
  /** Complete lines in order, without terminators (empty lines included: the parser rejects them). */
  readonly lines: string[];
  /** Lines longer than maxLineBytes that were dropped (drivers count them as 'line-too-long'). */
  readonly oversize: number;
  /** Lines that were not valid UTF-8 and were dropped (drivers count them as 'bad-encoding'). */
  readonly undecodable: number;
}

const LF = 0x0a;
const CR = 0x0d;

export class LineFramer {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private parts: Uint8Array[] = [];
  private pending = 0;
  /** Inside an oversize line: drop bytes up to the next '\n'. */
  private discarding = false;

  /** `maxLineBytes`: longest line kept, in bytes, not counting its '\r\n' or '\n'. */
  constructor(readonly maxLineBytes = 4096) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new SensorError('SENSOR_CONFIG_INVALID', `maxLineBytes must be a positive integer, got ${maxLineBytes}`, { field: 'maxLineBytes' });
    }
  }

  /** Feeds the next bytes; returns the lines they completed. An oversize line is counted once, when first seen. */
  push(chunk: Uint8Array): FramedLines {
    const lines: string[] = [];
    let oversize = 0;
    let undecodable = 0;
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      if (this.discarding) {
        if (nl < 0) break;
        this.discarding = false;
        start = nl + 1;
        continue;
      }
      if (nl < 0) {
        this.parts.push(chunk.slice(start));
        this.pending += chunk.length - start;
        if (this.overflowing()) {
          this.clear();
          this.discarding = true;
          oversize++;
        }
        break;
      }
      const line = this.take(chunk.subarray(start, nl));
      start = nl + 1;
      if (line.length > this.maxLineBytes) oversize++;
      else {
        const text = this.decode(line);
        if (text === null) undecodable++;
        else lines.push(text);
      }
    }
    return { lines, oversize, undecodable };
  }

  /**
   * Ends the stream: returns the unterminated last line, or null if there is none (or it was oversize or not
   * UTF-8). After an unplug this tail is usually cut short: drivers should count it rather than parse it,
   * unless their source really ends its last line without '\n'.
   */
  flush(): string | null {
    const wasDiscarding = this.discarding;
    this.discarding = false;
    if (wasDiscarding || this.pending === 0) {
      this.clear();
      return null;
    }
    return this.decode(this.take(new Uint8Array(0)));
  }

  /** Could the buffered partial line still end within the limit? (A '\r' just past it may be the terminator's.) */
  private overflowing(): boolean {
    if (this.pending <= this.maxLineBytes) return false;
    if (this.pending > this.maxLineBytes + 1) return true;
    const last = this.parts[this.parts.length - 1];
    return last === undefined || last[last.length - 1] !== CR;
  }

  /** The buffered bytes followed by `tail`, without one trailing '\r'; clears the buffer. */
  private take(tail: Uint8Array): Uint8Array {
    let bytes = tail;
    if (this.pending > 0) {
      bytes = new Uint8Array(this.pending + tail.length);
      let off = 0;
      for (const p of this.parts) {
        bytes.set(p, off);
        off += p.length;
      }
      bytes.set(tail, off);
      this.clear();
    }
    return bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes;
  }

  private decode(bytes: Uint8Array): string | null {
    try {
      return this.decoder.decode(bytes);
    } catch (_err) {
      return null;
    }
  }

  private clear(): void {
    this.parts = [];
    this.pending = 0;
  }
}
