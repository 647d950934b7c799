// The default ContentStore: an embedded UnixFS importer/exporter over a LevelDB blockstore, giving the same
// CIDs as kubo for the same options (no IPFS node, no libp2p: a small board keeps its memory).
// On-disk format (a contract: numbered prefixes are never reused, the schema version is checked at open):
//   0x01 meta/<name>   -> value            ("schema" -> decimal CONTENT_SCHEMA_VERSION)
//   0x02 <multihash>   -> block bytes      (sha2-256 blocks; see blockstore.ts)
//   0x03 <CID bytes>   -> empty            root of a file that was added or pinned
//   0x04 <CID bytes>   -> empty            pin
//   0x05 <CID bytes>   -> empty            unpinned: the root was given up, gc() may remove its DAG (schema 2)
// add() writes a file's blocks and its root record in one atomic batch; pin() checks the whole DAG first.
// Garbage collection keeps the DAGs of live roots: pinned, or added and not unpinned since (add() does not
// pin, and what it added must survive gc), so only unpin() makes content collectable. One async queue
// serialises the writers (add's write, pin, unpin) with gc: gc's mark and sweep see no root appear or go.
import { exporter } from 'ipfs-unixfs-exporter';
import type { ImporterOptions } from 'ipfs-unixfs-importer';
import { importBytes } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import type { Level } from 'level';
import { CID } from 'multiformats/cid';
import type { ContentAddOptions, ContentGcOptions, ContentGcResult, ContentListEntry, ContentStore } from '../../chain/index.ts';
import { ContentError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, openVersionedLevel } from '../../chain/index.ts';
import { LevelBlockstore, markDag, walkDag } from './blockstore.ts';
import { diskFullOr } from '../disk-space.ts';

/**
 * Version of the on-disk format. Bump it (and write a migration) whenever a record layout changes.
 * 2 added the unpinned records (0x05); a schema 1 store is upgraded at open by writing the new version only:
 * it has no unpinned records, so every root in it stays live (roots it had unpinned stay until unpinned again).
 */
export const CONTENT_SCHEMA_VERSION = 2;

// Key prefixes. Numbers are never reused; retire a prefix by leaving it out, never by recycling it.
const P_META = 0x01;
const P_BLOCK = 0x02;
const P_ROOT = 0x03;
const P_PIN = 0x04;
const P_UNPINNED = 0x05;

/** kubo's `Import.UnixFSFileMaxLinks` default: at most 174 links per node of a balanced file DAG. */
export const KUBO_MAX_LINKS = 174;

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

function key(prefix: number, body: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + body.length);
  k[0] = prefix;
  k.set(body, 1);
  return k;
}

const metaKey = (name: string) => key(P_META, enc.encode(name));

/**
 * ipfs-unixfs-importer options that reproduce `ipfs add` in kubo for the given add options: fixed-size
 * chunks, balanced layout with 174 links per node, dag-pb links-first encoding, a single-chunk file is its
 * own leaf (`reduceSingleLeafToSelf`), no wrapping directory. Raw leaves default to on for CIDv1, off for
 * CIDv0, exactly as kubo's `--cid-version` flag decides it. Throws CONTENT_INVALID_ARGUMENT for bad options.
 */
export function kuboImporterOptions(opts: ContentAddOptions = {}): ImporterOptions {
  const cidVersion = opts.cidVersion ?? 1;
  if (cidVersion !== 0 && cidVersion !== 1) {
    throw new ContentError('CONTENT_INVALID_ARGUMENT', `cidVersion must be 0 or 1, got ${String(cidVersion)}`, { argument: 'cidVersion' });
  }
  const rawLeaves = opts.rawLeaves ?? cidVersion === 1;
  if (typeof rawLeaves !== 'boolean') {
    throw new ContentError('CONTENT_INVALID_ARGUMENT', `rawLeaves must be a boolean, got ${typeof rawLeaves}`, { argument: 'rawLeaves' });
  }
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new ContentError('CONTENT_INVALID_ARGUMENT', `chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${String(chunkSize)}`, { argument: 'chunkSize' });
  }
  return {
    cidVersion,
    rawLeaves,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: KUBO_MAX_LINKS }),
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: false,
    fieldOrder: 'links-first',
  };
}

