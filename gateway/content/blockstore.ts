// IPFS blocks in LevelDB. A block is stored under `prefix || multihash` (the same bytes under the raw and
// dag-pb codecs are one block, as in kubo's blockstore), and every block read is hashed again and compared
// with the CID it was asked for, so a damaged disk surfaces as CONTENT_CORRUPT instead of wrong data.
// Writes go through a BlockBatch: the importer puts a whole DAG into it and the caller writes it in one
// atomic LevelDB batch together with its own records, so a crash leaves either the whole file or none of it.
// Only sha2-256 blocks are stored; identity CIDs (multihash 0x00) carry their bytes inline and need no storage.
import { createHash } from 'node:crypto';
import * as dagPb from '@ipld/dag-pb';
import type { Level } from 'level';
import type { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
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
