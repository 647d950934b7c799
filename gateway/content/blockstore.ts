// IPFS blocks in LevelDB. A block is stored under `prefix || multihash` (the same bytes under the raw and
// dag-pb codecs are one block, as in kubo's blockstore), and every block read is hashed again and compared
// with the CID it was asked for, so a damaged disk surfaces as CONTENT_CORRUPT instead of wrong data.
// Writes go through a BlockBatch: the importer puts a whole DAG into it and the caller writes it in one
// atomic LevelDB batch together with its own records, so a crash leaves either the whole file or none of it.
// Only sha2-256 blocks are stored; identity CIDs (multihash 0x00) carry their bytes inline and need no storage.
// Garbage collection is mark (markDag over each live DAG) and sweep (LevelBlockstore.sweep); the content
// store decides which roots are live and keeps writers out while it runs.
import { createHash } from 'node:crypto';
import * as dagPb from '@ipld/dag-pb';
import type { Level } from 'level';
import type { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import type { ContentGcResult } from '../../chain/index.ts';
import { ContentError } from '../../chain/index.ts';

/** Multihash code of sha2-256, the only hash this store keeps. */
export const SHA2_256 = 0x12;
/** Multihash code of the identity "hash": the digest is the block itself. */
export const IDENTITY = 0x00;

/** Read side of a blockstore: what the exporter, the pinner and the trustless gateway need. */
export interface BlockReader {
  /** The verified bytes of `cid`'s block. Throws CONTENT_NOT_FOUND or CONTENT_CORRUPT. */
  get(cid: CID): Promise<Uint8Array>;
  /** True when the block of `cid` is stored (identity CIDs always are). */
  has(cid: CID): Promise<boolean>;
}

/** One LevelDB write that travels in the same atomic batch as a DAG's blocks. */
export interface ExtraWrite {
  readonly type: 'put' | 'del';
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

type Db = Level<Uint8Array, Uint8Array>;

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

async function collect(val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (val instanceof Uint8Array) return val;
  const parts: Uint8Array[] = [];
  for await (const part of val) parts.push(part);
  return Buffer.concat(parts);
}

/** Blocks under one key prefix of a LevelDB database that the caller opened (and closes). */
export class LevelBlockstore implements BlockReader {
  constructor(
    private readonly db: Db,
    private readonly prefix: number,
  ) {}

  /** The LevelDB key of `cid`'s block: prefix byte || multihash bytes. Part of the on-disk format. */
  key(cid: CID): Uint8Array {
    const mh = cid.multihash.bytes;
    const k = new Uint8Array(1 + mh.length);
    k[0] = this.prefix;
    k.set(mh, 1);
    return k;
  }

  async has(cid: CID): Promise<boolean> {
    if (cid.multihash.code === IDENTITY) return true;
    if (cid.multihash.code !== SHA2_256) return false;
    return (await this.read(cid)) !== undefined;
  }

  async get(cid: CID): Promise<Uint8Array> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest;
    const bytes = cid.multihash.code === SHA2_256 ? await this.read(cid) : undefined;
    if (bytes === undefined) {
      throw new ContentError('CONTENT_NOT_FOUND', `block ${cid} is not in this content store`, { cid: cid.toString() });
    }
    if (!sameBytes(sha256(bytes), cid.multihash.digest)) {
      throw new ContentError(
        'CONTENT_CORRUPT',
        `stored block ${cid} does not hash to its CID: the content store is damaged; restore the file from a copy or add it again`,
        { cid: cid.toString() },
      );
    }
    return bytes;
  }

  /**
   * The `get` that ipfs-unixfs-exporter calls (interface-blockstore 7 streams a block as chunks): yields
   * the verified block as one chunk.
   */
  readonly exporterView = {
    get: (cid: CID): AsyncGenerator<Uint8Array> => this.stream(cid),
  };

  private async *stream(cid: CID): AsyncGenerator<Uint8Array> {
    yield await this.get(cid);
  }

  /** Number and total bytes of the stored blocks (reads every block: for tests and tools, not hot paths). */
  async stat(): Promise<{ blocks: number; bytes: number }> {
    let blocks = 0;
    let bytes = 0;
    for await (const v of this.db.values(this.range())) {
      blocks++;
      bytes += v.length;
    }
    return { blocks, bytes };
  }

  /**
   * The sweep of garbage collection: delete every block whose multihash is not in `keep` (markKey strings, as
   * markDag fills them), in synced batches of `batchSize`. Only the deleted blocks are read, to count their
   * bytes. Deleting unreachable blocks in any order is safe, so a crash midway leaves a consistent store
   * with less garbage. The caller keeps writers out meanwhile. Throws CONTENT_STORE_FAILED.
   */
  async sweep(keep: ReadonlySet<string>, batchSize = 256): Promise<ContentGcResult> {
    let removedBlocks = 0;
    let freedBytes = 0;
    let keptBlocks = 0;
    let garbage: Uint8Array[] = [];
    const flush = async (): Promise<void> => {
      for (const v of await this.db.getMany(garbage)) freedBytes += v?.length ?? 0;
      await this.db.batch(garbage.map((key) => ({ type: 'del' as const, key })), { sync: true });
      removedBlocks += garbage.length;
      garbage = [];
    };
    try {
      for await (const k of this.db.keys(this.range())) {
        if (keep.has(markKey(k.subarray(1)))) {
          keptBlocks++;
          continue;
        }
        garbage.push(k);
        if (garbage.length >= batchSize) await flush();
      }
      if (garbage.length > 0) await flush();
    } catch (err) {
      throw new ContentError('CONTENT_STORE_FAILED', `garbage collection could not delete blocks: ${(err as Error).message}; run it again`, { removedBlocks }, { cause: err });
    }
    return { removedBlocks, freedBytes, keptBlocks };
  }

  /**
   * The sweep of a gc scoped to some blocks: delete each of `candidates` (markKey strings) that is not in
   * `keep` and still stored, in synced batches. Reads only those blocks, never the whole range, so its cost
   * follows what was given up, not the size of the store. `keptBlocks` counts the candidates kept (shared).
   * Throws CONTENT_STORE_FAILED.
   */
  async sweepOnly(candidates: ReadonlySet<string>, keep: ReadonlySet<string>, batchSize = 256): Promise<ContentGcResult> {
    let removedBlocks = 0;
    let freedBytes = 0;
    let keptBlocks = 0;
    const garbage: Uint8Array[] = [];
    for (const mh of candidates) {
      if (keep.has(mh)) keptBlocks++;
      else garbage.push(Uint8Array.of(this.prefix, ...Buffer.from(mh, 'latin1')));
    }
    try {
      for (let i = 0; i < garbage.length; i += batchSize) {
        const keys = garbage.slice(i, i + batchSize);
        const values = await this.db.getMany(keys);
        const present = keys.filter((_, j) => values[j] !== undefined);
        for (const v of values) freedBytes += v?.length ?? 0;
        if (present.length > 0) await this.db.batch(present.map((key) => ({ type: 'del' as const, key })), { sync: true });
        removedBlocks += present.length;
      }
    } catch (err) {
      throw new ContentError('CONTENT_STORE_FAILED', `garbage collection could not delete blocks: ${(err as Error).message}; run it again`, { removedBlocks }, { cause: err });
    }
    return { removedBlocks, freedBytes, keptBlocks };
  }

  /**
   * Compact the block range. LevelDB's deletes are tombstones: the space comes back when a compaction
   * rewrites the files holding the deleted blocks, which LevelDB otherwise does at its own pace as new
   * writes arrive. Rewrites every stored block, so it is for an operator's gc, not for every drop.
   */
  async compact(): Promise<void> {
    const r = this.range();
    const db = this.db as unknown as { compactRange?(start: Uint8Array, end: Uint8Array): Promise<void> };
    if (typeof db.compactRange === 'function') await db.compactRange(r.gte, r.lt);
  }

  private range(): { gte: Uint8Array; lt: Uint8Array } {
    return { gte: Uint8Array.of(this.prefix), lt: Uint8Array.of(this.prefix + 1) };
  }

  /** A new write batch; nothing reaches the disk until its write(). */
  batch(): BlockBatch {
    return new BlockBatch(this.db, (cid) => this.key(cid));
  }

  private async read(cid: CID): Promise<Uint8Array | undefined> {
    try {
      return await this.db.get(this.key(cid));
    } catch (err) {
      throw new ContentError('CONTENT_STORE_FAILED', `cannot read block ${cid} from the content store: ${(err as Error).message}`, { cid: cid.toString() }, { cause: err });
    }
  }
}

/**
 * Collects verified blocks in memory (the importer's `put`) and writes them, with the caller's extra
 * records, in one atomic LevelDB batch. Memory use is the size of the DAG being added.
 */
export class BlockBatch {
  private readonly ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }> = [];
  private written = false;

  constructor(
    private readonly db: Db,
    private readonly keyOf: (cid: CID) => Uint8Array,
  ) {}

  /** Stage one block; its bytes must hash to `cid` (sha2-256 or identity). Returns `cid`. */
  async put(cid: CID, val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<CID> {
    const bytes = await collect(val);
    const code = cid.multihash.code;
    if (code === IDENTITY) {
      if (!sameBytes(bytes, cid.multihash.digest)) throw new ContentError('CONTENT_INVALID_ARGUMENT', `bytes do not match identity CID ${cid}`, { cid: cid.toString() });
      return cid; // identity blocks live inside their CID
    }
    if (code !== SHA2_256) {
      throw new ContentError('CONTENT_BAD_CID', `CID ${cid} uses multihash 0x${code.toString(16)}; this store keeps sha2-256 blocks only`, { cid: cid.toString() });
    }
    if (!sameBytes(sha256(bytes), cid.multihash.digest)) {
      throw new ContentError('CONTENT_INVALID_ARGUMENT', `block bytes do not hash to CID ${cid}`, { cid: cid.toString() });
    }
    this.ops.push({ type: 'put', key: this.keyOf(cid), value: bytes });
    return cid;
  }

  /** Number of staged blocks. */
  get size(): number {
    return this.ops.length;
  }

  /** Write every staged block plus `extra` atomically. A batch is written once. */
  async write(extra: readonly ExtraWrite[] = []): Promise<void> {
    if (this.written) throw new Error('BlockBatch.write called twice');
    this.written = true;
    for (const op of extra) {
      if (op.type === 'put') this.ops.push({ type: 'put', key: op.key, value: op.value ?? new Uint8Array(0) });
      else this.ops.push({ type: 'del', key: op.key });
    }
    try {
      // Synced: once add() resolves, a caller (the pipeline) may forget its own copy of the bytes, so the
      // blocks must survive a power cut, not only a killed process.
      await this.db.batch(this.ops, { sync: true });
    } catch (err) {
      throw new ContentError('CONTENT_STORE_FAILED', `cannot write to the content store: ${(err as Error).message}`, {}, { cause: err });
    }
  }
}

/** One block of a DAG walk. */
export interface WalkedBlock {
  readonly cid: CID;
  readonly bytes: Uint8Array;
}

export interface WalkOptions {
  /** Yield a block again each time the DAG links to it (CAR `dups=y`). Default false. */
  readonly dups?: boolean;
  /** Stop below this depth: 0 yields the root block only (`dag-scope=block`). Default: the whole DAG. */
  readonly maxDepth?: number;
}

/**
 * Every block of the DAG rooted at `root`, depth-first in link order (the order of a kubo CAR export),
 * each read through `blocks` and so verified. Follows dag-pb links; raw blocks are leaves. Identity
 * blocks are walked but not yielded (the trustless-gateway spec keeps them out of CARs). Throws
 * CONTENT_NOT_FOUND for a missing block, CONTENT_CORRUPT for a bad one, CONTENT_BAD_CID for another codec.
 */
export async function* walkDag(blocks: BlockReader, root: CID, opts: WalkOptions = {}): AsyncGenerator<WalkedBlock> {
  const maxDepth = opts.maxDepth ?? Number.POSITIVE_INFINITY;
  const seen = new Set<string>();
  const stack: Array<{ cid: CID; depth: number }> = [{ cid: root, depth: 0 }];
  while (stack.length > 0) {
    const { cid, depth } = stack.pop()!;
    const id = cid.toString();
    if (!opts.dups) {
      if (seen.has(id)) continue;
      seen.add(id);
    }
    const bytes = await blocks.get(cid);
    const descend = cid.code !== raw.code && depth < maxDepth;
    if (descend && cid.code !== dagPb.code) {
      // Checked before the block is yielded, so a gateway can still answer with a status code.
      throw new ContentError('CONTENT_BAD_CID', `cannot walk ${id}: only dag-pb and raw DAGs are handled here`, { cid: id, codec: cid.code });
    }
    if (cid.multihash.code !== IDENTITY) yield { cid, bytes };
    if (!descend) continue;
    let links: dagPb.PBLink[];
    try {
      links = dagPb.decode(bytes).Links;
    } catch (err) {
      throw new ContentError('CONTENT_CORRUPT', `block ${id} is not valid dag-pb: ${(err as Error).message}`, { cid: id }, { cause: err });
    }
    for (let i = links.length - 1; i >= 0; i--) stack.push({ cid: links[i]!.Hash, depth: depth + 1 });
  }
}

/** The mark-set string of a block: its multihash bytes as latin1 (one char per byte). */
export function markKey(multihash: Uint8Array): string {
  return Buffer.from(multihash.buffer, multihash.byteOffset, multihash.byteLength).toString('latin1');
}

/**
 * The mark of garbage collection: add to `marked` (markKey of the multihash) every stored block of the DAG
 * under `root`. dag-pb nodes are read, verified and decoded as walkDag does, to follow their links; raw
 * leaves have no links and are marked without being read (gc is no verifier). `visited` (codec and
 * multihash) skips subtrees already marked from another root; it is apart from `marked` because the same
 * bytes may be a raw leaf in one DAG and a dag-pb node with links in another. Throws CONTENT_NOT_FOUND or
 * CONTENT_CORRUPT for a missing or damaged node, CONTENT_BAD_CID for another codec: the caller then must not sweep.
 */
export async function markDag(blocks: BlockReader, root: CID, marked: Set<string>, visited: Set<string>): Promise<void> {
  const stack: CID[] = [root];
  while (stack.length > 0) {
    const cid = stack.pop()!;
    const mh = markKey(cid.multihash.bytes);
    const id = `${cid.code}:${mh}`;
    if (visited.has(id)) continue;
    visited.add(id);
    if (cid.multihash.code === SHA2_256) marked.add(mh);
    if (cid.code === raw.code) continue;
    if (cid.code !== dagPb.code) {
      throw new ContentError('CONTENT_BAD_CID', `cannot walk ${cid}: only dag-pb and raw DAGs are handled here`, { cid: cid.toString(), codec: cid.code });
    }
    const bytes = await blocks.get(cid);
    try {
      for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash);
    } catch (err) {
      throw new ContentError('CONTENT_CORRUPT', `block ${cid} is not valid dag-pb: ${(err as Error).message}`, { cid: cid.toString() }, { cause: err });
    }
  }
}
