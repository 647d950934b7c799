// Group commit (docs/architecture.md "Pipeline"): readings taken by the pipeline wait here until one
// fsync'd batch writes many of them; a batch starts at once when maxBatchReadings are waiting, else after
// commitDelayMs (or on the next turn of the event loop), and batches run one at a time.
//
// Why callbacks and not a promise per reading: about a thousand readings are in flight at full MQTT speed,
// and each one's promise, resolve/reject functions and reactions outlived the young generation (profiled:
// garbage collection was a third of the gateway's busy time). A reading waiting here is one object, the
// PendingReading, which is also what the segmenter takes once the batch is durable; its `done` is shared by
// every reading of a consumer (the pump's one function), so settling allocates nothing.
import type { Reading } from '../../sensors/index.ts';
import type { HeldTag } from './delivery-records.ts';
import type { QueuedReading } from './segmenter.ts';

/**
 * Settles one reading given to Pipeline.take: `err` is null once it is durable (acknowledge it upstream),
 * else why it was not taken (PIPELINE_INVALID_INPUT, PIPELINE_FULL, PIPELINE_CLOSED, PIPELINE_FAILED).
 */
export type IngestDone = (reading: Reading, err: unknown) => void;

/** A reading admitted and waiting for its batch: its queue record, delivery tag and who to tell. */
export interface PendingReading extends QueuedReading {
  /** Its one-reading readings bytes, for the batch's queue record (pipeline-records.ts, 0x08). */
  readonly bytes: Uint8Array;
  /** Its delivery tag as held by the pipeline (delivery-records.ts). */
  readonly delivery: HeldTag | undefined;
  /** The reading as its source gave it (the driver acknowledges by identity). */
  readonly source: Reading;
  readonly done: IngestDone;
}

export interface GroupCommitOptions {
  readonly maxBatchReadings: number;
  readonly commitDelayMs: number;
}

/**
 * The waiting readings and the one commit loop. `commit` writes one batch and settles its readings; it
 * returns false to end the loop (its write failed). `room` is awaited before each batch (backpressure from
 * the sealer).
 */
export class GroupCommit {
  #pending: PendingReading[] = [];
  #timer: { cancel(): void } | null = null;
  #running: Promise<void> | null = null;

  constructor(
    private readonly opts: GroupCommitOptions,
    private readonly commit: (batch: PendingReading[]) => Promise<boolean>,
    private readonly room: () => Promise<void>,
  ) {}

  /** Readings waiting for a batch. */
  get waiting(): number {
    return this.#pending.length;
  }

  add(p: PendingReading): void {
    this.#pending.push(p);
    this.#schedule();
  }

  /** Resolves once every reading added before (and while) it runs has been through a batch. */
  async drain(): Promise<void> {
    while (this.#running !== null || this.#pending.length > 0) {
      if (this.#running === null) this.#start();
      await this.#running;
    }
  }

  /** Removes and returns every waiting reading (the pipeline failed: the caller settles them). */
  takeAll(): PendingReading[] {
    const all = this.#pending;
    this.#pending = [];
    return all;
  }

  #schedule(): void {
    if (this.#running !== null) return; // the running loop takes these next
    if (this.#pending.length >= this.opts.maxBatchReadings) return this.#start();
    if (this.#timer !== null) return;
    if (this.opts.commitDelayMs > 0) {
      const h = setTimeout(() => this.#start(), this.opts.commitDelayMs);
      this.#timer = { cancel: () => clearTimeout(h) };
    } else {
      const h = setImmediate(() => this.#start());
      this.#timer = { cancel: () => clearImmediate(h) };
    }
  }

  #start(): void {
    this.#timer?.cancel();
    this.#timer = null;
    if (this.#running !== null || this.#pending.length === 0) return;
    this.#running = this.#loop().finally(() => {
      this.#running = null;
      if (this.#pending.length > 0) this.#schedule();
    });
  }

  async #loop(): Promise<void> {
    while (this.#pending.length > 0) {
      await this.room();
      const batch = this.#pending.splice(0, this.opts.maxBatchReadings);
      if (batch.length === 0) return;
      if (!(await this.commit(batch))) return;
    }
  }
}
