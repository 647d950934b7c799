// One connected peer as the transport sees it (see docs/architecture.md, "Peers"): who it proved to be,
// its score and rate limit, and its outgoing streams with their bounded queues. Sending never waits:
// a frame is queued and the queue is drained when the stream can take more.
import type { Connection, Stream } from '@libp2p/interface';
import type { Logger } from '../logger.ts';
import type { Address } from '../types.ts';
import { frame, SendQueue, TokenBucket } from './frames.ts';

export type PeerRole = 'validator' | 'proposer' | 'validator+proposer' | 'follower';

/** What peers() reports of a peer. */
export interface PeerInfo {
  /** The chain address the peer proved, or null when it proved none (a follower without a key). */
  readonly address: Address | null;
  readonly peerId: string;
  readonly role: PeerRole;
  readonly up: boolean;
  /** When the last valid frame from it arrived (ms since the epoch); 0 when none yet. */
  readonly lastSeen: number;
}

export interface NetLimits {
  /** Largest frame accepted or sent (a decided block with its certificate must fit). */
  readonly maxFrameBytes: number;
  /** Frames a second a peer may send, and how many it may save up. */
  readonly ratePerSec: number;
  readonly burst: number;
  /** Frames queued per peer and kind before the oldest of that kind is dropped. */
  readonly maxQueuedPerKind: number;
  /** Score at which a peer is disconnected and refused for banMs. */
  readonly disconnectScore: number;
  readonly banMs: number;
  /** Score points forgotten per second. */
  readonly scoreDecayPerSec: number;
  /** Time a new connection has to finish the authentication handshake. */
  readonly authTimeoutMs: number;
  /** Most decided blocks one sync request returns. */
  readonly maxSyncBatch: number;
  /** Time a sync request may take. */
  readonly syncTimeoutMs: number;
  /** Most transactions in one frame. */
  readonly maxTxsPerFrame: number;
  /** Bootstrap redial backoff: first delay and cap (jittered to 50-100 %). */
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
}

export const defaultLimits: NetLimits = {
  maxFrameBytes: 4 * 1024 * 1024,
  ratePerSec: 500,
  burst: 1000,
  maxQueuedPerKind: 256,
  disconnectScore: 100,
  banMs: 60_000,
  scoreDecayPerSec: 1,
  authTimeoutMs: 5_000,
  maxSyncBatch: 32,
  syncTimeoutMs: 10_000,
  maxTxsPerFrame: 1024,
  reconnectBaseMs: 250,
  reconnectMaxMs: 30_000,
};

/** Kinds of outgoing frames, in the order a peer's queue drains them: consensus first. */
export type FrameKind = 'consensus' | 'decided' | 'txs';

export function roleOf(address: Address | null, validators: ReadonlySet<Address>, proposers: ReadonlySet<Address>): PeerRole {
  if (address === null) return 'follower';
  const v = validators.has(address);
  const p = proposers.has(address);
  return v && p ? 'validator+proposer' : v ? 'validator' : p ? 'proposer' : 'follower';
}

/** An outgoing stream of one protocol to one peer, opened on first use and again after it closed. */
class Outbox {
  private stream: Stream | null = null;
  private opening = false;
  readonly queue: SendQueue<FrameKind>;

  constructor(
    private readonly protocol: string,
    maxQueued: number,
  ) {
    this.queue = new SendQueue<FrameKind>(['consensus', 'decided', 'txs'], maxQueued);
  }

  pump(connection: Connection, log: Logger): void {
    if (this.opening) return;
    const s = this.stream;
    if (s === null || s.status !== 'open' || s.writeStatus !== 'writable') {
      if (this.queue.length === 0) return;
      this.opening = true;
      connection
        .newStream(this.protocol)
        .then((stream) => {
          this.stream = stream;
          this.opening = false;
          this.pump(connection, log);
        })
        .catch((err: unknown) => {
          this.opening = false;
          if (connection.status === 'open') log.debug('opening a peer stream failed', { protocol: this.protocol, error: err });
        });
      return;
    }
    try {
      while (!s.writableNeedsDrain) {
        const f = this.queue.shift();
        if (f === undefined) return;
        s.send(f);
      }
      s.onDrain().then(
        () => this.pump(connection, log),
        () => {},
      );
    } catch (err) {
      // The stream closed under us: the next frame opens another.
      this.stream = null;
      log.debug('peer stream closed while sending', { protocol: this.protocol, error: err });
    }
  }

  close(): void {
    this.stream?.abort(new Error('peer disconnected'));
    this.stream = null;
  }
}

export class Peer {
  address: Address | null = null;
  role: PeerRole = 'follower';
  authenticated = false;
  up = true;
  lastSeen = 0;
  private score = 0;
  private scoredAt = Date.now();
  readonly bucket: TokenBucket;
  private readonly outboxes = new Map<string, Outbox>();

  constructor(
    readonly peerId: string,
    public connection: Connection,
    private readonly limits: NetLimits,
  ) {
    this.bucket = new TokenBucket(limits.ratePerSec, limits.burst);
  }

  info(): PeerInfo {
    return { address: this.address, peerId: this.peerId, role: this.role, up: this.up, lastSeen: this.lastSeen };
  }

  /** Add `points` to the score (after decay); true when the peer must now be disconnected. */
  penalize(points: number): boolean {
    const now = Date.now();
    this.score = Math.max(0, this.score - ((now - this.scoredAt) / 1000) * this.limits.scoreDecayPerSec) + points;
    this.scoredAt = now;
    return this.score >= this.limits.disconnectScore;
  }

  send(protocol: string, kind: FrameKind, payload: Uint8Array, log: Logger): void {
    if (!this.up) return;
    if (payload.length > this.limits.maxFrameBytes) {
      // The peer would disconnect us for it: better it misses this one message.
      log.warn('not sending a frame above the frame limit; raise limits.maxFrameBytes on every node', { protocol, bytes: payload.length, max: this.limits.maxFrameBytes });
      return;
    }
    let box = this.outboxes.get(protocol);
    if (box === undefined) {
      box = new Outbox(protocol, this.limits.maxQueuedPerKind);
      this.outboxes.set(protocol, box);
    }
    box.queue.push(kind, frame(payload));
    box.pump(this.connection, log);
  }

  /** Frames dropped from full queues since the peer connected. */
  dropped(): number {
    let n = 0;
    for (const b of this.outboxes.values()) n += b.queue.dropped;
    return n;
  }

  close(): void {
    this.up = false;
    for (const b of this.outboxes.values()) b.close();
    this.outboxes.clear();
  }
}
