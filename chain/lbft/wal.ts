// The consensus write-ahead log. The LBFT driver appends every input here before the reducer sees it and,
// after a crash, replays the log through the same path (CometBFT consensus/wal.go). Records are opaque
// bytes: the caller encodes its events; this module only keeps them intact and in order.
//
// The on-disk format (numbered files of checksummed frames) is a contract, described in wal-format.ts.
//
// Checkpoints: checkpoint() starts a new file once the current one holds more than `checkpointBytes`, so the
// record appended next (the driver's start of a height) opens that file; replay({ from }) then begins at the
// newest file whose first record the caller accepts, and start-up reads a bounded part of the log however
// long the node ran.
//
// Crash model: a crash may tear the frame being written (cut short, or its bytes left as zeros). On open,
// the torn tail of the newest file is truncated away and reported in `replayStats.truncated`, as is a newest
// file found empty; `replayStats.created` says the directory held no WAL file at all. Damage
// anywhere else is corruption (ChainError WAL_CORRUPT naming file and offset) and stops the node: replaying
// around a hole could make the validator forget a vote. One limit of the format: a length field corrupted
// to point past the end of the newest file looks exactly like a torn write, so the frames behind it are
// dropped as a torn tail; `truncated.droppedBytes` says how much went, for the driver to log.
// Appends with sync:false may be lost on power failure (not on a process crash); use sync:true for any
// input whose loss could lead to a conflicting signature (own votes), as CometBFT's WriteSync does.
// One process at a time: the WAL takes no lock, so the composition root must not open a directory twice.
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ChainError } from '../errors.ts';
import { ChunkReader, MAX_FRAME_BYTES, WAL_FRAME_OVERHEAD, WAL_HEADER_BYTES, corrupt, crc32, countFrames, fileHeader, headerProblem, readAt, scanFrames, walFileName, walFileNumber } from './wal-format.ts';

export { MAX_FRAME_BYTES, WAL_FRAME_OVERHEAD, WAL_HEADER_BYTES, WAL_VERSION, crc32, crc32Portable, walFileName } from './wal-format.ts';

/** A file that would grow past this many bytes is closed and the next numbered file started. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** checkpoint() starts a new file once the current one holds more than this: start-up reads about this much. */
export const DEFAULT_CHECKPOINT_BYTES = 256 * 1024;

/** The torn tail that open() cut from the newest file (or the newest file it found empty). */
export interface WalTruncation {
  readonly file: string;
  /** Offset where the torn frame began; the file now ends here. */
  readonly offset: number;
  readonly droppedBytes: number;
  /** Frames, whole or torn, that the length fields in the dropped bytes describe (0 for zeros or an empty file). */
  readonly droppedRecords: number;
  readonly reason: string;
}

/** What open() and the last replay() found. */
export interface WalReplayStats {
  /** Files and frames (and their payload bytes) yielded by the last replay(). */
  files: number;
  frames: number;
  payloadBytes: number;
  /** A torn tail cut off at open (a crash mid-write); null if the log ended cleanly. Log it as a warning. */
  truncated: WalTruncation | null;
  /** open() found no WAL file and began a new log: on a node that has run before, the WAL was deleted. */
  created: boolean;
}

export interface WalOptions {
  /** Rotate to a new file before one would grow past this (default 64 MiB). A larger frame gets a file of its own. */
  readonly maxFileBytes?: number;
  /** checkpoint() rotates once the current file holds more than this (default 256 KiB). */
  readonly checkpointBytes?: number;
}

export interface ReplayOptions {
  /**
   * Begin at the newest file whose first record this accepts (a checkpoint the caller recognises), skipping
   * every file before it unread; with no such file, or without `from`, every file is replayed.
   */
  readonly from?: (firstRecord: Uint8Array) => boolean;
}

/** An append-only, checksummed, rotating log of opaque records. See the module comment for the format. */
export class Wal {
  readonly dir: string;
  readonly #maxFileBytes: number;
  readonly #checkpointBytes: number;
  #fh: FileHandle | null;
  #fileNo: number;
  #size: number;
  #queue: Promise<void> = Promise.resolve();
  #failure: ChainError | null = null;
  #stats: WalReplayStats;

