// The ledger: the committed chain (head block, account state, block store) and the two ways it grows:
// building a block on the head and checking a proposed block by executing it. A block is committed
// only with a commit certificate from the committee, verified here whoever produced it.
import { EventEmitter } from 'node:events';
import type { Block, BlockHeader } from './block.ts';
import { EMPTY_BLOOM, ZERO_ADDRESS, encodeReceipt, headerHash, orBloom, sealHash } from './block.ts';
import type { CommitCertificate, ValidatorKey } from './certificate.ts';
import { signerOf, verifyCertificate } from './certificate.ts';
import { bigintToBytes32, bytesToBigint, bytesToHex, hexToBytes, keccak256 } from './crypto/index.ts';
import { ChainError } from './errors.ts';
import { executeTxs } from './execute.ts';
import type { BlockContext } from './execute.ts';
import type { Logger } from './logger.ts';
import { nopLogger } from './logger.ts';
import { merkleRoot } from './merkle.ts';
import { rlpEncode } from './rlp.ts';
import { consensusDigest } from './signing.ts';
import type { StateOverlay, StateReader } from './state/world.ts';
import { WorldState, slotKey } from './state/world.ts';
import type { ImpeachmentEntry } from './store.ts';
import { BlockStore } from './store.ts';
import type { Address, Hash, Receipt, SignedTx } from './types.ts';

/** Parameters of a chain, fixed at genesis. */
export interface ChainSpec {
  readonly chainId: bigint;
  /** Constant base fee per gas (the fixed fee policy). */
  readonly baseFee: bigint;
  readonly gasLimit: bigint;
  /** Validators that sign commit certificates, in committee order. */
  readonly committee: readonly ValidatorKey[];
  /** Proposers (secp256k1 addresses: they seal blocks and earn fees), in schedule order: P(h) = proposers[h mod length]. */
  readonly proposers: readonly Address[];
  /** Target time between blocks (ms). */
  readonly periodMs: number;
  /** How long validators wait beyond the period for the scheduled proposer before impeaching it (ms). */
  readonly timeoutMs: number;
  readonly genesisTimestamp: number;
  readonly alloc: ReadonlyMap<Address, bigint>;
}

/** A block built or checked on the head, with everything needed to commit it. */
export interface Candidate {
  readonly header: BlockHeader;
  readonly txs: readonly SignedTx[];
  readonly receipts: readonly Receipt[];
  readonly state: StateOverlay;
  /** Transactions left out while building, with the reason. */
  readonly rejected: readonly { tx: SignedTx; error: ChainError }[];
}

/** What listeners of 'block' receive after a commit. */
export interface CommittedBlock {
  readonly block: Block;
  readonly receipts: readonly Receipt[];
}

const GENESIS_TAG = new TextEncoder().encode('datagate/genesis/v1');

/**
 * The parent hash of the genesis block, which has no parent: a digest of the chain id, the committee (address,
 * key type and public key of each validator, in order) and the proposer schedule. The header has no extra-data
 * field, and without this the genesis hash (and so the identity a data directory is checked against) would
 * depend on the allocations alone: chains of another id or committee would look like the same chain.
 */
export function genesisParentHash(spec: Pick<ChainSpec, 'chainId' | 'committee' | 'proposers'>): Hash {
  const committee = spec.committee.map((v) => [hexToBytes(v.address), new TextEncoder().encode(v.keyType), v.publicKey]);
  return bytesToHex(keccak256(rlpEncode([GENESIS_TAG, spec.chainId, committee, spec.proposers.map((p) => hexToBytes(p))])));
}

/** The genesis block of `spec` and the state it starts with. */
export function genesisOf(spec: ChainSpec): { block: Block; state: WorldState } {
  const state = WorldState.fromAccounts([...spec.alloc].map(([address, balance]) => [address, { nonce: 0n, balance }] as const));
  const header: BlockHeader = {
    parentHash: genesisParentHash(spec),
    number: 0n,
    timestamp: spec.genesisTimestamp,
    proposer: ZERO_ADDRESS,
    stateRoot: bytesToHex(state.root()),
    txRoot: bytesToHex(merkleRoot([])),
    receiptRoot: bytesToHex(merkleRoot([])),
    logsBloom: EMPTY_BLOOM,
    gasUsed: 0n,
    gasLimit: spec.gasLimit,
    baseFee: spec.baseFee,
    term: 0n,
    round: 0,
    seal: new Uint8Array(0),
  };
  return { block: { header, hash: headerHash(header), txs: [] }, state };
}

