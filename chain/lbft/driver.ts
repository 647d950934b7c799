// The driver that runs the LBFT reducer for a real node: one input queue, every input written to the WAL
// before the reducer sees it (fsync'd for this node's own signed messages), and the reducer's actions
// carried out against the ledger, the signer, the transport and the clock. After a crash the WAL of the
// current height is replayed through the same reducer; the signer's double-sign guard makes any
// signature asked for again identical to the one already sent. A proposer records the block it built
// (fsync'd) before it signs the block's seal, so after a restart it seals that same block again rather than
// building another one the guard would refuse. A refused signature is logged and counted, never fatal: the
// node stays silent for that message and the committee's timeouts take over.
// A node behind catches up outside the reducer (block-sync.ts): those commits are not in the WAL, so a restart
// begins the height after the head afresh. Heights the ledger already holds are not executed, built or sealed.
import type { Block } from '../block.ts';
import { headerHash, sealHash } from '../block.ts';
import type { CommitCertificate } from '../certificate.ts';
import { memberSigned, signerOf } from '../certificate.ts';
import { bytesToHex } from '../crypto/index.ts';
import { ChainError } from '../errors.ts';
import type { Candidate, Ledger } from '../ledger.ts';
import { sealHashDigest } from '../ledger.ts';
import type { Logger } from '../logger.ts';
import { nopLogger } from '../logger.ts';
import type { SignPurpose, Signer } from '../signing.ts';
import { consensusDigest } from '../signing.ts';
import type { TxPool } from '../txpool.ts';
import type { Address, SignedTx } from '../types.ts';
import { BlockSync, type SyncProgress } from './block-sync.ts';
import type { EngineBlock } from './codec.ts';
import { encodeEvent, engineBlock } from './codec.ts';
import type { LbftMetrics } from './metrics.ts';
import { nopLbftMetrics } from './metrics.ts';
import { signingPayload } from './rules.ts';
import type { LbftState } from './step.ts';
import { initialState, step } from './step.ts';
import type { Decided, LbftAction, LbftEvent, LbftVerifier, Message, SignedMessage, SigningPayload, Unsigned } from './types.ts';
import type { Wal } from './wal.ts';
import { readConsensusWal } from './wal-replay.ts';

/** Timer port, so tests can drive time by hand. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** How messages reach other nodes. */
export interface LbftTransport {
  /** Send to every validator except `from`. */
  broadcast(from: Address, message: SignedMessage<EngineBlock>): void;
  /** Send a VALIDATE to every node except `from`. */
  sendDecided(from: Address, message: Decided<EngineBlock>): void;
  sendTo(to: Address, message: Message<EngineBlock>): void;
  /** Decided blocks (with certificates) of heights from..to from peers, in order; may return fewer. */
  fetchDecided(from: bigint, to: bigint): Promise<Decided<EngineBlock>[]>;
  /** Send transactions toward the proposers (every node except `from`), whose pools build blocks of them. */
  sendTransactions(from: Address, txs: readonly SignedTx[]): void;
}

export interface LbftNodeOptions {
  readonly ledger: Ledger;
  /** This node's key (guarded against double signing); null for a follower. */
  readonly signer: Signer | null;
  /** Identity of a follower (any address that is neither validator nor proposer). */
  readonly address?: Address;
  readonly transport: LbftTransport;
  readonly wal: Wal | null;
  /** Transactions for blocks this node proposes. */
  readonly pool?: TxPool;
  readonly maxTxsPerBlock?: number;
  readonly timers?: Timers;
  readonly logger?: Logger;
  readonly metrics?: LbftMetrics;
  /** Shared across nodes in one process so a message is verified once. */
  readonly verifyCache?: Map<string, boolean>;
  /** Called when the driver stopped on an error it cannot recover from; without it the error is thrown. */
  readonly onFatal?: (err: unknown) => void;
  /** Heights one sync request asks for (the libp2p transport answers at most its maxSyncBatch); default 32. */
  readonly syncBatch?: number;
}