/** Parses a CID string; throws CONTENT_BAD_CID naming the bad argument. */
export function parseCid(cid: string): CID {
  if (typeof cid !== 'string') {
    throw new ContentError('CONTENT_BAD_CID', `cid must be a string, got ${typeof cid}`, { argument: 'cid' });
  }
  try {
    return CID.parse(cid);
  } catch (err) {
    throw new ContentError('CONTENT_BAD_CID', `"${cid.slice(0, 100)}" is not a CID: ${(err as Error).message}`, { argument: 'cid', cid: cid.slice(0, 100) }, { cause: err });
  }
}

/** Maps an ipfs-unixfs-exporter error to a ContentError; anything unexpected is rethrown unchanged. */
function exporterError(err: unknown, cid: CID): unknown {
  if (err instanceof ContentError) return err;
  const name = (err as { name?: unknown } | null)?.name;
  const fields = { cid: cid.toString() };
  switch (name) {
    case 'NotUnixFSError':
    case 'OverReadError':
    case 'UnderReadError':
      return new ContentError('CONTENT_CORRUPT', `the DAG of ${cid} is not a valid UnixFS file: ${(err as Error).message}`, fields, { cause: err });
    case 'NoResolverError':
      return new ContentError('CONTENT_BAD_CID', `CID ${cid} uses codec 0x${cid.code.toString(16)}, which this store cannot read as a file`, fields, { cause: err });
    case 'NotFoundError':
      return new ContentError('CONTENT_NOT_FOUND', `${cid} is not in this content store: ${(err as Error).message}`, fields, { cause: err });
    default:
      return err;
  }
}

/** Options of UnixFsContentStore.gc(). */
export interface GcOptions extends ContentGcOptions {
  /** Compact the block range afterwards, so the disk space comes back now (see LevelBlockstore.compact). Default false. */
  readonly compact?: boolean;
}

export class UnixFsContentStore implements ContentStore {
  /** Verified block access (for the trustless gateway). */
  readonly blocks: LevelBlockstore;
  /** Tail of the writers' queue (see exclusive()); never rejects. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Level<Uint8Array, Uint8Array>,
    readonly path: string,
  ) {
    this.blocks = new LevelBlockstore(db, P_BLOCK);
  }

  /**
   * Open (or create) the store in directory `path`. Throws CONTENT_STORE_LOCKED when another process has
   * it open, CONTENT_STORE_SCHEMA_MISMATCH when it holds another format, CONTENT_STORE_FAILED otherwise.
   */
  static async open(path: string): Promise<UnixFsContentStore> {
    const db = await openVersionedLevel(path, {
      versionKey: metaKey('schema'),
      version: CONTENT_SCHEMA_VERSION,
      upgradeFrom: [1],
      // Small LevelDB buffers (defaults: 4 MiB write buffer, 8 MiB block cache): blocks are written once and read
      // when sold or verified, so a big cache buys little, and every MiB counts on a Pi-class board.
      writeBufferSize: 1 << 20,
      cacheSize: 2 << 20,
      errors: {
        locked: (err) => new ContentError('CONTENT_STORE_LOCKED', `the content store at ${path} is in use by another process; stop the other datagate or use another data directory`, { path }, { cause: err }),
        failed: (err) => diskFullOr(new ContentError('CONTENT_STORE_FAILED', `cannot open the content store at ${path}: ${(err as Error).message}`, { path }, { cause: err }), path),
        mismatch: (found) =>
          new ContentError(
            'CONTENT_STORE_SCHEMA_MISMATCH',
            `content store ${path} has schema ${found}, this datagate reads schema ${CONTENT_SCHEMA_VERSION}; use a datagate release that matches it or start with an empty directory`,
            { path, found, expected: CONTENT_SCHEMA_VERSION },
          ),
      },
    });
    return new UnixFsContentStore(db, path);
  }

  /** Close the database, after the add, pin, unpin or gc in progress. */
  async close(): Promise<void> {
    await this.exclusive(() => this.db.close());
  }

