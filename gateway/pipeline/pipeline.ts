// The durable segment pipeline (docs/architecture.md "Pipeline"): readings enter a LevelDB queue and are
// acknowledged once the group-committed, fsync'd batch holding them is on disk; a per-stream segmenter
// (segmenter.ts) closes segments on time, size or seq reset; one worker then takes each segment queued ->
// sealed -> stored (segment-steps.ts: each transition one atomic, fsync'd batch, safe to redo), so a restart
// resumes wherever a crash stopped it, without losing or doubling a reading. Disk use is bounded by limits,
// with an alarm near the bounds (disk-bounds.ts) and a policy at them. The database format is in pipeline-records.ts.
//
// The content store's own writes are its business: storeStep records 'stored' (and deletes its envelope
// copy) only after add() resolved, so a store must make its writes durable before resolving (the
// UnixFsContentStore writes each file in one synced batch). Memory: open segments are held encoded (segmenter.ts),
// at most SEAL_BACKLOG_SEGMENTS segments' worth of closed segments wait for their seal, and a long queue is
// sealed while it is read back at open.
import type { Logger } from '../../chain/index.ts';
import { nopLogger } from '../../chain/index.ts';
import type { DeliveryLog, DeliveryTag, Reading } from '../../sensors/index.ts';
import { DeliveryRecords, checkDeliveryTag } from './delivery-records.ts';
import { DISK_BOUNDS, DiskBounds } from './disk-bounds.ts';
import { GroupCommit, type IngestDone, type PendingReading } from './group-commit.ts';
import { PipelineRuntimeError } from './pipeline-errors.ts';
import type { PipelineOptions, PipelineStatus, ResolvedOptions, SegmentRecord } from './pipeline-options.ts';
import { invalid, prepareReading, resolveOptions } from './pipeline-options.ts';
import {
  P_BATCH, P_ENVELOPE, P_SEGMENT, P_STREAM, decodeDecimal, decodeSegment, decodeStream, decodeStreamKey, encodeBatch, keyNumber,
  metaKey, numberKey, prefixRange,
} from './pipeline-records.ts';
import { QueueBatches, entryQueueBytes } from './queue-batches.ts';
import { loadOrCreateMasterKey, unwrapKey } from './segment-crypto.ts';
import type { Db, Op, StepContext } from './segment-steps.ts';
import { dropOldestStep, gcAfterDrops, openPipelineDb, sealStep, segmentRecordOf, storeStep } from './segment-steps.ts';
import type { ClosedSegment } from './segmenter.ts';
import { Segmenter } from './segmenter.ts';

export { openPipelineDb, segmentRecordOf } from './segment-steps.ts';
export type { IngestDone } from './group-commit.ts';

export type { FullPolicy, PipelineContentStore, PipelineLimits, PipelineOptions, PipelineStatus, SegmentRecord } from './pipeline-options.ts';

/** Envelope bytes beyond the readings: header, signed manifest, AEAD tag (an upper estimate). */
const ENVELOPE_SLACK = 2048;
/** Closed segments waiting to be sealed are held in memory; past this many segments' worth of bytes the
 * group commit waits for the sealer, so ingest (and, through unacknowledged readings, the sources) slows to
 * what sealing sustains instead of memory growing with the backlog. */
const SEAL_BACKLOG_SEGMENTS = 8;
/** Under 'drop-oldest-unsold', a round of drops frees the store down to this fraction of maxStoreBytes. */
const DROP_LOW_WATER = 0.98;

type WorkResult = { kind: 'idle' } | { kind: 'full' } | { kind: 'error'; error: unknown };
const IDLE: WorkResult = { kind: 'idle' };

interface StoreJob {
  readonly no: number;
  envelope?: Uint8Array;
}

