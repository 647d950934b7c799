// Staying connected to the bootstrap peers (see docs/architecture.md, "Peers"): each is dialled at start and
// redialled after a failure or a disconnect, with an exponential backoff and jitter (50-100 % of the delay)
// so that nodes restarted together do not dial in step.
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../logger.ts';

export interface BootstrapHost {
  connected(peerId: string): boolean;
  /** Until when the peer is refused (ms since the epoch), or 0. */
  bannedUntil(peerId: string): number;
  dial(addr: Multiaddr): Promise<unknown>;
}

interface Entry {
  readonly addr: Multiaddr;
  readonly peerId: string;
  attempt: number;
  timer: NodeJS.Timeout | null;
}

export class BootstrapDialer {
  private readonly entries: Entry[];
  private stopped = false;

  constructor(
    peers: readonly { addr: Multiaddr; peerId: string }[],
    private readonly host: BootstrapHost,
    private readonly backoff: { baseMs: number; maxMs: number },
    private readonly log: Logger,
  ) {
    this.entries = peers.map((p) => ({ ...p, attempt: 0, timer: null }));
  }

  start(): void {
    for (const e of this.entries) this.dial(e);
  }

  /** A peer disconnected: redial it if it is a bootstrap peer. */
  disconnected(peerId: string): void {
    const e = this.entries.find((x) => x.peerId === peerId);
    if (e !== undefined) this.schedule(e);
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries) if (e.timer !== null) clearTimeout(e.timer);
  }

  private dial(e: Entry): void {
    if (this.stopped) return;
    if (this.host.connected(e.peerId)) {
      e.attempt = 0;
      return;
    }
    const banned = this.host.bannedUntil(e.peerId) - Date.now();
    if (banned > 0) return this.schedule(e, banned);
    this.host.dial(e.addr).then(
      () => {
        e.attempt = 0;
      },
      (err: unknown) => {
        this.log.debug('bootstrap peer unreachable', { peer: e.peerId, attempt: e.attempt, error: err });
        e.attempt++;
        this.schedule(e);
      },
    );
  }

  private schedule(e: Entry, atLeastMs = 0): void {
    if (this.stopped || e.timer !== null) return;
    const base = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(e.attempt, 20));
    const delay = Math.max(atLeastMs, base * (0.5 + Math.random() / 2));
    e.timer = setTimeout(() => {
      e.timer = null;
      this.dial(e);
    }, delay);
    e.timer.unref();
  }
}