  /**
   * Run `fn` once every earlier exclusive section has settled: a promise queue, so add's write, pin, unpin and
   * gc never interleave. Readers (get, has, list) are not queued: they only see whole batches.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  async add(bytes: Uint8Array, opts: ContentAddOptions = {}): Promise<string> {
    if (!(bytes instanceof Uint8Array)) {
      throw new ContentError('CONTENT_INVALID_ARGUMENT', `bytes must be a Uint8Array, got ${typeof bytes}`, { argument: 'bytes' });
    }
    const options = kuboImporterOptions(opts);
    const batch = this.blocks.batch();
    const { cid } = await importBytes(bytes, batch, options);
    // Only the write is queued, not the import: the batch carries every block of the DAG, those already
    // stored included, so a block that a gc removed while the importer ran is written again with its root.
    await this.exclusive(() =>
      batch.write([
        { type: 'put', key: key(P_ROOT, cid.bytes), value: EMPTY },
        { type: 'del', key: key(P_UNPINNED, cid.bytes) },
      ]),
    );
    return cid.toString();
  }

  async get(cidString: string): Promise<Uint8Array> {
    const cid = parseCid(cidString);
    try {
      const entry = await exporter(cid, this.blocks.exporterView);
      if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') {
        throw new ContentError('CONTENT_NOT_A_FILE', `${cid} is a ${entry.type === 'object' ? 'structured (CBOR/JSON) object' : entry.type}, not a file`, { cid: cidString, type: entry.type });
      }
      const size = Number(entry.size);
      const out = new Uint8Array(size);
      let offset = 0;
      for await (const chunk of entry.content()) {
        if (offset + chunk.length > size) throw new ContentError('CONTENT_CORRUPT', `${cid} holds more bytes than its root declares (${size})`, { cid: cidString });
        out.set(chunk, offset);
        offset += chunk.length;
      }
      if (offset !== size) throw new ContentError('CONTENT_CORRUPT', `${cid} holds ${offset} bytes, its root declares ${size}`, { cid: cidString });
      return out;
    } catch (err) {
      throw exporterError(err, cid);
    }
  }

  async has(cidString: string): Promise<boolean> {
    return this.blocks.has(parseCid(cidString));
  }

  async pin(cidString: string): Promise<void> {
    const cid = parseCid(cidString);
    // Queued as a whole: a gc between the walk and the write could remove blocks the walk has just seen.
    await this.exclusive(() => this.pinNow(cid, cidString));
  }

  private async pinNow(cid: CID, cidString: string): Promise<void> {
    try {
      for await (const _ of walkDag(this.blocks, cid)) {
        // reading each block verifies it; the walk throws at the first missing or damaged one
      }
    } catch (err) {
      if (err instanceof ContentError && err.code === 'CONTENT_NOT_FOUND' && err.fields.cid !== cidString) {
        throw new ContentError('CONTENT_NOT_FOUND', `cannot pin ${cid}: block ${String(err.fields.cid)} of its DAG is missing; add the whole file again`, { cid: cidString, missing: err.fields.cid }, { cause: err });
      }
      throw err;
    }
    await this.db.batch(
      [
        { type: 'put', key: key(P_ROOT, cid.bytes), value: EMPTY },
        { type: 'put', key: key(P_PIN, cid.bytes), value: EMPTY },
        { type: 'del', key: key(P_UNPINNED, cid.bytes) },
      ],
      { sync: true },
    );
  }

  /** Drop the pin and mark the root unpinned, so the next gc() removes its DAG (the blocks no live root shares). */
  async unpin(cidString: string): Promise<void> {
    const cid = parseCid(cidString);
    await this.exclusive(async () => {
      const ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }> = [{ type: 'del', key: key(P_PIN, cid.bytes) }];
      if ((await this.db.get(key(P_ROOT, cid.bytes))) !== undefined) ops.push({ type: 'put', key: key(P_UNPINNED, cid.bytes), value: EMPTY });
      // Synced: a lost unpin would keep a dropped segment's blocks for good (the pipeline forgets its CID).
      await this.db.batch(ops, { sync: true });
    });
  }

  /**
   * Mark and sweep: walk the DAG of every live root (pinned, or added and not unpinned), then delete the root
   * records of unpinned roots and every block no live DAG reaches. Queued with the writers, so an add, pin or
   * unpin waits for it (and it for them). Deletes nothing unless every live DAG could be walked: throws
   * CONTENT_NOT_FOUND or CONTENT_CORRUPT naming a damaged live root (add the file again, or unpin it), and
   * CONTENT_STORE_FAILED for a disk error (run it again: a partial gc leaves the store consistent).
   * `compact` gives the disk space back at once (see GcOptions).
   */
  async gc(opts: GcOptions = {}): Promise<ContentGcResult> {
    return this.exclusive(async () => {
      const { live, unpinned } = await this.rootsForGc();
      const marked = new Set<string>();
      const visited = new Set<string>();
      for (const root of live) {
        try {
          await markDag(this.blocks, root, marked, visited);
        } catch (err) {
          if (!(err instanceof ContentError)) throw err;
          throw new ContentError(err.code, `gc stopped before deleting anything: the DAG of live root ${root} cannot be walked (${err.message}); add that file again or unpin it`, { ...err.fields, root: root.toString() }, { cause: err });
        }
      }
      // Scope 'unpinned': the blocks of the given-up DAGs, as far as they can still be walked (a block a crash
      // already removed is simply not a candidate any more).
      const candidates = new Set<string>();
      if (opts.scope === 'unpinned') {
        const seen = new Set<string>();
        for (const body of unpinned) await markDag(this.blocks, CID.decode(body), candidates, seen).catch(() => {});
      }
      // Unpinned roots' records go before the sweep: a crash between the two leaves only orphan blocks, which
      // the next gc sweeps, never a listed root whose blocks are gone.
      if (unpinned.length > 0) {
        const ops = unpinned.flatMap((k) => [{ type: 'del' as const, key: key(P_ROOT, k) }, { type: 'del' as const, key: key(P_UNPINNED, k) }]);
        try {
          await this.db.batch(ops, { sync: true });
        } catch (err) {
          throw new ContentError('CONTENT_STORE_FAILED', `gc could not delete the records of unpinned roots: ${(err as Error).message}; run it again`, {}, { cause: err });
        }
      }
      let result: ContentGcResult;
      if (opts.scope === 'unpinned') {
        result = await this.blocks.sweepOnly(candidates, marked);
      } else {
        result = await this.blocks.sweep(marked);
      }
      if (opts.compact === true && result.removedBlocks > 0) await this.blocks.compact();
      return result;
    });
  }

  /** Live roots (pinned, or with a root record and no unpinned record) in key order, and the CID bytes of the unpinned ones. */
  private async rootsForGc(): Promise<{ live: CID[]; unpinned: Uint8Array[] }> {
    const scan = async (prefix: number): Promise<Map<string, Uint8Array>> => {
      const out = new Map<string, Uint8Array>();
      for await (const k of this.db.keys({ gte: key(prefix, EMPTY), lt: key(prefix + 1, EMPTY) })) out.set(Buffer.from(k.subarray(1)).toString('latin1'), k.subarray(1));
      return out;
    };
    const roots = await scan(P_ROOT);
    const pins = await scan(P_PIN);
    const marks = await scan(P_UNPINNED);
    const live: CID[] = [];
    const unpinned: Uint8Array[] = [];
    for (const [id, body] of roots) {
      if (pins.has(id) || !marks.has(id)) live.push(CID.decode(body));
      else unpinned.push(body);
    }
    for (const [id, body] of pins) if (!roots.has(id)) live.push(CID.decode(body)); // pin() writes a root record too; kept all the same
    for (const [id, body] of marks) if (!roots.has(id)) unpinned.push(body); // a stray unpinned record goes as well
    return { live, unpinned };
  }

  /** Number and bytes of the stored blocks (reads them all). */
  async stat(): Promise<{ blocks: number; bytes: number }> {
    return this.blocks.stat();
  }

  async *list(): AsyncIterable<ContentListEntry> {
    let page: CID[] = [];
    for await (const k of this.db.keys({ gte: key(P_ROOT, EMPTY), lt: key(P_ROOT + 1, EMPTY) })) {
      page.push(CID.decode(k.subarray(1)));
      if (page.length >= 256) {
        yield* await this.withPins(page);
        page = [];
      }
    }
    yield* await this.withPins(page);
  }

  private async withPins(roots: readonly CID[]): Promise<ContentListEntry[]> {
    const pins = await this.db.getMany(roots.map((c) => key(P_PIN, c.bytes)));
    return roots.map((c, i) => ({ cid: c.toString(), pinned: pins[i] !== undefined }));
  }

  /** True when `cid` is pinned here. */
  async isPinned(cidString: string): Promise<boolean> {
    return (await this.db.get(key(P_PIN, parseCid(cidString).bytes))) !== undefined;
  }
}