export class Pipeline implements DeliveryLog {
  readonly #db: Db;
  readonly #o: ResolvedOptions;
  readonly #master: Uint8Array;
  readonly #steps: StepContext;
  readonly #log: Logger;
  readonly #now: () => number;
  /** No clock injected: the pipeline runs its own tick timer. */
  readonly #ownTimer: boolean;
  readonly #segmenter: Segmenter;
  readonly #sealQueue: ClosedSegment[] = [];
  readonly #storeQueue: StoreJob[] = [];
  readonly #commits: GroupCommit;
  /** Delivery tags of readings taken and not yet released by their source (DeliveryLog). */
  readonly #deliveries: DeliveryRecords;
  /** Commit loops waiting for the seal backlog to shrink. */
  #backlogWaiters: (() => void)[] = [];
  #worker: Promise<WorkResult> | null = null;
  #blocked: WorkResult | null = null;
  #queuedReadings = 0;
  readonly #queue = new QueueBatches(); // the queue's records, which of their readings are still queued
  #nextSegNo = 0;
  #tickTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #failed: PipelineRuntimeError | null = null;
  readonly #disk: DiskBounds;
  readonly #c = { ingested: 0, rejectedInvalid: 0, rejectedFull: 0, commits: 0, backlogWaits: 0, sealed: 0, stored: 0, droppedSegments: 0, droppedReadings: 0, sealErrors: 0, storeErrors: 0, alarms: 0 };

  private constructor(db: Db, opts: PipelineOptions, o: ResolvedOptions, master: Uint8Array, storeBytes: number, lastSeq: Map<string, number>, deliveries: DeliveryRecords) {
    this.#db = db;
    this.#deliveries = deliveries;
    this.#o = o;
    this.#master = master;
    this.#log = opts.logger ?? nopLogger;
    this.#now = opts.now ?? Date.now;
    this.#ownTimer = opts.now === undefined;
    this.#disk = new DiskBounds(o, this.#log, this.#c, storeBytes);
    this.#steps = { db, write: (ops) => this.#write(ops), content: opts.contentStore, signer: opts.signer, master, now: this.#now };
    this.#segmenter = new Segmenter({ windowMs: o.windowMs, maxSegmentBytes: o.maxSegmentBytes }, lastSeq);
    this.#commits = new GroupCommit(o, (batch) => this.#commitBatch(batch), () => this.#sealBacklogRoom());
  }

  /**
   * Open (or create) the pipeline in `opts.dir` and resume: queued readings go back into their segments,
   * segments sealed but not stored are stored. Throws PIPELINE_INVALID_INPUT naming a bad option,
   * PIPELINE_LOCKED, PIPELINE_SCHEMA_MISMATCH, PIPELINE_STATE_CORRUPT, and the master key's errors.
   */
  static async open(opts: PipelineOptions): Promise<Pipeline> {
    const o = resolveOptions(opts);
    const master = await loadOrCreateMasterKey(opts.masterKeyPath);
    let db: Db;
    try {
      db = await openPipelineDb(opts.dir);
    } catch (err) {
      master.fill(0);
      throw err;
    }
    try {
      const lastSeq = new Map<string, number>();
      for await (const [k, v] of db.iterator(prefixRange(P_STREAM))) {
        const stream = decodeStreamKey(k);
        lastSeq.set(stream, decodeStream(stream, v).lastSeq);
      }
      const storeBytes = decodeDecimal(await db.get(metaKey('storeBytes')), 'storeBytes') ?? 0;
      const p = new Pipeline(db, opts, o, master, storeBytes, lastSeq, await DeliveryRecords.load(db));
      await p.#disk.watchFree(opts.dir);
      await p.#recover().catch((err: unknown) => { p.#disk.stopWatching(); throw err; });
      return p;
    } catch (err) {
      master.fill(0);
      await db.close();
      throw err;
    }
  }

