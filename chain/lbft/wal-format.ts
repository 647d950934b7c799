// The on-disk format of the consensus WAL (see wal.ts for the log itself): file names and headers, frames
// and their checksums, and the scan that reads frames back, telling a torn tail from corruption.
//
// Format (a contract: a change needs a new WAL_VERSION and a reader for the old one):
//   <dir>/wal-000001.log, wal-000002.log, ...   numbered from 1, contiguous (prune removes the oldest only);
//                                               numbers above 999999 simply grow more digits
//   file header, 16 bytes:  magic "DGWAL\r\n\x1a" (8) | version u32 BE (= 1) | file number u32 BE
//   then frames:            length u32 BE | crc32 (IEEE 802.3, as zlib) of payload u32 BE | payload
//   A payload is 1..MAX_FRAME_BYTES bytes; a zero or larger length is never written.
import type { FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { ChainError } from '../errors.ts';

export const WAL_VERSION = 1;
/** Bytes of the header at the start of every WAL file. */
export const WAL_HEADER_BYTES = 16;
/** Bytes of framing before each payload (length + crc32). */
export const WAL_FRAME_OVERHEAD = 8;
/** Largest payload of one frame; a larger length read back is corruption, not a record. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

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

/** The header of WAL file `n`. */
export function fileHeader(n: number): Buffer {
  const header = Buffer.alloc(WAL_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(WAL_VERSION, 8);
  header.writeUInt32BE(n, 12);
  return header;
}

/** The number of a WAL file from its name, or null for any other file. */
export function walFileNumber(name: string): number | null {
  const m = FILE_NAME.exec(name);
  return m === null ? null : Number(m[1]);
}

export function corrupt(file: string, offset: number, reason: string): ChainError {
  return new ChainError(
    'WAL_CORRUPT',
    `consensus WAL ${file} is corrupt at offset ${offset}: ${reason}. The records before it are intact; ` +
      'the node will not start on a damaged log (it could forget a vote). Restore the file or move the WAL ' +
      'aside and resync from peers.',
    { file, offset, reason },
  );
}


/** Why `header` is not a valid header of file `fileNo`, or null. */
export function headerProblem(header: Buffer, fileNo: number): string | null {
  if (header.length < WAL_HEADER_BYTES) return `header cut short (${header.length} of ${WAL_HEADER_BYTES} bytes)`;
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a datagate WAL file (bad magic)';
  const version = header.readUInt32BE(8);
  if (version !== WAL_VERSION) return `unsupported WAL version ${version}; this build reads version ${WAL_VERSION}`;
  const number = header.readUInt32BE(12);
  if (number !== fileNo) return `header says file number ${number}, the name says ${fileNo}`;
  return null;
}

export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
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
export class ChunkReader {
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
export async function* scanFrames(
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

/** How many frames the length fields from `from` to the end describe, the last one possibly torn. */
export async function countFrames(reader: ChunkReader, from: number): Promise<number> {
  let count = 0;
  for (let pos = from; pos < reader.size; count++) {
    const head = await reader.read(pos, WAL_FRAME_OVERHEAD);
    const length = head.length < WAL_FRAME_OVERHEAD ? 0 : head.readUInt32BE(0);
    if (length === 0 || length > MAX_FRAME_BYTES) return head.length < WAL_FRAME_OVERHEAD ? count + 1 : count;
    pos += WAL_FRAME_OVERHEAD + length;
  }
  return count;
}

async function zeroesToEnd(reader: ChunkReader, from: number): Promise<boolean> {
  for (let pos = from; pos < reader.size; ) {
    const chunk = await reader.read(pos, READ_CHUNK);
    for (const b of chunk) if (b !== 0) return false;
    pos += chunk.length;
  }
  return true;
}
