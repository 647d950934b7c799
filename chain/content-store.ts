// The content-store port: where private payloads and sealed data segments live, addressed by IPFS CIDs.
// The ledger owns this interface and its error codes; the gateway supplies implementations (an embedded
// UnixFS store over LevelDB today, a kubo RPC or pinning-service adapter later). Types and small helpers only.
import { DatagateError, hasCode } from './errors.ts';

/** Stable error codes of content stores. Never reuse a code for another meaning. */
export type ContentErrorCode =
  /** No block (or no root) for that CID here. A network-backed store may find it elsewhere. */
  | 'CONTENT_NOT_FOUND'
  /** A stored block does not hash to its CID, or a DAG node cannot be decoded: the store is damaged. */
  | 'CONTENT_CORRUPT'
  /** The CID string cannot be parsed, or names a codec/hash this store does not handle. */
  | 'CONTENT_BAD_CID'
  /** The CID exists but is not a file (e.g. a UnixFS directory), so it has no single byte content. */
  | 'CONTENT_NOT_A_FILE'
  /** An argument other than a CID is invalid (bytes not a Uint8Array, chunk size out of range, ...). */
  | 'CONTENT_INVALID_ARGUMENT'
  /** The on-disk store was written by another schema version. */
  | 'CONTENT_STORE_SCHEMA_MISMATCH'
  /** Another process holds the store open. */
  | 'CONTENT_STORE_LOCKED'
  /** The store cannot be opened or read for another reason (disk, permissions). */
  | 'CONTENT_STORE_FAILED';

/** Error raised by a content store. `fields` carries at least the `cid` involved where there is one. */
export class ContentError extends DatagateError<ContentErrorCode> {
  constructor(code: ContentErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'ContentError';
  }
}

/** True when `err` is a ContentError with `code`. */
export function isContentError(err: unknown, code: ContentErrorCode): err is ContentError {
  return err instanceof ContentError && hasCode(err, code);
}

/**
 * How add() cuts and encodes bytes. The defaults are kubo's `ipfs add --cid-version 1`: CIDv1 with raw
 * leaves, 256 KiB fixed-size chunks, balanced DAG of at most 174 links per node. `cidVersion: 0` gives kubo's
 * plain `ipfs add` (dag-pb leaves), so the same bytes get the same CID as kubo with the same options.
 */
export interface ContentAddOptions {
  /** CID version of the root (and of dag-pb nodes). Default 1. */
  readonly cidVersion?: 0 | 1;
  /** Store leaves as raw blocks instead of UnixFS dag-pb nodes. Default: true for CIDv1, false for CIDv0. */
  readonly rawLeaves?: boolean;
  /** Fixed chunk size in bytes, 1 ... MAX_CHUNK_SIZE. Default DEFAULT_CHUNK_SIZE (kubo's `size-262144`). */
  readonly chunkSize?: number;
}

/** kubo's default chunker: `size-262144`. */
export const DEFAULT_CHUNK_SIZE = 262_144;
/** Largest chunk add() accepts, so every block stays well below the 2 MiB that IPFS peers accept. */
export const MAX_CHUNK_SIZE = 1_048_576;

/** One entry of ContentStore.list(). */
export interface ContentListEntry {
  readonly cid: string;
  readonly pinned: boolean;
}

/** Options of ContentStore.gc(). */
export interface ContentGcOptions {
  /** 'all' (default): sweep every block no live root reaches. 'unpinned': only the blocks of unpinned roots. */
  readonly scope?: 'all' | 'unpinned';
}

/** What ContentStore.gc() removed and kept. */
export interface ContentGcResult {
  /** Blocks deleted: reachable from no live root. */
  readonly removedBlocks: number;
  /** Bytes of the deleted blocks (block bytes; the disk space itself may come back later, at the store's own pace). */
  readonly freedBytes: number;
  /** Blocks still stored: those of live roots' DAGs. */
  readonly keptBlocks: number;
}

/**
 * A content-addressed store of files. CIDs travel as strings (`Qm...` for v0, base32 `b...` for v1).
 * Every method that takes a CID throws CONTENT_BAD_CID for a string that is not one.
 */
export interface ContentStore {
  /** Store `bytes` as a UnixFS file and return its root CID. Idempotent: the same bytes and options give the same CID. */
  add(bytes: Uint8Array, opts?: ContentAddOptions): Promise<string>;
  /**
   * The whole file behind `cid`, every block verified against its CID on the way.
   * Throws CONTENT_NOT_FOUND, CONTENT_CORRUPT, CONTENT_BAD_CID or CONTENT_NOT_A_FILE.
   */
  get(cid: string): Promise<Uint8Array>;
  /** True when the root block of `cid` is stored here. */
  has(cid: string): Promise<boolean>;
  /** Keep `cid` and everything below it. Throws CONTENT_NOT_FOUND unless the whole DAG is stored here. */
  pin(cid: string): Promise<void>;
  /**
   * Give up `cid`: drop its pin (no error when there was none) and let gc() remove its DAG. The blocks stay
   * until gc(), and blocks that a live root's DAG shares stay after it. A later add() or pin() of the same
   * CID takes it back.
   */
  unpin?(cid: string): Promise<void>;
  /**
   * Garbage collection: remove every block that no live root's DAG reaches, and forget the roots given up
   * with unpin(). Live roots are the pinned ones and the ones added and not unpinned since (add() keeps what
   * it adds, pinned or not), so only unpin() makes content collectable. Safe to run while the store is in
   * use: content being added or pinned meanwhile is kept. `scope: 'unpinned'` only considers the blocks of
   * the roots given up since the last gc (what unpin() just released): far cheaper on a large store, since the
   * whole block range is not scanned, but blocks orphaned in other ways (a crash during an earlier gc) stay
   * until a full gc.
   */
  gc?(opts?: ContentGcOptions): Promise<ContentGcResult>;
  /** Root CIDs that were added or pinned here and not collected by gc(), in no particular order, each with its pin state. */
  list(): AsyncIterable<ContentListEntry>;
}
