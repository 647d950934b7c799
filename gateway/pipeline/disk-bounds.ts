// The pipeline's disk accounting against its bounds: bytes of readings queued (durable, and taken but not
// yet committed) and bytes of sealed and stored envelopes; admission at the bounds (PIPELINE_FULL), and the
// alarm near them (log line on each change, a counter). The policy at the store bound is applied by the
// pipeline (dropping needs its worker); this only says whether a reading or a segment fits.
import type { Logger } from '../../chain/index.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import type { FullPolicy } from './pipeline-options.ts';

export interface DiskLimits {
  readonly maxQueueBytes: number;
  readonly maxStoreBytes: number;
  readonly policy: FullPolicy;
  /** Fraction of a bound at which the alarm comes on. */
  readonly alarmRatio: number;
}

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
  readonly alarmOn = { queue: false, store: false };

  constructor(
    private readonly limits: DiskLimits,
    private readonly log: Logger,
    /** Counters the pipeline reports; this class counts rejectedFull and alarms in them. */
    private readonly counters: { rejectedFull: number; alarms: number },
    storeBytes: number,
  ) {
    this.storeBytes = storeBytes;
  }

  /** Throws PIPELINE_FULL (not acknowledged upstream) when taking `bytes` more would pass a bound. */
  admit(bytes: number): void {
    const { maxQueueBytes, maxStoreBytes, policy } = this.limits;
    let bound: 'queue' | 'store' | null = null;
    if (this.queueBytes + this.pendingBytes + bytes > maxQueueBytes) bound = 'queue';
    else if (policy === 'stop-accepting' && (this.storeFull || this.storeBytes >= maxStoreBytes)) bound = 'store';
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
    throw new PipelineRuntimeError('PIPELINE_FULL', `the pipeline is at its ${bound} bound (policy ${policy}): do not acknowledge this reading, retry later`, fields);
  }

  /** Whether a segment of `need` envelope bytes fits the store bound now (an empty store takes any one segment). */
  fits(need: number): boolean {
    return this.storeBytes === 0 || this.storeBytes + need <= this.limits.maxStoreBytes;
  }

  /** Turn the alarm on or off for each bound after the accounting changed; logs each change. */
  update(): void {
    const { alarmRatio, maxQueueBytes, maxStoreBytes, policy } = this.limits;
    const now = {
      queue: this.queueBytes + this.pendingBytes >= alarmRatio * maxQueueBytes,
      store: this.storeFull || this.storeBytes >= alarmRatio * maxStoreBytes,
    };
    for (const bound of ['queue', 'store'] as const) {
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

  #fields(bound: 'queue' | 'store'): Record<string, unknown> {
    const { maxQueueBytes, maxStoreBytes, policy } = this.limits;
    return { bound, policy, queueBytes: this.queueBytes + this.pendingBytes, maxQueueBytes, storeBytes: this.storeBytes, maxStoreBytes };
  }
}
