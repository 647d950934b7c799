// The consensus write-ahead log. The LBFT driver appends every input here before the reducer sees it and,
// after a crash, replays the log through the same path (CometBFT consensus/wal.go). Records are opaque
// bytes: the caller encodes its events; this module only keeps them intact and in order.
//
// On-disk format (a contract: a change needs a new WAL_VERSION and a reader for the old one):
//   <dir>/wal-000001.log, wal-000002.log, ...   numbered from 1, contiguous (prune removes the oldest only);
//                                               numbers above 999999 simply grow more digits
//   file header, 16 bytes:  magic "DGWAL\r\n\x1a" (8) | version u32 BE (= 1) | file number u32 BE
//   then frames:            length u32 BE | crc32 (IEEE 802.3, as zlib) of payload u32 BE | payload
//   A payload is 1..MAX_FRAME_BYTES bytes; a zero or larger length is never written.
//
// Crash model: a crash may tear the frame being written (cut short, or its bytes left as zeros). On open,
// the torn tail of the newest file is truncated away and reported in `replayStats.truncated`. Damage
// anywhere else is corruption (ChainError WAL_CORRUPT naming file and offset) and stops the node: replaying
// around a hole could make the validator forget a vote. One limit of the format: a length field corrupted
// to point past the end of the newest file looks exactly like a torn write, so the frames behind it are
// dropped as a torn tail; `truncated.droppedBytes` says how much went, for the driver to log.
// Appends with sync:false may be lost on power failure (not on a process crash); use sync:true for any
// input whose loss could lead to a conflicting signature (own votes), as CometBFT's WriteSync does.
// One process at a time: the WAL takes no lock, so the composition root must not open a directory twice.
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { ChainError } from '../errors.ts';

export const WAL_VERSION = 1;
/** Bytes of the header at the start of every WAL file. */
export const WAL_HEADER_BYTES = 16;
/** Bytes of framing before each payload (length + crc32). */
export const WAL_FRAME_OVERHEAD = 8;
/** Largest payload of one frame; a larger length read back is corruption, not a record. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** A file that would grow past this many bytes is closed and the next numbered file started. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

const MAGIC = Buffer.from('DGWAL\r\n\x1a', 'latin1');
const FILE_NAME = /^wal-(\d{6,})\.log$/;
const READ_CHUNK = 1024 * 1024;

/** Name of WAL file number `n` (from 1). */
export function walFileName(n: number): string {
  return `wal-${String(n).padStart(6, '0')}.log`;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, reflected, as zlib) in plain JS: the fallback where node:zlib has no crc32. */
export function crc32Portable(data: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32 of `data`: node:zlib's native crc32 (Node >= 20.15) when present, else crc32Portable. */
export const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) >>> 0 : crc32Portable;

/** The torn tail that open() cut from the newest file. */
export interface WalTruncation {
  readonly file: string;
  /** Offset where the torn frame began; the file now ends here. */
  readonly offset: number;
  readonly droppedBytes: number;
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
}

export interface WalOptions {
  /** Rotate to a new file before one would grow past this (default 64 MiB). A larger frame gets a file of its own. */
  readonly maxFileBytes?: number;
}

/** An append-only, checksummed, rotating log of opaque records. See the module comment for the format. */
export class Wal {
  readonly dir: string;
  readonly #maxFileBytes: number;
  #fh: FileHandle | null;
  #fileNo: number;
  #size: number;
  #queue: Promise<void> = Promise.resolve();
  #failure: ChainError | null = null;
  #stats: WalReplayStats;

  private constructor(dir: string, maxFileBytes: number, fh: FileHandle, fileNo: number, size: number, truncated: WalTruncation | null) {
    this.dir = dir;
    this.#maxFileBytes = maxFileBytes;
    this.#fh = fh;
    this.#fileNo = fileNo;
    this.#size = size;
    this.#stats = { files: 0, frames: 0, payloadBytes: 0, truncated };
  }