  private constructor(dir: string, limits: FileLimits, fh: FileHandle, fileNo: number, size: number, found: Pick<WalReplayStats, 'truncated' | 'created'>) {
    this.dir = dir;
    this.#maxFileBytes = limits.maxFileBytes;
    this.#checkpointBytes = limits.checkpointBytes;
    this.#fh = fh;
    this.#fileNo = fileNo;
    this.#size = size;
    this.#stats = { files: 0, frames: 0, payloadBytes: 0, ...found };
  }

  /**
   * Open (or create) the WAL in `dir`. Cuts a torn tail off the newest file (reported in replayStats).
   * Throws ChainError WAL_CORRUPT if the newest file is damaged before its last frame or files are missing
   * from the numbered sequence, and WAL_WRITE_FAILED if the directory cannot be written.
   */
  static async open(dir: string, opts: WalOptions = {}): Promise<Wal> {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('Wal.open: dir must be a non-empty path');
    const limits: FileLimits = { maxFileBytes: opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, checkpointBytes: opts.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES };
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value <= WAL_HEADER_BYTES + WAL_FRAME_OVERHEAD) {
        throw new RangeError(`Wal.open: ${name} must be an integer above ${WAL_HEADER_BYTES + WAL_FRAME_OVERHEAD}, got ${value}`);
      }
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw writeFailed(`cannot create the WAL directory ${dir}`, { dir }, err);
    }
    const numbers = await listFiles(dir);
    const last = numbers[numbers.length - 1];
    if (last === undefined) {
      const fh = await createFile(dir, 1);
      return new Wal(dir, limits, fh, 1, WAL_HEADER_BYTES, { truncated: null, created: true });
    }
    const path = join(dir, walFileName(last));
    const fh = await open(path, 'r+');
    try {
      const { size } = await fh.stat();
      const header = await readAt(fh, 0, WAL_HEADER_BYTES);
      const bad = headerProblem(header, last);
      if (bad !== null) {
        // A crash while rotating can leave the new file with no frames and its header cut short or unwritten.
        const unwritten = size < WAL_HEADER_BYTES || header.every((b) => b === 0);
        if (size > WAL_HEADER_BYTES || !unwritten) throw corrupt(path, 0, bad);
        await fh.close();
        await rm(path);
        const fresh = await createFile(dir, last);
        const reason = size === 0 ? 'file was empty (a crash while rotating, or its contents were lost); header rewritten' : `file header torn (${bad}); header rewritten`;
        const truncated = { file: path, offset: 0, droppedBytes: size, droppedRecords: 0, reason };
        return new Wal(dir, limits, fresh, last, WAL_HEADER_BYTES, { truncated, created: false });
      }
      const scan = scanFrames(new ChunkReader(fh, size), path, true);
      let step = await scan.next();
      while (step.done !== true) step = await scan.next();
      const { end, torn } = step.value;
      let truncated: WalTruncation | null = null;
      if (torn !== null) {
        const droppedRecords = await countFrames(new ChunkReader(fh, size), end);
        try {
          await fh.truncate(end);
          await fh.sync();
        } catch (err) {
          throw writeFailed(`cannot cut the torn tail off ${path} at offset ${end}`, { file: path, offset: end }, err);
        }
        truncated = { file: path, offset: end, droppedBytes: size - end, droppedRecords, reason: torn };
      }
      return new Wal(dir, limits, fh, last, end, { truncated, created: false });
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  /** Number of the file appends currently go to. Note it when appending a checkpoint record; see prune(). */
  get currentFile(): number {
    return this.#fileNo;
  }

  /** What open() found (a torn tail cut, a new log begun) and the counts of the last replay(). */
  get replayStats(): Readonly<WalReplayStats> {
    return { ...this.#stats };
  }

  /**
   * Append one record (1..MAX_FRAME_BYTES bytes, copied at call time). Appends are written in call order.
   * With `sync: true` the promise resolves only after the frame is on stable storage (fdatasync).
   * Any write error is fatal: this and every later append reject with ChainError WAL_WRITE_FAILED, and the
   * driver must stop (systemd restarts it and replay picks up from what reached the disk).
   */
  async append(payload: Uint8Array, opts: { sync?: boolean } = {}): Promise<void> {
    if (!(payload instanceof Uint8Array)) throw new TypeError('Wal.append: payload must be a Uint8Array');
    if (payload.length === 0 || payload.length > MAX_FRAME_BYTES) {
      throw new RangeError(`Wal.append: payload must be 1..${MAX_FRAME_BYTES} bytes, got ${payload.length}`);
    }
    const frame = Buffer.allocUnsafe(WAL_FRAME_OVERHEAD + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    frame.writeUInt32BE(crc32(payload), 4);
    frame.set(payload, WAL_FRAME_OVERHEAD);
    const sync = opts.sync === true;
    return this.#enqueue(() => this.#write(frame, sync));
  }

  /**
   * Every intact record, oldest first, across all files (from the checkpoint `opts.from` picks) up to what had
   * been appended when replay began. Throws ChainError WAL_CORRUPT (fields: file, offset, reason) at a damaged
   * frame or a missing file. Do not prune() while a replay is running.
   */
  async *replay(opts: ReplayOptions = {}): AsyncGenerator<Uint8Array> {
    const lastNo = this.#fileNo;
    const lastSize = this.#size;
    let numbers = (await listFiles(this.dir)).filter((n) => n <= lastNo);
    if (opts.from !== undefined) {
      const accept = opts.from;
      for (let i = numbers.length - 1; i > 0; i--) {
        const first = await this.#firstRecord(numbers[i]!, numbers[i] === lastNo ? lastSize : undefined);
        if (first !== null && accept(first)) {
          numbers = numbers.slice(i);
          break;
        }
      }
    }
    this.#stats = { ...this.#stats, files: 0, frames: 0, payloadBytes: 0 };
    for (const n of numbers) {
      const { path, fh, size } = await this.#openForReading(n, n === lastNo ? lastSize : undefined);
      try {
        this.#stats.files++;
        for await (const payload of scanFrames(new ChunkReader(fh, size), path, false)) {
          this.#stats.frames++;
          this.#stats.payloadBytes += payload.length;
          yield payload;
        }
      } finally {
        await fh.close();
      }
    }
  }

  /** The first intact record of file `n` (which must hold at most `size` bytes), or null if it has none. */
  async #firstRecord(n: number, size: number | undefined): Promise<Uint8Array | null> {
    const { path, fh, size: bytes } = await this.#openForReading(n, size);
    try {
      const step = await scanFrames(new ChunkReader(fh, bytes), path, false).next();
      return step.done === true ? null : step.value;
    } finally {
      await fh.close();
    }
  }

  /** Open file `n` read-only with its header checked; `size` bounds what is read (the size on disk if omitted). */
  async #openForReading(n: number, size: number | undefined): Promise<{ path: string; fh: FileHandle; size: number }> {
    const path = join(this.dir, walFileName(n));
    const fh = await open(path, 'r');
    try {
      const problem = headerProblem(await readAt(fh, 0, WAL_HEADER_BYTES), n);
      if (problem !== null) throw corrupt(path, 0, problem);
      return { path, fh, size: size ?? (await fh.stat()).size };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /**
   * Delete all but the newest `keepLastFiles` files (the current file is always kept); returns how many went.
   * Intended use: when the driver appends the checkpoint record of committed height H (the record from which
   * a restart must replay), it notes `currentFile`; once H is durable in the block store it may call
   * `prune(currentFile - noted + 1)`, so that replay still starts at or before that checkpoint.
   * Files are removed oldest first, so a crash part-way leaves a contiguous sequence.
   */
  async prune(keepLastFiles: number): Promise<number> {
    if (!Number.isSafeInteger(keepLastFiles) || keepLastFiles < 1) {
      throw new RangeError(`Wal.prune: keepLastFiles must be an integer >= 1, got ${keepLastFiles}`);
    }
    const cutoff = this.#fileNo - keepLastFiles + 1;
    const doomed = (await listFiles(this.dir)).filter((n) => n < cutoff);
    for (const n of doomed) await rm(join(this.dir, walFileName(n)));
    if (doomed.length > 0) await syncDir(this.dir);
    return doomed.length;
  }

  /**
   * Start the next numbered file now (after the appends already issued), e.g. at a checkpoint so that a later
   * prune() can drop everything before it. The current file is fsynced first. Does nothing while the current
   * file holds no frame. Failure is fatal like an append's (WAL_WRITE_FAILED).
   */
  async rotate(): Promise<void> {
    return this.#enqueue(() => this.#rotateNow());
  }

  async #rotateNow(): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    if (this.#fh === null) throw writeFailed('the WAL is closed; rotating after close() is a bug in the caller', { dir: this.dir });
    if (this.#size <= WAL_HEADER_BYTES) return;
    try {
      await this.#rotate();
    } catch (err) {
      const at = { file: this.#path(), offset: this.#size };
      this.#failure = err instanceof ChainError ? err : writeFailed(`rotating past ${at.file} failed`, at, err);
      throw this.#failure;
    }
  }

  /**
   * Mark a checkpoint: the record appended next is one a restart can replay from (see replay's `from`). Once
   * the current file holds more than `checkpointBytes`, the next file is started first so that record opens
   * it. Failure is fatal like an append's (WAL_WRITE_FAILED).
   */
  async checkpoint(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#size > this.#checkpointBytes) await this.#rotateNow();
    });
  }

  /** Wait for pending appends, flush to stable storage and close. Later appends reject. */
  async close(): Promise<void> {
    await this.#enqueue(async () => {
      const fh = this.#fh;
      if (fh === null) return;
      this.#fh = null;
      try {
        if (this.#failure === null) await fh.datasync();
      } catch (err) {
        throw writeFailed(`flushing ${this.#path()} on close failed`, { file: this.#path() }, err);
      } finally {
        await fh.close();
      }
    });
  }

  #enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }

  #path(): string {
    return join(this.dir, walFileName(this.#fileNo));
  }

  async #write(frame: Buffer, sync: boolean): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    if (this.#fh === null) throw writeFailed('the WAL is closed; appends after close() are a bug in the caller', { dir: this.dir });
    try {
      if (this.#size > WAL_HEADER_BYTES && this.#size + frame.length > this.#maxFileBytes) await this.#rotate();
      const fh = this.#fh;
      let done = 0;
      while (done < frame.length) {
        const { bytesWritten } = await fh.write(frame, done, frame.length - done, this.#size + done);
        done += bytesWritten;
      }
      this.#size += frame.length;
      if (sync) await fh.datasync();
    } catch (err) {
      const at = { file: this.#path(), offset: this.#size };
      this.#failure = err instanceof ChainError ? err : writeFailed(`appending to ${at.file} at offset ${at.offset} failed`, at, err);
      throw this.#failure;
    }
  }

  async #rotate(): Promise<void> {
    const old = this.#fh!;
    await old.sync();
    this.#fh = null;
    await old.close();
    this.#fh = await createFile(this.dir, this.#fileNo + 1);
    this.#fileNo++;
    this.#size = WAL_HEADER_BYTES;
  }
}
interface FileLimits {
  readonly maxFileBytes: number;
  readonly checkpointBytes: number;
}

function writeFailed(what: string, fields: Record<string, unknown>, cause?: unknown): ChainError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new ChainError(
    'WAL_WRITE_FAILED',
    `${what}${detail}. The WAL can no longer hold every input, so the node must stop; check the disk (space, ` +
      'permissions, errors in the kernel log) and restart.',
    fields,
    { cause },
  );
}

/** WAL file numbers in `dir`, ascending; throws WAL_CORRUPT if the sequence has a gap. */
async function listFiles(dir: string): Promise<number[]> {
  const numbers: number[] = [];
  for (const name of await readdir(dir)) {
    const n = walFileNumber(name);
    if (n !== null) numbers.push(n);
  }
  numbers.sort((a, b) => a - b);
  for (let i = 1; i < numbers.length; i++) {
    const expected = numbers[i - 1]! + 1;
    if (numbers[i] !== expected) throw corrupt(join(dir, walFileName(expected)), 0, 'file missing from the numbered sequence');
  }
  return numbers;
}

/** Create WAL file `n` with its header, durably (file and directory entry fsynced). */
async function createFile(dir: string, n: number): Promise<FileHandle> {
  const path = join(dir, walFileName(n));
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'wx+', 0o600);
    const header = fileHeader(n);
    await fh.write(header, 0, header.length, 0);
    await fh.sync();
    await syncDir(dir);
    return fh;
  } catch (err) {
    await fh?.close().catch(() => {});
    throw writeFailed(`cannot create WAL file ${path}`, { file: path }, err);
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