/** Verifies consensus signatures against the chain's committee (and proposer addresses for round-0 proposals). */
export function ledgerVerifier(ledger: Ledger, cache = new Map<string, boolean>()): LbftVerifier {
  const members = new Map(ledger.spec.committee.map((m) => [m.address, m]));
  return {
    verify(payload: SigningPayload, signer: Address, signature: Uint8Array): boolean {
      const digest = consensusDigest(payload.purpose, ledger.spec.chainId, payload.height, payload.round, payload.hash);
      const key = `${signer}${bytesToHex(digest)}${bytesToHex(signature)}`;
      const known = cache.get(key);
      if (known !== undefined) return known;
      const member = members.get(signer);
      let ok = false;
      if (member !== undefined) ok = memberSigned(member, digest, signature);
      else if (signature.length === 65) {
        try {
          ok = signerOf(digest, signature) === signer;
        } catch {
          ok = false;
        }
      }
      if (cache.size > 100_000) cache.clear();
      cache.set(key, ok);
      return ok;
    },
  };
}

export class LbftNode {
  readonly address: Address;
  private state: LbftState<EngineBlock>;
  private readonly timers: Timers;
  private readonly log: Logger;
  private readonly metrics: LbftMetrics;
  private readonly queue: LbftEvent<EngineBlock>[] = [];
  private running = false;
  private stopped = false;
  private replaying = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly pendingTimers = new Set<unknown>();
  /** Executed blocks of the current height, ready to commit. */
  private readonly candidates = new Map<string, Candidate>();
  private phase = { proposal: 0, prepare: 0, commit: 0 };
  /** The pending 'propose' timer of this node as proposer, so arriving transactions can fire it early. */
  private proposeTimer: { handle: unknown; fire: () => void } | null = null;
  /** Blocks this node built at the current height, executed and unsealed, by their unsealed hash. */
  private readonly unsealed = new Map<string, Candidate>();
  /** Signatures the double-sign guard refused since start. */
  private signRefusals = 0;
  private readonly debugTrace = process.env.DATAGATE_LBFT_TRACE === '1';
  private walFileAtLastPrune = -1;
  /** Height of the last 'start' given to the engine (replayed or enqueued). */
  private begun = 0n;
  private readonly blockSync: BlockSync;
  /** Ledger commits of the engine and of the sync loop, one at a time: each must extend the head it checked. */
  private ledgerLock: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: LbftNodeOptions) {
    const spec = opts.ledger.spec;
    this.address = opts.signer?.address ?? opts.address ?? '0x' + '00'.repeat(20);
    this.timers = opts.timers ?? systemTimers;
    this.log = opts.logger ?? nopLogger;
    this.metrics = opts.metrics ?? nopLbftMetrics;
    this.state = initialState({
      validators: spec.committee.map((m) => m.address),
      proposers: spec.proposers,
      self: this.address,
      periodMs: spec.periodMs,
      timeoutMs: spec.timeoutMs,
      maxTimeoutMs: 16 * spec.timeoutMs,
      futureHeights: 16,
      maxFutureMessages: 4096,
      verifier: ledgerVerifier(opts.ledger, opts.verifyCache),
    });
    this.blockSync = new BlockSync({
      ledger: opts.ledger,
      transport: opts.transport,
      timers: this.timers,
      log: this.log,
      batch: opts.syncBatch ?? 32,
      withLedger: (fn) => this.withLedger(fn),
      committed: (block) => opts.pool?.onBlock(block.txs),
      done: () => this.catchUpEngine(),
    });
  }

  /** Where the engine is: height, round, decided. */
  status(): { height: bigint; round: number; decided: boolean; rejections: Readonly<Record<string, number>>; signRefusals: number; syncTarget: bigint | null } {
    return { height: this.state.height, round: this.state.round, decided: this.state.decided, rejections: this.state.rejections, signRefusals: this.signRefusals, syncTarget: this.blockSync.target };
  }

  /** The sync under way (for eth_syncing), or false when the node is not catching up. */
  syncing(): SyncProgress | false {
    return this.blockSync.progress();
  }

  /** Replay the WAL of the current height (if any), then begin the height after the ledger's head. */
  async start(): Promise<void> {
    const head = this.opts.ledger.head.header.number;
    if (this.opts.wal !== null) {
      const events = await readConsensusWal(this.opts.wal, this.opts.ledger, this.log);
      const from = events.findLastIndex((e) => e.type === 'start' && e.height === head + 1n);
      if (from >= 0) {
        this.replaying = true;
        this.begun = head + 1n;
        for (const event of events.slice(from)) await this.apply(event);
        this.replaying = false;
        // Work the replayed events asked for (commit, execute, build) was not carried out again: ask for it.
        this.enqueue({ type: 'resume', now: this.timers.now() });
        this.log.info('replayed consensus WAL', { height: head + 1n, events: events.length - from, round: this.state.round });
        this.pump();
        return;
      }
    }
    this.beginHeight();
  }

  /** Stop processing; pending timers are cancelled. */
  async stop(): Promise<void> {
    this.stopped = true;
    // The event in progress may still arm timers: clear them after it finished too.
    for (const t of this.pendingTimers) this.timers.clearTimeout(t);
    this.pendingTimers.clear();
    await this.idle.catch(() => {});
    await this.blockSync.stop();
    for (const t of this.pendingTimers) this.timers.clearTimeout(t);
    this.pendingTimers.clear();
  }

  /** Transactions reached this node's pool: as proposer waiting out the period, propose now. */
  transactionsArrived(): void {
    const t = this.proposeTimer;
    if (t === null || !this.somethingToPropose()) return;
    this.proposeTimer = null;
    this.timers.clearTimeout(t.handle);
    t.fire();
  }

  /**
   * Transactions for the chain (from this node's RPC): into its own pool when it has one, and through the
   * transport to the proposers. One a pool already holds or refuses still goes on: the proposers judge it.
   */
  submitTransactions(txs: readonly SignedTx[]): void {
    const pool = this.opts.pool;
    if (pool !== undefined) for (const tx of txs) this.tryAdd(pool, tx);
    this.opts.transport.sendTransactions(this.address, txs);
    if (pool !== undefined) this.transactionsArrived();
  }

  /** Transactions from a peer: into this node's pool (a proposer's), then propose early if it was waiting. */
  receiveTransactions(txs: readonly SignedTx[]): void {
    const pool = this.opts.pool;
    if (pool === undefined) return;
    let added = false;
    for (const tx of txs) added = this.tryAdd(pool, tx) || added;
    if (added) this.transactionsArrived();
  }

  private tryAdd(pool: TxPool, tx: SignedTx): boolean {
    try {
      pool.add(tx);
      return true;
    } catch {
      // Already known, or refused by this pool's limits: the pool's own concern, not the sender's.
      return false;
    }
  }

  /** A message from the network. */
  deliver(message: Message<EngineBlock>): void {
    this.enqueue({ type: 'message', now: this.timers.now(), message });
  }

  /** A transaction in the pool fits a block: only then is proposing before the period worth a block. */
  private somethingToPropose(): boolean {
    return this.opts.pool?.hasSelectable(this.opts.ledger.spec.gasLimit) ?? false;
  }

  private beginHeight(): void {
    const head = this.opts.ledger.head;
    this.candidates.clear();
    this.unsealed.clear();
    this.begun = head.header.number + 1n;
    const impeachment = this.opts.ledger.buildImpeachment();
    const block = engineBlock({ header: impeachment.header, hash: headerHash(impeachment.header), txs: [] });
    this.candidates.set(block.hash, impeachment);
    this.enqueue({
      type: 'start',
      now: this.timers.now(),
      height: head.header.number + 1n,
      parent: { hash: head.hash, timestamp: head.header.timestamp },
      impeachment: block,
    });
  }

  private enqueue(event: LbftEvent<EngineBlock>): void {
    if (this.stopped) return;
    this.queue.push(event);
    this.pump();
  }

  private pump(): void {
    if (this.running || this.replaying) return;
    this.running = true;
    this.idle = (async () => {
      try {
        while (this.queue.length > 0 && !this.stopped) await this.apply(this.queue.shift()!);
      } finally {
        this.running = false;
      }
    })();
    this.idle.catch((err: unknown) => {
      // A failed WAL write, signer or commit leaves the node unable to vote safely: stop loudly.
      this.log.error('consensus driver failed', { error: err });
      this.stopped = true;
      if (this.opts.onFatal === undefined) throw err;
      this.opts.onFatal(err);
    });
  }

  private async apply(event: LbftEvent<EngineBlock>): Promise<void> {
    if (!this.replaying && this.opts.wal !== null) {
      // The start of a height is the checkpoint a restart replays from: once the file is large it opens a new
      // one, and the files before the previous one hold only committed heights, so they go.
      if (event.type === 'start') {
        await this.opts.wal.checkpoint();
        if (this.opts.wal.currentFile !== this.walFileAtLastPrune) {
          await this.opts.wal.prune(2);
          this.walFileAtLastPrune = this.opts.wal.currentFile;
        }
      }
      // Own votes, and the block about to be sealed, must survive a power cut: signing follows them.
      const own = (event.type === 'message' && event.message.type !== 'decided' && event.message.sender === this.address) || event.type === 'built';
      await this.opts.wal.append(encodeEvent(event), { sync: own });
    }
    const { actions } = step(this.state, event);
    if (this.debugTrace) this.log.debug('lbft event', { event: event.type, kind: event.type === 'message' ? event.message.type : undefined, height: this.state.height, round: this.state.round, actions: actions.map((a) => a.type).join(',') });
    for (const action of actions) await this.perform(action, event.now);
  }

  private async perform(a: LbftAction<EngineBlock>, now: number): Promise<void> {
    // Nothing of a replay is carried out again, timers included: 'resume' re-arms them from the restart.
    if (this.replaying) return;
    const { ledger, transport } = this.opts;
    switch (a.type) {
      case 'set-timer': {
        if (this.stopped) return;
        const fire = () => {
          this.pendingTimers.delete(handle);
          if (a.kind === 'propose') this.proposeTimer = null;
          this.enqueue({ type: 'timeout', now: this.timers.now(), height: a.height, round: a.round, kind: a.kind });
        };
        // A proposer with transactions waiting proposes at once instead of waiting out the period.
        const early = a.kind === 'propose' && this.somethingToPropose();
        const handle = this.timers.setTimeout(fire, early ? 0 : Math.max(0, a.at - this.timers.now()));
        this.pendingTimers.add(handle);
        if (a.kind === 'propose') this.proposeTimer = { handle, fire };
        return;
      }
      case 'broadcast': {
        const message = await this.sign(a.message);
        if (message === null) return;
        if (message.type === 'prepare') this.phase.prepare = now;
        if (message.type === 'commit') this.phase.commit = now;
        transport.broadcast(this.address, message);
        this.enqueue({ type: 'message', now: this.timers.now(), message });
        return;
      }
      case 'send-decided':
        transport.sendDecided(this.address, a.message);
        return;
      case 'help-lagging': {
        const block = await ledger.blockByNumber(a.height);
        const certificate = block === undefined ? undefined : await ledger.certificate(block.hash);
        if (block !== undefined && certificate !== undefined) transport.sendTo(a.to, { type: 'decided', height: a.height, block: engineBlock(block), certificate });
        return;
      }
      case 'sync':
        if (this.stopped) return;
        this.metrics.syncing(a.height);
        this.blockSync.want(a.height);
        return;
      case 'validate':
      case 'build':
      case 'seal':
        // The ledger is past this height (a sync committed it): nothing to execute, build or seal for it.
        if (a.height <= ledger.head.header.number) return;
        break;
    }
    switch (a.type) {
      case 'validate': {
        if (this.phase.proposal === 0) this.phase.proposal = now;
        let valid = true;
        let reason: string | undefined;
        try {
          // A block this node built (or I(h), built at the start of the height) was executed when it was
          // made; everything else is executed now, before this node votes for it.
          if (!this.candidates.has(a.block.hash)) this.candidates.set(a.block.hash, ledger.validateBlock(a.block, this.timers.now()));
        } catch (err) {
          valid = false;
          reason = (err as Error).message;
          this.log.warn('proposed block is invalid', { height: a.height, hash: a.block.hash, reason });
        }
        this.enqueue({ type: 'validated', now: this.timers.now(), height: a.height, hash: a.block.hash, valid, ...(reason !== undefined ? { reason } : {}) });
        return;
      }
      case 'build':
        this.enqueue({ type: 'built', now: this.timers.now(), height: a.height, block: this.build(a.timestamp) });
        return;
      case 'seal': {
        const block = await this.seal(a.block);
        if (block !== null) this.enqueue({ type: 'sealed', now: this.timers.now(), height: a.height, block });
        return;
      }
      case 'commit':
        await this.commit(a.block, a.certificate, now);
        return;
      case 'impeach':
        this.log.warn('impeaching proposer', { height: a.height, proposer: a.proposer, cause: a.cause });
        this.metrics.impeachment({ height: a.height, proposer: a.proposer, cause: a.cause, at: now });
        return;
      case 'reject':
        this.metrics.rejected(a.reason);
        return;
    }
  }

  /** This node's signature through its guard, or null when the guard refused (logged and counted). */
  private async guardedSign(digest: Uint8Array, purpose: SignPurpose, context: { height: bigint; round: number; hash: Uint8Array }): Promise<Uint8Array | null> {
    const signer = this.opts.signer;
    if (signer === null) throw new Error('a follower cannot sign consensus messages');
    try {
      return await signer.sign(digest, purpose, context);
    } catch (err) {
      if (!(err instanceof ChainError) || err.code !== 'SIGN_CONFLICT') throw err;
      // Signing would contradict what this key signed before: stay silent; the committee's timeouts go on.
      this.signRefusals++;
      this.metrics.rejected(`sign-conflict:${purpose}`);
      this.log.warn('double-sign guard refused a signature; staying silent for it', { purpose, height: context.height, round: context.round, error: err });
      return null;
    }
  }

  private async sign(message: Unsigned<SignedMessage<EngineBlock>>): Promise<SignedMessage<EngineBlock> | null> {
    const payload = signingPayload(message);
    const digest = consensusDigest(payload.purpose, this.opts.ledger.spec.chainId, payload.height, payload.round, payload.hash);
    const signature = await this.guardedSign(digest, payload.purpose, { height: payload.height, round: payload.round, hash: payload.hash });
    return signature === null ? null : ({ ...message, sender: this.address, signature } as SignedMessage<EngineBlock>);
  }

  /** Build and execute this proposer's block; unsealed, so that it is recorded before it is signed. */
  private build(timestamp: number): EngineBlock {
    const { ledger, pool, signer } = this.opts;
    if (signer === null) throw new Error('a follower cannot propose');
    const txs = pool?.select(ledger.spec.gasLimit, this.opts.maxTxsPerBlock ?? 5_000) ?? [];
    const candidate = ledger.buildBlock({ proposer: signer.address, timestamp, round: 0, txs });
    for (const { tx, error } of candidate.rejected) {
      pool?.remove(tx.hash);
      this.log.warn('dropped transaction that cannot run', { tx: tx.hash, code: error.code });
    }
    const block = engineBlock({ header: candidate.header, hash: headerHash(candidate.header), txs: candidate.txs });
    this.unsealed.set(block.hash, candidate);
    return block;
  }

  /** Seal this proposer's recorded block (again, after a restart: the guard then returns the same seal). */
  private async seal(built: EngineBlock): Promise<EngineBlock | null> {
    const { chainId } = this.opts.ledger.spec;
    const unsealed = { ...built.header, seal: new Uint8Array(0) };
    const seal = await this.guardedSign(sealHashDigest(chainId, unsealed), 'seal', { height: unsealed.number, round: unsealed.round, hash: sealHash(unsealed) });
    if (seal === null) return null;
    const header = { ...unsealed, seal };
    const block: Block = { header, hash: headerHash(header), txs: built.txs };
    // Executed when it was built; after a restart it is executed again when its proposal comes back.
    const candidate = this.unsealed.get(built.hash);
    if (candidate !== undefined) this.candidates.set(block.hash, { ...candidate, header });
    return engineBlock(block);
  }

  /** Run `fn` once the ledger commits before it finished. */
  private withLedger<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.ledgerLock.then(fn);
    this.ledgerLock = run.catch(() => {});
    return run;
  }

  private async commit(block: EngineBlock, certificate: CommitCertificate, now: number): Promise<void> {
    const { ledger, pool } = this.opts;
    const fresh = await this.withLedger(async () => {
      if (block.number <= ledger.head.header.number) return false;
      const candidate = this.candidates.get(block.hash) ?? ledger.validateBlock(block);
      await ledger.commit(candidate, certificate);
      return true;
    });
    // Already in the ledger (a sync got there first): move on after the head, or let the sync loop do so.
    if (!fresh) return this.catchUpEngine();
    pool?.onBlock(block.txs);
    const p = this.phase;
    const since = (t: number, from: number) => (t > 0 && from > 0 ? t - from : null);
    this.metrics.decided({
      height: block.number,
      round: certificate.round,
      proposalToPrepareMs: since(p.prepare, p.proposal),
      prepareToCommitMs: since(p.commit, p.prepare),
      commitToDecideMs: since(now, p.commit),
      totalMs: since(now, p.proposal),
    });
    this.phase = { proposal: 0, prepare: 0, commit: 0 };
    this.beginHeight();
  }

  /** Begin the height after the head unless the engine is there already or a sync will do it when done. */
  private catchUpEngine(): void {
    if (this.blockSync.target === null && !this.stopped && this.begun <= this.opts.ledger.head.header.number) this.beginHeight();
  }
}