  /**
   * Open (or create) the WAL in `dir`. Cuts a torn tail off the newest file (reported in replayStats).
   * Throws ChainError WAL_CORRUPT if the newest file is damaged before its last frame or files are missing
   * from the numbered sequence, and WAL_WRITE_FAILED if the directory cannot be written.
   */
  static async open(dir: string, opts: WalOptions = {}): Promise<Wal> {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('Wal.open: dir must be a non-empty path');
    const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes <= WAL_HEADER_BYTES + WAL_FRAME_OVERHEAD) {
      throw new RangeError(`Wal.open: maxFileBytes must be an integer above ${WAL_HEADER_BYTES + WAL_FRAME_OVERHEAD}, got ${maxFileBytes}`);
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
      return new Wal(dir, maxFileBytes, fh, 1, WAL_HEADER_BYTES, null);
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
        const truncated = size === 0 ? null : { file: path, offset: 0, droppedBytes: size, reason: `file header torn (${bad}); header rewritten` };
        return new Wal(dir, maxFileBytes, fresh, last, WAL_HEADER_BYTES, truncated);
      }
      const scan = scanFrames(new ChunkReader(fh, size), path, true);
      let step = await scan.next();
      while (step.done !== true) step = await scan.next();
      const { end, torn } = step.value;
      let truncated: WalTruncation | null = null;
      if (torn !== null) {
        try {
          await fh.truncate(end);
          await fh.sync();
        } catch (err) {
          throw writeFailed(`cannot cut the torn tail off ${path} at offset ${end}`, { file: path, offset: end }, err);
        }
        truncated = { file: path, offset: end, droppedBytes: size - end, reason: torn };
      }
      return new Wal(dir, maxFileBytes, fh, last, end, truncated);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  /** Number of the file appends currently go to. Note it when appending a checkpoint record; see prune(). */
  get currentFile(): number {
    return this.#fileNo;
  }