/**
 * Recent blocks kept decoded in memory: clients poll the newest blocks and receipts far more than old ones.
 * Bounded by blocks and by transactions, so full blocks cannot grow it past a few tens of MiB.
 */
const RECENT_BLOCKS = 128;
const RECENT_TXS = 20_000;

export class Ledger extends EventEmitter<{ block: [CommittedBlock] }> {
  private readonly recent = new Map<Hash, CommittedBlock>();
  private readonly recentTxs = new Map<Hash, { blockHash: Hash; index: number }>();

  private constructor(
    readonly spec: ChainSpec,
    readonly store: BlockStore,
    readonly genesisHash: Hash,
    private committedState: WorldState,
    private headBlock: Block,
    private readonly log: Logger,
  ) {
    super();
  }

  /**
   * Open the chain stored at `path` (creating it with the genesis of `spec` if empty) and resume at
   * the stored head. Throws STORE_CHAIN_MISMATCH / STORE_SCHEMA_MISMATCH / STORE_CORRUPT.
   */
  static async open(path: string, spec: ChainSpec, logger: Logger = nopLogger): Promise<Ledger> {
    const genesis = genesisOf(spec);
    const store = await BlockStore.open(path, { chainId: spec.chainId, genesisHash: genesis.block.hash });
    try {
      const head = await store.headHash();
      if (head === undefined) {
        const accounts = new Map([...spec.alloc].map(([address, balance]) => [address, { nonce: 0n, balance }]));
        await store.putBlock(genesis.block, [], null, accounts);
        logger.info('created chain', { chainId: spec.chainId, genesis: genesis.block.hash, path });
        return new Ledger(spec, store, genesis.block.hash, genesis.state, genesis.block, logger);
      }
      const headBlock = await store.blockByHash(head, spec.chainId);
      if (headBlock === undefined) throw new ChainError('STORE_CORRUPT', `head block ${head} is missing from ${path}`);
      const accounts: [Address, { nonce: bigint; balance: bigint }][] = [];
      for await (const entry of store.accounts()) accounts.push(entry);
      const slots: [string, Uint8Array][] = [];
      for await (const entry of store.slots()) slots.push(entry);
      const state = WorldState.fromAccounts(accounts, slots);
      const root = bytesToHex(state.root());
      if (root !== headBlock.header.stateRoot) {
        throw new ChainError('STORE_CORRUPT', `stored accounts give state root ${root} but head block ${headBlock.header.number} says ${headBlock.header.stateRoot}`, {
          path,
        });
      }
      logger.info('resumed chain', { chainId: spec.chainId, head: headBlock.header.number, hash: head, accounts: accounts.length });
      return new Ledger(spec, store, genesis.block.hash, state, headBlock, logger);
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  get head(): Block {
    return this.headBlock;
  }

  get state(): WorldState {
    return this.committedState;
  }

  /** Build a block on the head from `txs` (in order; those that cannot run are left out). Unsealed. */
  buildBlock(opts: { proposer: Address; timestamp: number; round: number; txs: readonly SignedTx[] }): Candidate {
    const ctx = this.contextFor(opts.proposer, opts.timestamp);
    const state = this.committedState.overlay();
    const result = executeTxs(state, ctx, opts.txs, 'build');
    const header = this.headerFor(ctx, opts.round, state, result.included, result.receipts, result.gasUsed, new Uint8Array(0));
    return { header, txs: result.included, receipts: result.receipts, state, rejected: result.rejected };
  }

  /**
   * Check a proposed block on the head: structure, parent, timestamp, proposer seal, and the results
   * of executing it (state, transaction and receipt roots, bloom, gas). Throws BLOCK_INVALID.
   */
  validateBlock(block: Block, now?: number): Candidate {
    const h = block.header;
    const parent = this.headBlock.header;
    const fail = (why: string): never => {
      throw new ChainError('BLOCK_INVALID', `block ${h.number} (${block.hash}) is invalid: ${why}`, { number: h.number, hash: block.hash });
    };
    if (headerHash(h) !== block.hash) fail('hash does not match header');
    if (h.parentHash !== this.headBlock.hash) fail(`parent ${h.parentHash} is not the head ${this.headBlock.hash}`);
    if (h.number !== parent.number + 1n) fail(`number is not ${parent.number + 1n}`);
    if (h.seal.length === 0) {
      // No seal: only the impeachment block I(h), which every node builds identically from the parent.
      const expected = this.buildImpeachment();
      if (headerHash(expected.header) !== block.hash) fail('unsealed block is not the impeachment block of its parent');
      return expected;
    }
    if (h.timestamp <= parent.timestamp) fail('timestamp is not after the parent');
    if (now !== undefined && h.timestamp > now + MAX_CLOCK_DRIFT_MS) fail(`timestamp ${h.timestamp} is more than ${MAX_CLOCK_DRIFT_MS} ms ahead of this node's clock`);
    if (h.gasLimit !== this.spec.gasLimit || h.baseFee !== this.spec.baseFee) fail('gas limit or base fee differs from the chain spec');
    if (h.proposer !== this.proposerOf(h.number)) fail(`proposer ${h.proposer} is not the scheduled proposer ${this.proposerOf(h.number)}`);
    if (h.seal.length !== 65 || signerOf(sealHashDigest(this.spec.chainId, h), h.seal) !== h.proposer) fail('proposer seal does not verify');
    const ctx = this.contextFor(h.proposer, h.timestamp);
    const state = this.committedState.overlay();
    const result = executeTxs(state, ctx, block.txs, 'validate');
    const expected = this.headerFor(ctx, h.round, state, result.included, result.receipts, result.gasUsed, h.seal);
    for (const field of ['stateRoot', 'txRoot', 'receiptRoot', 'gasUsed'] as const) {
      if (expected[field] !== h[field]) fail(`${field} is ${String(h[field])}, executing the block gives ${String(expected[field])}`);
    }
    if (bytesToHex(expected.logsBloom) !== bytesToHex(h.logsBloom)) fail('logs bloom does not match the receipts');
    return { header: h, txs: block.txs, receipts: result.receipts, state, rejected: [] };
  }

  /** The scheduled proposer of block `number`. */
  proposerOf(number: bigint): Address {
    return this.spec.proposers[Number(number % BigInt(this.spec.proposers.length))]!;
  }

  /**
   * The impeachment block I(h) on the head: no transactions, timestamp = parent + period + timeout, the
   * impeached scheduled proposer named, no seal; its state transition counts the impeachment. Every node
   * builds it byte-identically.
   */
  buildImpeachment(): Candidate {
    const number = this.headBlock.header.number + 1n;
    const proposer = this.proposerOf(number);
    const ctx = this.contextFor(proposer, this.headBlock.header.timestamp + this.spec.periodMs + this.spec.timeoutMs);
    const state = this.committedState.overlay();
    const key = impeachmentSlot(proposer);
    state.setSlot(key, bigintToBytes32(impeachmentCount(state, proposer) + 1n));
    const header = this.headerFor(ctx, 0, state, [], [], 0n, new Uint8Array(0));
    return { header, txs: [], receipts: [], state, rejected: [] };
  }

  /** Commit `candidate` as the new head with its certificate (verified here). */
  async commit(candidate: Candidate, cert: CommitCertificate): Promise<Block> {
    const header = candidate.header;
    if (header.parentHash !== this.headBlock.hash) throw new ChainError('BLOCK_INVALID', `block ${header.number} does not extend the head`);
    const block: Block = { header, hash: headerHash(header), txs: candidate.txs };
    verifyCertificate(cert, this.spec.chainId, header.number, block.hash, this.spec.committee);
    await this.store.putBlock(block, candidate.receipts, cert, candidate.state.changes(), candidate.state.slotChanges());
    this.committedState.commit(candidate.state);
    this.headBlock = block;
    this.remember({ block, receipts: candidate.receipts });
    this.log.debug('committed block', { number: header.number, hash: block.hash, txs: block.txs.length });
    this.emit('block', { block, receipts: candidate.receipts });
    return block;
  }

  /** Block by hash (recent ones from memory), or undefined. */
  async blockByHash(hash: Hash): Promise<Block | undefined> {
    return this.recent.get(hash)?.block ?? (await this.store.blockByHash(hash, this.spec.chainId));
  }

  /** Canonical block at `number`, or undefined beyond the head. */
  async blockByNumber(number: bigint): Promise<Block | undefined> {
    if (number === this.headBlock.header.number) return this.headBlock;
    if (number > this.headBlock.header.number || number < 0n) return undefined;
    const hash = await this.store.hashByNumber(number);
    return hash === undefined ? undefined : this.blockByHash(hash);
  }

  async receipts(blockHash: Hash): Promise<readonly Receipt[] | undefined> {
    return this.recent.get(blockHash)?.receipts ?? (await this.store.receipts(blockHash));
  }

  /** Where a committed transaction is: its block and index, or undefined. */
  async txLocation(txHash: Hash): Promise<{ blockHash: Hash; index: number } | undefined> {
    return this.recentTxs.get(txHash) ?? (await this.store.txLocation(txHash));
  }

  async certificate(blockHash: Hash): Promise<CommitCertificate | undefined> {
    return this.store.certificate(blockHash);
  }

  /** Committed impeachment blocks I(h) below height `before` (all when omitted), newest first, at most `limit`. */
  async impeachments(limit: number, before?: bigint): Promise<ImpeachmentEntry[]> {
    return this.store.impeachments(limit, before);
  }

  private remember(entry: CommittedBlock): void {
    this.recent.set(entry.block.hash, entry);
    entry.block.txs.forEach((tx, index) => this.recentTxs.set(tx.hash, { blockHash: entry.block.hash, index }));
    while (this.recent.size > 1 && (this.recent.size > RECENT_BLOCKS || this.recentTxs.size > RECENT_TXS)) {
      const oldest = this.recent.keys().next().value as Hash;
      for (const tx of this.recent.get(oldest)!.block.txs) this.recentTxs.delete(tx.hash);
      this.recent.delete(oldest);
    }
  }

  private contextFor(proposer: Address, timestamp: number): BlockContext {
    return { number: this.headBlock.header.number + 1n, timestamp, proposer, gasLimit: this.spec.gasLimit, baseFee: this.spec.baseFee };
  }

  private headerFor(
    ctx: BlockContext,
    round: number,
    state: StateOverlay,
    txs: readonly SignedTx[],
    receipts: readonly Receipt[],
    gasUsed: bigint,
    seal: Uint8Array,
  ): BlockHeader {
    const bloom = new Uint8Array(256);
    for (const r of receipts) orBloom(bloom, r.logsBloom);
    return {
      parentHash: this.headBlock.hash,
      number: ctx.number,
      timestamp: ctx.timestamp,
      proposer: ctx.proposer,
      stateRoot: bytesToHex(state.seal().root),
      txRoot: bytesToHex(merkleRoot(txs.map((tx) => hexToBytes(tx.hash)))),
      receiptRoot: bytesToHex(merkleRoot(receipts.map(encodeReceipt))),
      logsBloom: bloom,
      gasUsed,
      gasLimit: ctx.gasLimit,
      baseFee: ctx.baseFee,
      term: 0n,
      round,
      seal,
    };
  }
}

/** A proposer's timestamp may run this far ahead of a validator's clock. */
export const MAX_CLOCK_DRIFT_MS = 2_000;

/** State slot counting the impeachments of `proposer`. */
export function impeachmentSlot(proposer: Address): string {
  return slotKey('lbft/impeachments', hexToBytes(proposer));
}

/** How often `proposer` was impeached, as recorded in `state`. */
export function impeachmentCount(state: StateReader, proposer: Address): bigint {
  const v = state.slot(impeachmentSlot(proposer));
  return v === undefined ? 0n : bytesToBigint(v);
}

/** Digest a proposer signs to seal `header` (domain-separated, see chain/signing.ts). */
export function sealHashDigest(chainId: bigint, header: BlockHeader): Uint8Array {
  return consensusDigest('seal', chainId, header.number, header.round, sealHash(header));
}
