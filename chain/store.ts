// Durable block store on LevelDB. The on-disk format is a contract: every key starts with a numbered
// prefix that is never reused for another meaning, a schema version is checked at start-up, and each
// block (with its receipts, certificate, transaction and impeachment index entries, touched accounts and
// the new head) is written in one atomic batch, so a crash leaves either the whole block or none of it.
import type { Level } from 'level';
import type { Block, BlockHeader } from './block.ts';
import { decodeHeader, decodeReceipt, encodeHeader, encodeReceipt } from './block.ts';
import type { CommitCertificate } from './certificate.ts';
import { decodeCertificate, encodeCertificate } from './certificate.ts';
import { bytesToHex, hexToBytes } from './crypto/index.ts';
import { ChainError } from './errors.ts';
import { openVersionedLevel } from './level-store.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList } from './rlp.ts';
import { decodeAccount, encodeAccount } from './state/world.ts';
import { decodeSignedTx } from './tx.ts';
import type { Account, Address, Hash, Receipt } from './types.ts';

/** Version of the on-disk format. Bump it (and write a migration) whenever a record layout changes. */
export const SCHEMA_VERSION = 1;

// Key prefixes. Numbers are never reused; retire a prefix by leaving it out, never by recycling it.
const P_META = 0x01; // meta/<name> -> value
const P_HEAD = 0x02; // head -> block hash
const P_CANONICAL = 0x03; // number (8 bytes BE) -> block hash
const P_BLOCK = 0x04; // block hash -> rlp([header bytes, [raw tx...]])
const P_RECEIPTS = 0x05; // block hash -> rlp([receipt bytes...])
const P_TX_INDEX = 0x06; // tx hash -> block hash (32) || index (4 BE)
const P_ACCOUNT = 0x07; // address (20) -> nonce (32) || balance (32)
const P_CERT = 0x08; // block hash -> encoded commit certificate
const P_SLOT = 0x09; // slot trie key (32) -> value
const P_IMPEACHMENT = 0x0a; // number (8 bytes BE) of an impeachment block I(h) -> impeached proposer (20) || timestamp (8 BE)

/** meta/<IMPEACHMENTS_INDEXED> is set once every stored impeachment block is in the P_IMPEACHMENT index. */
const IMPEACHMENTS_INDEXED = 'impeachments-indexed';

const enc = new TextEncoder();
const dec = new TextDecoder();

function key(prefix: number, body: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + body.length);
  k[0] = prefix;
  k.set(body, 1);
  return k;
}

function numberKey(n: bigint, prefix = P_CANONICAL): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return key(prefix, b);
}

const metaKey = (name: string) => key(P_META, enc.encode(name));

/** A committed impeachment block I(h): the block at `number` that replaced the impeached `proposer`'s. */
export interface ImpeachmentEntry {
  readonly number: bigint;
  readonly proposer: Address;
  /** The block's timestamp (ms): parent + period + timeout. */
  readonly timestamp: number;
}

export interface TxLocation {
  readonly blockHash: Hash;
  readonly index: number;
}

/** Identity of a chain; a store written for another identity refuses to open. */
export interface ChainIdentity {
  readonly chainId: bigint;
  readonly genesisHash: Hash;
}

export class BlockStore {
  private constructor(private readonly db: Level<Uint8Array, Uint8Array>, readonly path: string) {}

  /**
   * Open (or create) the store at `path` for `identity`. Throws STORE_SCHEMA_MISMATCH or
   * STORE_CHAIN_MISMATCH when the directory holds another format or another chain.
   */
  static async open(path: string, identity: ChainIdentity): Promise<BlockStore> {
    const db = await openVersionedLevel(path, {
      versionKey: metaKey('schema'),
      version: SCHEMA_VERSION,
      initialRecords: [
        { key: metaKey('chainId'), value: enc.encode(identity.chainId.toString()) },
        { key: metaKey('genesis'), value: enc.encode(identity.genesisHash) },
        { key: metaKey(IMPEACHMENTS_INDEXED), value: enc.encode('1') },
      ],
      errors: {
        locked: (err) => new ChainError('STORE_LOCKED', `the chain database at ${path} is in use by another process; stop the other datagate or use another --data-dir`, { path }, { cause: err }),
        failed: (err) => new ChainError('STORE_CORRUPT', `cannot open the chain database at ${path}: ${(err as Error).message}`, { path }, { cause: err }),
        mismatch: (found) =>
          new ChainError(
            'STORE_SCHEMA_MISMATCH',
            `data directory ${path} has store schema ${found}, this datagate reads schema ${SCHEMA_VERSION}; use a datagate release that matches it or start with an empty data directory`,
            { path, found: Number(found), expected: SCHEMA_VERSION },
          ),
      },
    });
    const store = new BlockStore(db, path);
    try {
      await store.checkIdentity(identity);
      await store.indexImpeachments();
    } catch (err) {
      await db.close();
      throw err;
    }
    return store;
  }