  /** The torn tail cut at open, and the counts of the last replay(). */
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
   * Every intact record, oldest first, across all files up to what had been appended when replay began.
   * Throws ChainError WAL_CORRUPT (fields: file, offset, reason) at a damaged frame or a missing file.
   * Do not prune() while a replay is running.
   */
  async *replay(): AsyncGenerator<Uint8Array> {
    const lastNo = this.#fileNo;
    const lastSize = this.#size;
    const numbers = (await listFiles(this.dir)).filter((n) => n <= lastNo);
    this.#stats = { ...this.#stats, files: 0, frames: 0, payloadBytes: 0 };
    for (const n of numbers) {
      const path = join(this.dir, walFileName(n));
      const fh = await open(path, 'r');
      try {
        const size = n === lastNo ? lastSize : (await fh.stat()).size;
        const problem = headerProblem(await readAt(fh, 0, WAL_HEADER_BYTES), n);
        if (problem !== null) throw corrupt(path, 0, problem);
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
    return this.#enqueue(async () => {
      if (this.#failure !== null) throw this.#failure;
      if (this.#fh === null) throw writeFailed('the WAL is closed; rotate() after close() is a bug in the caller', { dir: this.dir });
      if (this.#size <= WAL_HEADER_BYTES) return;
      try {
        await this.#rotate();
      } catch (err) {
        const at = { file: this.#path(), offset: this.#size };
        this.#failure = err instanceof ChainError ? err : writeFailed(`rotating past ${at.file} failed`, at, err);
        throw this.#failure;
      }
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

function corrupt(file: string, offset: number, reason: string): ChainError {
  return new ChainError(
    'WAL_CORRUPT',
    `consensus WAL ${file} is corrupt at offset ${offset}: ${reason}. The records before it are intact; ` +
      'the node will not start on a damaged log (it could forget a vote). Restore the file or move the WAL ' +
      'aside and resync from peers.',
    { file, offset, reason },
  );
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

/** Why `header` is not a valid header of file `fileNo`, or null. */
function headerProblem(header: Buffer, fileNo: number): string | null {
  if (header.length < WAL_HEADER_BYTES) return `header cut short (${header.length} of ${WAL_HEADER_BYTES} bytes)`;
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a datagate WAL file (bad magic)';
  const version = header.readUInt32BE(8);
  if (version !== WAL_VERSION) return `unsupported WAL version ${version}; this build reads version ${WAL_VERSION}`;
  const number = header.readUInt32BE(12);
  if (number !== fileNo) return `header says file number ${number}, the name says ${fileNo}`;
  return null;
}

/** WAL file numbers in `dir`, ascending; throws WAL_CORRUPT if the sequence has a gap. */
async function listFiles(dir: string): Promise<number[]> {
  const numbers: number[] = [];
  for (const name of await readdir(dir)) {
    const m = FILE_NAME.exec(name);
    if (m !== null) numbers.push(Number(m[1]));
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
    const header = Buffer.alloc(WAL_HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt32BE(WAL_VERSION, 8);
    header.writeUInt32BE(n, 12);
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

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Reads a file of known size in large chunks, so small frames cost no syscall each. */
class ChunkReader {
  readonly size: number;
  readonly #fh: FileHandle;
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;

  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.size = size;
  }

  /** Bytes [pos, pos + n), shorter where the file ends. Valid until the next call. */
  async read(pos: number, n: number): Promise<Buffer> {
    const end = Math.min(pos + n, this.size);
    if (pos >= this.#start && end <= this.#start + this.#buf.length) {
      return this.#buf.subarray(pos - this.#start, end - this.#start);
    }
    this.#buf = await readAt(this.#fh, pos, Math.min(Math.max(end - pos, READ_CHUNK), this.size - pos));
    this.#start = pos;
    return this.#buf.subarray(0, end - pos);
  }
}

/**
 * Yield each frame's payload (a copy) from the header to `reader.size`. At an invalid frame: when
 * `tornTailAllowed` and the damage can only be a crash mid-write of the last frame, stop and return where
 * the intact frames end with the reason; otherwise throw WAL_CORRUPT.
 */
async function* scanFrames(
  reader: ChunkReader,
  file: string,
  tornTailAllowed: boolean,
): AsyncGenerator<Uint8Array, { end: number; torn: string | null }> {
  let pos = WAL_HEADER_BYTES;
  while (pos < reader.size) {
    const remaining = reader.size - pos;
    const head = await reader.read(pos, WAL_FRAME_OVERHEAD);
    if (head.length < WAL_FRAME_OVERHEAD) {
      if (tornTailAllowed) return { end: pos, torn: `frame header cut short (${remaining} bytes)` };
      throw corrupt(file, pos, 'frame header cut short');
    }
    const length = head.readUInt32BE(0);
    const sum = head.readUInt32BE(4);
    if (length === 0) {
      if (tornTailAllowed && (await zeroesToEnd(reader, pos))) return { end: pos, torn: `zero-filled tail (${remaining} bytes)` };
      throw corrupt(file, pos, 'zero frame length');
    }
    if (length > MAX_FRAME_BYTES) throw corrupt(file, pos, `frame length ${length} exceeds ${MAX_FRAME_BYTES}`);
    const frameEnd = pos + WAL_FRAME_OVERHEAD + length;
    if (frameEnd > reader.size) {
      if (tornTailAllowed) return { end: pos, torn: `last frame cut short (${remaining} of ${length + WAL_FRAME_OVERHEAD} bytes)` };
      throw corrupt(file, pos, `frame of ${length} bytes runs past the end of the file`);
    }
    const payload = await reader.read(pos + WAL_FRAME_OVERHEAD, length);
    if (crc32(payload) !== sum) {
      if (tornTailAllowed && frameEnd === reader.size) return { end: pos, torn: 'checksum mismatch in the last frame' };
      throw corrupt(file, pos, 'frame checksum mismatch');
    }
    yield Uint8Array.from(payload);
    pos = frameEnd;
  }
  return { end: pos, torn: null };
}

async function zeroesToEnd(reader: ChunkReader, from: number): Promise<boolean> {
  for (let pos = from; pos < reader.size; ) {
    const chunk = await reader.read(pos, READ_CHUNK);
    for (const b of chunk) if (b !== 0) return false;
    pos += chunk.length;
  }
  return true;
}