  async #recover(): Promise<void> {
    for await (const k of this.#db.keys({ ...prefixRange(P_SEGMENT), reverse: true, limit: 1 })) this.#nextSegNo = keyNumber(k) + 1;
    // Segments sealed before the stop are stored first; segments sealed while resuming join the queue after them.
    for await (const k of this.#db.keys(prefixRange(P_ENVELOPE))) this.#storeQueue.push({ no: keyNumber(k) });
    const awaitingStore = this.#storeQueue.length;
    this.#queue.startAtLeast(this.#deliveries.numbersAbove);
    let queued = 0;
    // The iterators read a snapshot, so sealing (which deletes queue entries) can run while they go on: a long
    // queue is sealed as it is read instead of being held in memory as closed segments all at once.
    for await (const q of this.#queue.recover(this.#db)) {
      this.#disk.queueBytes += q.queueBytes;
      this.#queuedReadings++;
      queued++;
      this.#segmenter.add(q, this.#sealQueue);
      if (this.#blocked === null && this.#sealBacklogBytes() > SEAL_BACKLOG_SEGMENTS * this.#o.maxSegmentBytes) await this.#kick();
    }
    if (queued + awaitingStore > 0) this.#log.info('pipeline resumed', { queuedReadings: queued, awaitingStore, sealedWhileResuming: this.#c.sealed, stillQueued: this.#queuedReadings });
    this.#disk.update();
    if (this.#ownTimer) {
      const every = Math.min(1000, Math.max(10, Math.floor(this.#o.windowMs / 4)));
      this.#tickTimer = setInterval(() => {
        this.tick().catch((err: unknown) => this.#log.error('pipeline tick failed', { error: (err as Error).message }));
      }, every);
      this.#tickTimer.unref();
    }
    this.#maybeKick();
  }

  /**
   * Take `reading` (ts floored to an integer) and resolve once it is durable: in a group-committed queue
   * batch written with fsync. Await it before acknowledging upstream (backpressure). Rejects with
   * PIPELINE_INVALID_INPUT (a reading that cannot be sealed), PIPELINE_FULL (a disk bound: do not ack),
   * PIPELINE_CLOSED, PIPELINE_FAILED. `take` is the same without a promise per reading.
   */
  ingest(reading: Reading): Promise<void> {
    return new Promise<void>((resolve, reject) => this.take(reading, (_r, err) => (err === null ? resolve() : reject(err))));
  }

  /**
   * Take `reading`; `done(reading, null)` once it is durable, `done(reading, err)` when it was not taken (the
   * errors of ingest; invalid input and a full or closed pipeline are told before take returns). Never throws.
   */
  take(reading: Reading, done: IngestDone): void {
    try {
      this.#commits.add(this.#admit(reading, done)); // add() does not throw: what throws is admission
    } catch (err) {
      done(reading, err);
    }
  }

  #admit(reading: Reading, done: IngestDone): PendingReading {
    if (this.#failed !== null) throw this.#failed;
    if (this.#closed) throw new PipelineRuntimeError('PIPELINE_CLOSED', 'the pipeline is closed; open it again to ingest');
    let prepared;
    let delivery: DeliveryTag | undefined;
    try {
      prepared = prepareReading(reading);
      delivery = checkDeliveryTag(reading.delivery);
    } catch (err) {
      this.#c.rejectedInvalid++;
      throw err;
    }
    const arrivedAt = this.#now();
    const queueBytes = entryQueueBytes(prepared.bytes.length);
    this.#disk.admit(queueBytes);
    const queueNo = this.#queue.take();
    // Held from now on, before it is durable: a repeat that arrives meanwhile (the connection dropped while
    // this reading waits for its commit) must not be emitted again.
    const held = delivery === undefined ? undefined : this.#deliveries.take(delivery);
    this.#disk.pendingBytes += queueBytes;
    this.#disk.update();
    return { queueNo, reading: prepared.reading, leaf: prepared.leaf, size: prepared.size, queueBytes, arrivedAt, bytes: prepared.bytes, delivery: held, source: reading, done };
  }

  /** DeliveryLog: a reading with this tag was taken (stored, or being stored) and not yet released. */
  has(tag: DeliveryTag): boolean {
    return this.#deliveries.has(tag);
  }

  /** DeliveryLog: the source acknowledged this reading's message; its record goes with the next batch. */
  release(tag: DeliveryTag): void {
    this.#deliveries.release(tag);
  }

  /** Close the segments whose window is over, and retry sealing/storing that failed before. Resolves when that work is done. */
  async tick(): Promise<void> {
    if (this.#closed || this.#failed !== null) return;
    this.#sealQueue.push(...this.#segmenter.due(this.#now()));
    this.#blocked = null;
    while (this.#hasWork() && this.#blocked === null && !this.#closed) await this.#kick();
  }

  /**
   * Seal and store everything ingested before the call, open segments included. Rejects with the error that
   * stopped a seal or store (the readings stay queued or sealed, and are retried), or PIPELINE_FULL when
   * 'stop-accepting' keeps the store from taking another segment.
   */
  async flush(): Promise<void> {
    this.#assertUsable();
    await this.#commits.drain();
    this.#sealQueue.push(...this.#segmenter.closeAll('flush'));
    this.#blocked = null;
    for (;;) {
      this.#assertUsable();
      if (!this.#hasWork()) return;
      const r = await this.#kick();
      if (r.kind === 'error') throw r.error;
      if (r.kind === 'full') {
        const { policy } = this.#o;
        throw new PipelineRuntimeError('PIPELINE_FULL', `the store is at limits.maxStoreBytes (policy ${policy}, nothing it may drop): readings stay queued until space is freed`, { bound: 'store', policy });
      }
    }
  }

  /** Every segment record (sealed, stored, dropped) in the order they were sealed, optionally of one stream. */
  async *segments(opts: { stream?: string } = {}): AsyncGenerator<SegmentRecord> {
    for await (const [k, v] of this.#db.iterator(prefixRange(P_SEGMENT))) {
      const rec = decodeSegment(keyNumber(k), v);
      if (opts.stream === undefined || rec.stream === opts.stream) yield segmentRecordOf(rec);
    }
  }

  /** The key of segment `id`, unwrapped (the caller's to zero). Throws PIPELINE_SEGMENT_NOT_FOUND, PIPELINE_SEGMENT_DROPPED, KEY_UNWRAP_FAILED. */
  async segmentKey(id: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(id) || id < 0) throw invalid('id', 'must be a segment id (an integer >= 0)');
    const v = await this.#db.get(numberKey(P_SEGMENT, id));
    if (v === undefined) throw new PipelineRuntimeError('PIPELINE_SEGMENT_NOT_FOUND', `no segment ${id} in this pipeline`, { id });
    const rec = decodeSegment(id, v);
    if (rec.state === 'dropped') throw new PipelineRuntimeError('PIPELINE_SEGMENT_DROPPED', `segment ${id} was dropped to bound disk use; its key is gone`, { id });
    return unwrapKey(rec.wrappedKey, this.#master, rec.manifestHash);
  }

  status(): PipelineStatus {
    const open = this.#segmenter.openStats();
    const alarmOn = DISK_BOUNDS.filter((b) => this.#disk.alarmOn[b]);
    return {
      ...this.#c,
      freeBytes: this.#disk.freeBytes(), queueBytes: this.#disk.queueBytes, queuedReadings: this.#queuedReadings, storeBytes: this.#disk.storeBytes,
      openSegments: open.segments, awaitingSeal: this.#sealQueue.length, awaitingStore: this.#storeQueue.length,
      alarm: alarmOn.length > 0, alarmOn, full: this.#disk.full, failed: this.#failed?.message ?? null,
    };
  }

  /** Stop: readings already taken are made durable, the step in progress finishes, the rest resumes at the next open. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#wakeBacklogWaiters();
      if (this.#tickTimer !== null) clearInterval(this.#tickTimer);
      this.#disk.stopWatching();
      await this.#commits.drain();
      if (this.#worker !== null) await this.#worker;
      // Records of released tags go now; if this write fails they stay, which is harmless: a stale record only
      // matters to a redelivered message with the same key and digest, and the broker redelivers only unacked ones.
      const released = this.#deliveries.takeReleased();
      if (released.length > 0 && this.#failed === null) await this.#write(released).catch(() => {});
      await this.#db.close();
      this.#master.fill(0);
    })();
    return this.#closing;
  }

  // ---- ingest: admission and group commit ------------------------------------------------------------

  #assertUsable(): void {
    if (this.#failed !== null) throw this.#failed;
    if (this.#closed) throw new PipelineRuntimeError('PIPELINE_CLOSED', 'the pipeline is closed');
  }

  /** One batch of the group commit (group-commit.ts): one queue batch record, fsync'd, handed to the segmenter, settled. */
  async #commitBatch(batch: PendingReading[]): Promise<boolean> {
    let bytes = 0;
    const first = batch[0]!.queueNo;
    const ops: Op[] = this.#deliveries.takeReleased();
    ops.push({ type: 'put', key: numberKey(P_BATCH, first), value: encodeBatch(batch) });
    const tags = this.#deliveries.recordBatch(first, batch);
    if (tags !== null) ops.push(tags);
    for (const p of batch) bytes += p.queueBytes;
    try {
      await this.#write(ops);
    } catch (err) {
      for (const p of batch) this.#settle(p, err);
      return false;
    }
    this.#queue.written(first, batch.length);
    this.#disk.pendingBytes -= bytes;
    this.#disk.queueBytes += bytes;
    this.#queuedReadings += batch.length;
    this.#c.ingested += batch.length;
    this.#c.commits++;
    for (const p of batch) this.#segmenter.add(p, this.#sealQueue);
    if (this.#disk.queueBytes >= this.#o.alarmRatio * this.#o.maxQueueBytes && this.#blocked === null) {
      this.#sealQueue.push(...this.#segmenter.closeAll('pressure')); // seal early rather than fill the queue
    }
    this.#disk.update();
    for (const p of batch) this.#settle(p, null);
    this.#maybeKick();
    return true;
  }

  /** Tell a reading's consumer; a consumer that throws must not stop the commit loop (its error is logged). */
  #settle(p: PendingReading, err: unknown): void {
    try {
      p.done(p.source, err);
    } catch (thrown) {
      this.#log.error('an ingest callback threw', { error: (thrown as Error).message });
    }
  }

  /**
   * Wait while the closed segments awaiting their seal hold more than SEAL_BACKLOG_SEGMENTS segments' worth
   * of bytes and the worker is draining them. Never waits on a blocked worker (store full, failing seal):
   * the disk bounds and their policy govern then; nor once closing, so close() and flush() always finish.
   */
  async #sealBacklogRoom(): Promise<void> {
    const bound = SEAL_BACKLOG_SEGMENTS * this.#o.maxSegmentBytes;
    for (;;) {
      if (this.#closed || this.#failed !== null || this.#blocked !== null) return;
      if (this.#sealBacklogBytes() <= bound) return;
      this.#maybeKick();
      if (this.#worker === null) return;
      this.#c.backlogWaits++;
      await new Promise<void>((resolve) => this.#backlogWaiters.push(resolve));
    }
  }

  /** Readings bytes of the closed segments waiting to be sealed (held in memory). */
  #sealBacklogBytes(): number {
    let bytes = 0;
    for (const seg of this.#sealQueue) bytes += seg.size;
    return bytes;
  }

  #wakeBacklogWaiters(): void {
    const waiters = this.#backlogWaiters;
    this.#backlogWaiters = [];
    for (const w of waiters) w();
  }

  /** One atomic, fsync'd batch. A failure is fatal: every later call fails with PIPELINE_FAILED. */
  async #write(ops: Op[]): Promise<void> {
    if (this.#failed !== null) throw this.#failed;
    try {
      await this.#db.batch(ops, { sync: true });
    } catch (err) {
      this.#failed = new PipelineRuntimeError('PIPELINE_FAILED', `a write to the pipeline database failed (${(err as Error).message}); fix the disk and restart datagate, it resumes from the database`, {}, { cause: err });
      this.#log.error('pipeline database write failed: the pipeline stops', { error: (err as Error).message });
      this.#disk.pendingBytes = 0;
      for (const p of this.#commits.takeAll()) this.#settle(p, this.#failed);
      throw this.#failed;
    }
  }

  // ---- the segment worker: seal, store, make room --------------------------------------------------

  #hasWork(): boolean {
    return this.#sealQueue.length > 0 || this.#storeQueue.length > 0;
  }

  #maybeKick(): void {
    if (this.#blocked === null && !this.#closed && this.#failed === null && this.#hasWork()) void this.#kick();
  }

  /** Run the worker (one at a time); resolves with why it stopped. */
  #kick(): Promise<WorkResult> {
    this.#worker ??= this.#work().then((r) => {
      this.#worker = null;
      if (r.kind !== 'idle') this.#blocked = r;
      else this.#maybeKick(); // work that arrived while the loop was ending
      this.#wakeBacklogWaiters();
      return r;
    });
    return this.#worker;
  }

  async #work(): Promise<WorkResult> {
    while (!this.#closed) {
      const job = this.#storeQueue[0];
      if (job !== undefined) {
        try {
          await this.#store(job);
        } catch (err) {
          this.#c.storeErrors++;
          this.#log.error('storing a sealed segment failed; retried at the next tick', { segment: job.no, error: (err as Error).message, code: (err as { code?: string }).code });
          return { kind: 'error', error: err };
        }
        this.#storeQueue.shift();
        continue;
      }
      const seg = this.#sealQueue[0];
      if (seg === undefined) return IDLE;
      try {
        if (!(await this.#makeRoom(seg))) return { kind: 'full' };
        await this.#seal(seg);
      } catch (err) {
        this.#c.sealErrors++;
        this.#log.error('sealing a segment failed; its readings stay queued and are retried at the next tick', { stream: seg.stream, count: seg.count, error: (err as Error).message, code: (err as { code?: string }).code });
        return { kind: 'error', error: err };
      }
      this.#sealQueue.shift();
      this.#wakeBacklogWaiters();
    }
    return IDLE;
  }

  /** queued -> sealed (sealStep), then the accounting. */
  async #seal(seg: ClosedSegment): Promise<void> {
    const no = this.#nextSegNo;
    const release = this.#queue.release(seg.queueNos);
    const { rec, envelope, storeBytes } = await sealStep(this.#steps, seg, no, this.#disk.storeBytes, release.ops);
    release.commit();
    this.#nextSegNo = no + 1;
    this.#disk.storeBytes = storeBytes;
    this.#disk.queueBytes -= seg.queueBytes;
    this.#queuedReadings -= seg.count;
    this.#c.sealed++;
    this.#storeQueue.push({ no, envelope });
    this.#disk.update();
    this.#log.debug('segment sealed', { segment: no, stream: seg.stream, count: rec.count, firstSeq: rec.firstSeq, lastSeq: rec.lastSeq, reason: seg.reason, bytes: envelope.length });
  }

  /** sealed -> stored (storeStep). */
  async #store(job: StoreJob): Promise<void> {
    if (await storeStep(this.#steps, job.no, job.envelope)) this.#c.stored++;
    job.envelope = undefined;
  }

  /** Whether the store can take `seg` now, after dropping the oldest unsold segments under 'drop-oldest-unsold'. */
  async #makeRoom(seg: ClosedSegment): Promise<boolean> {
    const need = seg.size + ENVELOPE_SLACK;
    const fits = (): boolean => this.#disk.fits(need);
    if (this.#o.policy === 'drop-oldest-unsold' && !fits()) {
      // Down to DROP_LOW_WATER of the bound, not just below it: a round of drops (and its gc) then comes once
      // per few percent of new data instead of once per new segment.
      const lowWater = Math.max(0, DROP_LOW_WATER * this.#o.maxStoreBytes - need);
      let dropped = 0;
      while ((!fits() || this.#disk.storeBytes > lowWater) && (await this.#dropOldest())) dropped++; // each drop frees one segment
      await gcAfterDrops(this.#steps, this.#log, dropped); // then one gc frees their blocks
    }
    const ok = fits();
    if (ok !== !this.#disk.storeFull) {
      this.#disk.storeFull = !ok;
      const fields = { storeBytes: this.#disk.storeBytes, maxStoreBytes: this.#o.maxStoreBytes, policy: this.#o.policy, queuedReadings: this.#queuedReadings };
      if (ok) this.#log.info('the store takes segments again', fields);
      else this.#log.warn(`store full (policy ${this.#o.policy}): sealing waits, readings stay queued${this.#o.policy === 'stop-accepting' ? ' and ingest rejects new ones' : ' (nothing unsold left to drop)'}`, fields);
      this.#disk.update();
    }
    return ok;
  }

  /** Drop the oldest stored, unsold segment (dropOldestStep) and say so in the log. */
  async #dropOldest(): Promise<boolean> {
    const dropped = await dropOldestStep(this.#steps, this.#disk.storeBytes);
    if (dropped === null) return false;
    const { rec } = dropped;
    this.#disk.storeBytes -= rec.envelopeBytes;
    this.#c.droppedSegments++;
    this.#c.droppedReadings += rec.count;
    this.#log.warn('store full: dropped the oldest unsold segment (policy drop-oldest-unsold)', {
      segment: rec.no, stream: rec.stream, firstSeq: rec.firstSeq, lastSeq: rec.lastSeq, count: rec.count, bytes: rec.envelopeBytes, cid: rec.cid,
      storeBytes: this.#disk.storeBytes, maxStoreBytes: this.#o.maxStoreBytes,
    });
    this.#disk.update();
    return true;
  }
}
