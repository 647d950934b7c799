// The simulated network between nodes (by node index): per-link latency (a fixed base per link plus
// per-message jitter, which reorders), loss, duplication, symmetric and one-way partitions and delay spikes,
// each active over a window of virtual time. All draws come from the run's seeded stream.
import type { Rng } from './rng.ts';

export interface NetConfig {
  /** Smallest one-way latency (ms). */
  readonly baseMs: number;
  /** Each link's base gets a fixed extra in [0, spreadMs], drawn once. */
  readonly spreadMs: number;
  /** Each message gets an extra in [0, jitterMs]; jitter larger than the gaps between sends reorders. */
  readonly jitterMs: number;
  /** Probability that a message is lost. */
  readonly loss: number;
  /** Probability that a delivered message is delivered twice. */
  readonly dup: number;
  /** Loss and duplication apply to messages sent before this time (ms) only. */
  readonly cleanAfter: number;
}

export const CLEAN_NET: NetConfig = { baseMs: 10, spreadMs: 40, jitterMs: 20, loss: 0, dup: 0, cleanAfter: Infinity };

/** Messages from `from` to `to` sent in [start, end) are dropped; both directions unless `oneWay`. */
export interface Partition {
  readonly start: number;
  readonly end: number;
  readonly from: ReadonlySet<number>;
  readonly to: ReadonlySet<number>;
  readonly oneWay: boolean;
}

/** Messages sent in [start, end) over a link `applies` to take `extraMs` longer. */
export interface Spike {
  readonly start: number;
  readonly end: number;
  readonly extraMs: number;
  readonly applies: (from: number, to: number) => boolean;
}

export class Network {
  readonly partitions: Partition[] = [];
  readonly spikes: Spike[] = [];
  private readonly base: number[][];

  constructor(
    readonly config: NetConfig,
    nodeCount: number,
    private readonly rng: Rng,
  ) {
    this.base = Array.from({ length: nodeCount }, () => Array.from({ length: nodeCount }, () => config.baseMs + rng.int(0, config.spreadMs)));
  }

  /** Add a link's base latency for a node created after the network (a twin). */
  addNode(): void {
    for (const row of this.base) row.push(this.config.baseMs + this.rng.int(0, this.config.spreadMs));
    this.base.push(Array.from({ length: this.base.length + 1 }, () => this.config.baseMs + this.rng.int(0, this.config.spreadMs)));
  }

  /** True when the link from -> to is cut at time `t`. */
  cut(from: number, to: number, t: number): boolean {
    for (const p of this.partitions) {
      if (t < p.start || t >= p.end) continue;
      if (p.from.has(from) && p.to.has(to)) return true;
      if (!p.oneWay && p.to.has(from) && p.from.has(to)) return true;
    }
    return false;
  }

  /** One-way latency of a message sent at `t` (no loss). */
  latency(from: number, to: number, t: number): number {
    let ms = this.base[from]![to]! + this.rng.int(0, this.config.jitterMs);
    for (const s of this.spikes) if (t >= s.start && t < s.end && s.applies(from, to)) ms += s.extraMs;
    return ms;
  }

  /** Delivery times of a message sent at `t`: none (cut or lost), one, or two (duplicated). */
  deliveries(from: number, to: number, t: number): number[] {
    if (this.cut(from, to, t)) return [];
    const noisy = t < this.config.cleanAfter;
    if (noisy && this.rng.chance(this.config.loss)) return [];
    const first = t + this.latency(from, to, t);
    if (noisy && this.rng.chance(this.config.dup)) return [first, t + this.latency(from, to, t)];
    return [first];
  }
}
