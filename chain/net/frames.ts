// Length-prefixed frames on libp2p streams, and the per-peer limits applied to them (see
// docs/architecture.md, "Peers"): a 4-byte big-endian length, then that many bytes. The length is checked
// against the maximum before a byte of the frame is buffered, so a peer cannot make us hold more.
import { NetError } from './errors.ts';

/** The bytes of a frame carrying `payload`. */
export function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Something a stream delivers: a Uint8Array or a Uint8ArrayList (which has subarray()). */
export type Chunk = Uint8Array | { subarray(): Uint8Array };

/** Splits a byte stream into frames. Throws NET_FRAME_TOO_LARGE on a length above `maxFrameBytes`. */
export class FrameDecoder {
  private buffered: Uint8Array[] = [];
  private size = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Add bytes; returns the frames they complete, in order. */
  push(chunk: Chunk): Uint8Array[] {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    if (bytes.length === 0) return [];
    this.buffered.push(bytes);
    this.size += bytes.length;
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.size < 4) return frames;
      const head = this.peek(4);
      const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
      if (length > this.maxFrameBytes) {
        throw new NetError('NET_FRAME_TOO_LARGE', `a peer sent a frame of ${length} bytes, above the limit of ${this.maxFrameBytes}; raise limits.maxFrameBytes on every node if blocks are that large`, { length, max: this.maxFrameBytes });
      }
      if (this.size < 4 + length) return frames;
      const all = this.take(4 + length);
      frames.push(all.subarray(4));
    }
  }

  private peek(n: number): Uint8Array {
    if (this.buffered[0]!.length >= n) return this.buffered[0]!;
    return this.concat().subarray(0, n);
  }

  private take(n: number): Uint8Array {
    const all = this.concat();
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, n);
  }

  private concat(): Uint8Array {
    if (this.buffered.length === 1) return this.buffered[0]!;
    const all = new Uint8Array(this.size);
    let at = 0;
    for (const b of this.buffered) {
      all.set(b, at);
      at += b.length;
    }
    this.buffered = [all];
    return all;
  }
}

/** A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** True (and one token spent) when a token is available. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSec);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Frames waiting to be sent to one peer, by kind, each kind bounded: when full, its oldest frame goes. */
export class SendQueue<K extends string> {
  private readonly queues = new Map<K, Uint8Array[]>();
  dropped = 0;

  /** `kinds` in the order they are sent: earlier kinds first (consensus before transactions). */
  constructor(
    private readonly kinds: readonly K[],
    private readonly maxPerKind: number,
  ) {
    for (const k of kinds) this.queues.set(k, []);
  }

  push(kind: K, bytes: Uint8Array): void {
    const q = this.queues.get(kind)!;
    if (q.length >= this.maxPerKind) {
      q.shift();
      this.dropped++;
    }
    q.push(bytes);
  }

  shift(): Uint8Array | undefined {
    for (const k of this.kinds) {
      const q = this.queues.get(k)!;
      if (q.length > 0) return q.shift();
    }
    return undefined;
  }

  get length(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }
}