  /** The schema version was checked at open; a store of another chain is refused here. */
  private async checkIdentity(identity: ChainIdentity): Promise<void> {
    const [chainId, genesis] = await this.db.getMany([metaKey('chainId'), metaKey('genesis')]);
    const storedChain = chainId === undefined ? '' : dec.decode(chainId);
    const storedGenesis = genesis === undefined ? '' : dec.decode(genesis);
    if (storedChain !== identity.chainId.toString() || storedGenesis !== identity.genesisHash) {
      throw new ChainError(
        'STORE_CHAIN_MISMATCH',
        `data directory ${this.path} belongs to chain id ${storedChain} (genesis ${storedGenesis}), not to chain id ${identity.chainId} (genesis ${identity.genesisHash}); point --data-dir at this chain's directory or an empty one`,
        { path: this.path, storedChain, storedGenesis },
      );
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /** Index the impeachment blocks of a store written before the index existed (once; later blocks index themselves). */
  private async indexImpeachments(): Promise<void> {
    if ((await this.db.get(metaKey(IMPEACHMENTS_INDEXED))) !== undefined) return;
    const ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
    for await (const hash of this.db.values({ gt: numberKey(0n), lt: key(P_CANONICAL + 1, new Uint8Array(0)) })) {
      const stored = await this.db.get(key(P_BLOCK, hash));
      const headerBytes = stored === undefined ? null : rlpBytes(rlpList(rlpDecode(stored))?.[0]);
      if (headerBytes === null) throw new ChainError('STORE_CORRUPT', `block ${bytesToHex(hash)} is missing or malformed`, { path: this.path });
      const entry = impeachmentEntry(decodeHeader(headerBytes));
      if (entry !== null) ops.push(entry);
    }
    ops.push({ type: 'put', key: metaKey(IMPEACHMENTS_INDEXED), value: enc.encode('1') });
    await this.db.batch(ops, { sync: true });
  }

  /** Committed impeachment blocks below height `before` (all when omitted), newest first, at most `limit`. */
  async impeachments(limit: number, before?: bigint): Promise<ImpeachmentEntry[]> {
    const out: ImpeachmentEntry[] = [];
    const beyondAny = before === undefined || before >= 2n ** 64n;
    const upper = beyondAny ? key(P_IMPEACHMENT + 1, new Uint8Array(0)) : numberKey(before < 0n ? 0n : before, P_IMPEACHMENT);
    for await (const [k, v] of this.db.iterator({ gte: key(P_IMPEACHMENT, new Uint8Array(0)), lt: upper, reverse: true, limit })) {
      const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
      out.push({ number: new DataView(k.buffer, k.byteOffset + 1, 8).getBigUint64(0), proposer: bytesToHex(v.subarray(0, 20)), timestamp: Number(view.getBigUint64(20)) });
    }
    return out;
  }

  async headHash(): Promise<Hash | undefined> {
    const v = await this.db.get(key(P_HEAD, new Uint8Array(0)));
    return v === undefined ? undefined : bytesToHex(v);
  }

  /**
   * Write `block` as the new head in one atomic batch with its receipts, certificate, transaction
   * index and the accounts it changed.
   */
  async putBlock(
    block: Block,
    receipts: readonly Receipt[],
    cert: CommitCertificate | null,
    accounts: ReadonlyMap<Address, Account>,
    slots: ReadonlyMap<string, Uint8Array> = new Map(),
  ): Promise<void> {
    const hash = hexToBytes(block.hash);
    const ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [
      { type: 'put', key: key(P_BLOCK, hash), value: encodeBlock(block) },
      { type: 'put', key: key(P_RECEIPTS, hash), value: rlpEncode(receipts.map(encodeReceipt)) },
      { type: 'put', key: numberKey(block.header.number), value: hash },
      { type: 'put', key: key(P_HEAD, new Uint8Array(0)), value: hash },
    ];
    if (cert !== null) ops.push({ type: 'put', key: key(P_CERT, hash), value: encodeCertificate(cert) });
    block.txs.forEach((tx, i) => {
      const loc = new Uint8Array(36);
      loc.set(hash, 0);
      new DataView(loc.buffer).setUint32(32, i);
      ops.push({ type: 'put', key: key(P_TX_INDEX, hexToBytes(tx.hash)), value: loc });
    });
    for (const [address, account] of accounts) {
      ops.push({ type: 'put', key: key(P_ACCOUNT, hexToBytes(address)), value: encodeAccount(account) });
    }
    for (const [slot, value] of slots) ops.push({ type: 'put', key: key(P_SLOT, hexToBytes(slot)), value });
    const impeachment = impeachmentEntry(block.header);
    if (impeachment !== null) ops.push(impeachment);
    await this.db.batch(ops, { sync: true });
  }

  async blockByHash(hash: Hash, chainId: bigint): Promise<Block | undefined> {
    const v = await this.db.get(key(P_BLOCK, hexToBytes(hash)));
    return v === undefined ? undefined : decodeBlock(v, hash, chainId);
  }

  async hashByNumber(n: bigint): Promise<Hash | undefined> {
    if (n < 0n) return undefined;
    const v = await this.db.get(numberKey(n));
    return v === undefined ? undefined : bytesToHex(v);
  }

  async receipts(hash: Hash): Promise<Receipt[] | undefined> {
    const v = await this.db.get(key(P_RECEIPTS, hexToBytes(hash)));
    if (v === undefined) return undefined;
    const items = rlpList(rlpDecode(v));
    if (items === null) throw new ChainError('STORE_CORRUPT', `receipts of block ${hash} are malformed`);
    return items.map((item) => {
      const bytes = rlpBytes(item);
      if (bytes === null) throw new ChainError('STORE_CORRUPT', `receipts of block ${hash} are malformed`);
      return decodeReceipt(bytes);
    });
  }

  async certificate(hash: Hash): Promise<CommitCertificate | undefined> {
    const v = await this.db.get(key(P_CERT, hexToBytes(hash)));
    return v === undefined ? undefined : decodeCertificate(v);
  }

  async txLocation(txHash: Hash): Promise<TxLocation | undefined> {
    const v = await this.db.get(key(P_TX_INDEX, hexToBytes(txHash)));
    if (v === undefined) return undefined;
    return { blockHash: bytesToHex(v.subarray(0, 32)), index: new DataView(v.buffer, v.byteOffset).getUint32(32) };
  }

  /** Every stored storage slot, for rebuilding the state at start-up. */
  async *slots(): AsyncGenerator<[string, Uint8Array]> {
    for await (const [k, v] of this.db.iterator({ gte: key(P_SLOT, new Uint8Array(0)), lt: key(P_SLOT + 1, new Uint8Array(0)) })) {
      yield [bytesToHex(k.subarray(1)), v];
    }
  }

  /** Every stored account, for rebuilding the state at start-up. */
  async *accounts(): AsyncGenerator<[Address, Account]> {
    for await (const [k, v] of this.db.iterator({ gte: key(P_ACCOUNT, new Uint8Array(0)), lt: key(P_ACCOUNT + 1, new Uint8Array(0)) })) {
      yield [bytesToHex(k.subarray(1)), decodeAccount(v)];
    }
  }
}

/** The index entry of `header` if it is an impeachment block I(h) (no seal; genesis has none either), else null. */
function impeachmentEntry(header: BlockHeader): { type: 'put'; key: Uint8Array; value: Uint8Array } | null {
  if (header.seal.length !== 0 || header.number === 0n) return null;
  const value = new Uint8Array(28);
  value.set(hexToBytes(header.proposer), 0);
  new DataView(value.buffer).setBigUint64(20, BigInt(header.timestamp));
  return { type: 'put', key: numberKey(header.number, P_IMPEACHMENT), value };
}

/** Bytes of a block as stored (and logged by the consensus WAL): rlp([header, [raw tx...]]). */
export function encodeBlock(block: Block): Uint8Array {
  return rlpEncode([encodeHeader(block.header), block.txs.map((tx) => tx.raw)]);
}

/** Inverse of encodeBlock; `hash` is the block's hash (not recomputed). Throws STORE_CORRUPT. */
export function decodeBlock(bytes: Uint8Array, hash: Hash, chainId: bigint): Block {
  const corrupt = () => new ChainError('STORE_CORRUPT', `stored block ${hash} is malformed`);
  const f = rlpList(rlpDecode(bytes));
  const headerBytes = rlpBytes(f?.[0]);
  const rawTxs = rlpList(f?.[1]);
  if (f === null || f.length !== 2 || headerBytes === null || rawTxs === null) throw corrupt();
  const header = decodeHeader(headerBytes);
  const txs = rawTxs.map((raw) => {
    const b = rlpBytes(raw);
    if (b === null) throw corrupt();
    return decodeSignedTx(b, chainId);
  });
  return { header, hash, txs };
}
