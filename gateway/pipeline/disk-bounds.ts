// The pipeline's disk accounting against its bounds: bytes of readings queued (durable, and taken but not
// yet committed) and bytes of sealed and stored envelopes; admission at the bounds (PIPELINE_FULL), and the
// alarm near them (log line on each change, a counter). The policy at the store bound is applied by the
// pipeline (dropping needs its worker); this only says whether a reading or a segment fits.
// The logical bounds say nothing of the filesystem, which the chain and others share: the real free space
// (statfs, polled) is a third bound, 'disk', that keeps minFreeBytes free so the node never meets ENOSPC.
import { statfs } from 'node:fs/promises';
import type { Logger } from '../../chain/index.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import type { FullPolicy } from './pipeline-options.ts';

export interface DiskLimits {
  readonly maxQueueBytes: number;
  readonly maxStoreBytes: number;
  readonly policy: FullPolicy;
  /** Fraction of a bound at which the alarm comes on. */
  readonly alarmRatio: number;
  /** Free bytes the filesystem keeps: ingest stops before free space falls under it. */
  readonly minFreeBytes: number;
}

export type DiskBound = 'queue' | 'store' | 'disk';
export const DISK_BOUNDS: readonly DiskBound[] = ['queue', 'store', 'disk'];

/** How often the filesystem's free space is read; between reads the pipeline's own growth is subtracted. */
const FREE_POLL_MS = 1000;

export class DiskBounds {
  /** Queue bytes (key and value) of readings committed and not yet sealed. */
  queueBytes = 0;
  /** Queue bytes of readings taken and waiting for their group commit. */
  pendingBytes = 0;
  /** Envelope bytes of the segments sealed or stored (persisted as meta 'storeBytes'). */
  storeBytes: number;
  /** The store cannot take the next segment (and nothing may be dropped). */
  storeFull = false;
  /** Ingest is refusing readings. */
  full = false;
  readonly alarmOn: Record<DiskBound, boolean> = { queue: false, store: false, disk: false };
  /** The filesystem's size and the bytes free to us at the last statfs (null before the first). */
  #fs: { total: number; free: number; usedAtRead: number } | null = null;
  #poll: NodeJS.Timeout | null = null;

  constructor(
    private readonly limits: DiskLimits,
    private readonly log: Logger,
    /** Counters the pipeline reports; this class counts rejectedFull and alarms in them. */
    private readonly counters: { rejectedFull: number; alarms: number },
    storeBytes: number,
  ) {
    this.storeBytes = storeBytes;
  }

  /** Read the free space of the filesystem holding `dir` now, then every FREE_POLL_MS until stopWatching(). */
  async watchFree(dir: string): Promise<void> {
    await this.#readFree(dir);
    this.#poll = setInterval(() => {
      this.#readFree(dir).catch((err: unknown) => this.log.warn('cannot read the free disk space', { dir, error: (err as Error).message }));
    }, FREE_POLL_MS);
    this.#poll.unref();
  }

  stopWatching(): void {
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#poll = null;
  }

  async #readFree(dir: string): Promise<void> {
    const st = await statfs(dir);
    this.#fs = { total: st.blocks * st.bsize, free: st.bavail * st.bsize, usedAtRead: this.#used() };
    this.update();
  }

  #used(): number {
    return this.queueBytes + this.pendingBytes + this.storeBytes;
  }

  /** Free bytes now: the last statfs less what the pipeline wrote since (null before the first statfs). */
  freeBytes(): number | null {
    if (this.#fs === null) return null;
    return Math.max(0, this.#fs.free - Math.max(0, this.#used() - this.#fs.usedAtRead));
  }

  /** Throws PIPELINE_FULL (not acknowledged upstream) when taking `bytes` more would pass a bound. */
  admit(bytes: number): void {
    const { maxQueueBytes, maxStoreBytes, policy, minFreeBytes } = this.limits;
    const free = this.freeBytes();
    let bound: DiskBound | null = null;
    if (this.queueBytes + this.pendingBytes + bytes > maxQueueBytes) bound = 'queue';
    else if (policy === 'stop-accepting' && (this.storeFull || this.storeBytes >= maxStoreBytes)) bound = 'store';
    else if (free !== null && free - bytes < minFreeBytes) bound = 'disk';
    if (bound === null) {
      if (this.full) {
        this.full = false;
        this.log.info('pipeline accepts readings again', { queueBytes: this.queueBytes, storeBytes: this.storeBytes });
      }
      return;
    }
    this.counters.rejectedFull++;
    const fields = this.#fields(bound);
    if (!this.full) {
      this.full = true;
      this.log.warn(`pipeline full at the ${bound} bound: ingest rejects readings with PIPELINE_FULL (policy ${policy}); they are not acknowledged`, fields);
    }
    const what = bound === 'disk' ? `the filesystem is down to its reserve of ${this.limits.minFreeBytes} free bytes (pipeline.minFreeBytes); free disk space` : `the pipeline is at its ${bound} bound (policy ${policy})`;
    throw new PipelineRuntimeError('PIPELINE_FULL', `${what}: do not acknowledge this reading, retry later`, fields);
  }

  /** Whether a segment of `need` envelope bytes fits the store bound now (an empty store takes any one segment). */
  fits(need: number): boolean {
    return this.storeBytes === 0 || this.storeBytes + need <= this.limits.maxStoreBytes;
  }

  /** Turn the alarm on or off for each bound after the accounting changed; logs each change. */
  update(): void {
    const { alarmRatio, maxQueueBytes, maxStoreBytes, policy, minFreeBytes } = this.limits;
    const free = this.freeBytes();
    // As for the logical bounds, the alarm comes on at alarmRatio of the usable space (all but the reserve).
    const usable = this.#fs === null ? 0 : Math.max(0, this.#fs.total - minFreeBytes);
    const now = {
      queue: this.queueBytes + this.pendingBytes >= alarmRatio * maxQueueBytes,
      store: this.storeFull || this.storeBytes >= alarmRatio * maxStoreBytes,
      disk: free !== null && free < minFreeBytes + (1 - alarmRatio) * usable,
    };
    for (const bound of DISK_BOUNDS) {
      if (now[bound] === this.alarmOn[bound]) continue;
      this.alarmOn[bound] = now[bound];
      if (now[bound]) {
        this.counters.alarms++;
        this.log.warn(`pipeline disk use near its ${bound} bound (policy ${policy})`, this.#fields(bound));
      } else {
        this.log.info(`pipeline disk use back under its ${bound} alarm level`, this.#fields(bound));
      }
    }
  }

  #fields(bound: DiskBound): Record<string, unknown> {
    const { maxQueueBytes, maxStoreBytes, policy, minFreeBytes } = this.limits;
    return { bound, policy, queueBytes: this.queueBytes + this.pendingBytes, maxQueueBytes, storeBytes: this.storeBytes, maxStoreBytes, freeBytes: this.freeBytes(), minFreeBytes };
  }
}
