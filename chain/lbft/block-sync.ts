// Block sync of a node that fell behind (see docs/architecture.md, "Peers"): one loop that fetches decided
// blocks in batches and commits each whose certificate verifies straight into the ledger, outside the
// reducer, until the head reaches the highest decided height the node has heard of. The driver then begins
// the engine at the new head + 1, as after any commit that a sync got to first.
import type { Block } from '../block.ts';
import { ChainError } from '../errors.ts';
import type { Ledger } from '../ledger.ts';
import type { Logger } from '../logger.ts';
import type { EngineBlock } from './codec.ts';
import type { Decided } from './types.ts';

/** Where a sync stands, in the terms of eth_syncing: the head when it began, the head now, the height sought. */
export interface SyncProgress {
  readonly startingBlock: bigint;
  readonly currentBlock: bigint;
  readonly highestBlock: bigint;
}

export interface BlockSyncHost {
  readonly ledger: Ledger;
  /** The transport's fetchDecided: decided blocks from..to from peers, in order; may return fewer. */
  readonly transport: { fetchDecided(from: bigint, to: bigint): Promise<Decided<EngineBlock>[]> };
  /** The driver's timer port, for the backoff between failed requests. */
  readonly timers: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  readonly log: Logger;
  /** Heights one request asks for. */
  readonly batch: number;
  /** Runs `fn` alone among the node's ledger commits, so that each extends the head it checked. */
  withLedger<T>(fn: () => Promise<T>): Promise<T>;
  /** A block the sync committed (the pool drops its transactions). */
  committed(block: Block): void;
  /** The loop ended (target reached, or stopped): the engine may begin after the head. */
  done(): void;
}

/** First wait after a request that brought nothing usable; doubled per failure up to SYNC_RETRY_MAX_MS. */
const SYNC_RETRY_MS = 100;
const SYNC_RETRY_MAX_MS = 5_000;
/** Requests in flight at once: peers read and send the next batches while this node commits one. */
const SYNC_REQUESTS_AHEAD = 2;

export class BlockSync {
  /** The height being caught up to; null when not syncing. */
  target: bigint | null = null;
  private startingBlock = 0n;
  private loop: Promise<void> | null = null;
  private stopped = false;
  /** Ends the backoff wait early (stop()). */
  private wake: (() => void) | null = null;
  /** Resolves at stop(), so that a request in flight is not waited for. */
  private readonly stopping: Promise<Decided<EngineBlock>[]>;
  private resolveStopping: () => void = () => {};

  constructor(private readonly host: BlockSyncHost) {
    this.stopping = new Promise((resolve) => {
      this.resolveStopping = () => resolve([]);
    });
  }

  /** A decided height is known: beyond the head + 1, raise the target and run the loop unless it runs. */
  want(height: bigint): void {
    const head = this.host.ledger.head.header.number;
    if (this.stopped || height <= head + 1n) return;
    if (this.target === null) {
      this.target = height;
      this.startingBlock = head;
      this.host.log.info('block sync started', { head, target: height });
    } else if (height > this.target) this.target = height;
    this.loop ??= this.run().finally(() => {
      this.loop = null;
    });
  }

  progress(): SyncProgress | false {
    if (this.target === null) return false;
    return { startingBlock: this.startingBlock, currentBlock: this.host.ledger.head.header.number, highestBlock: this.target };
  }

  /** End the loop (after the block being committed) and wait for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.resolveStopping();
    this.wake?.();
    await this.loop;
  }

  /**
   * Fetch and commit batches until the head reaches the target; the next batches are fetched while one is
   * committed. A request that brings nothing, or a block that does not verify, is retried with backoff
   * (the transport picks its peers afresh).
   */
  private async run(): Promise<void> {
    const { ledger, log } = this.host;
    let delay = SYNC_RETRY_MS;
    // Requests for consecutive ranges from the head + 1, answered while earlier ones are committed.
    const inflight: Request[] = [];
    try {
      while (!this.stopped && this.target !== null) {
        const head = ledger.head.header.number;
        if (head >= this.target) break;
        if (inflight[0]?.from !== head + 1n) inflight.length = 0;
        if (inflight.length === 0) inflight.push(this.fetch(head + 1n));
        for (let last = inflight.at(-1)!; inflight.length < SYNC_REQUESTS_AHEAD && last.to < this.target; last = inflight.at(-1)!) inflight.push(this.fetch(last.to + 1n));
        const request = inflight.shift()!;
        let got: Decided<EngineBlock>[] = [];
        try {
          got = await Promise.race([request.blocks, this.stopping]);
        } catch (err) {
          log.warn('block sync request failed', { from: request.from, to: request.to, error: err });
        }
        if (this.stopped) break;
        const committed = await this.commit(got);
        if (got.length > 0 && committed === got.length) {
          delay = SYNC_RETRY_MS;
          continue;
        }
        inflight.length = 0;
        // Peers may not have committed the target's own block yet: the engine takes it from consensus.
        if (ledger.head.header.number + 1n >= this.target) break;
        await this.sleep(delay);
        delay = Math.min(delay * 2, SYNC_RETRY_MAX_MS);
      }
    } finally {
      const target = this.target;
      this.target = null;
      if (target !== null) log.info('block sync ended', { head: ledger.head.header.number, target });
      this.host.done();
    }
  }

  private fetch(from: bigint): Request {
    const target = this.target ?? from;
    const last = from + BigInt(this.host.batch) - 1n;
    const to = target < last ? target : last;
    const blocks = this.host.transport.fetchDecided(from, to);
    // Awaited when used; a prefetch dropped after a bad block must not surface as an unhandled rejection.
    blocks.catch(() => {});
    return { from, to, blocks };
  }

  /**
   * Commit `blocks` in order, each checked as the driver checks a decided block from consensus: executed on
   * the head, and committed only with a certificate of a quorum of the committee (the ledger verifies it).
   * Returns how many are now in the ledger; stops at the first that fails.
   */
  private async commit(blocks: readonly Decided<EngineBlock>[]): Promise<number> {
    const { ledger } = this.host;
    let done = 0;
    for (const d of blocks) {
      if (this.stopped) break;
      try {
        await this.host.withLedger(async () => {
          const head = ledger.head.header.number;
          // Committed meanwhile by the engine (consensus got there first).
          if (d.block.number <= head) return;
          if (d.height !== head + 1n || d.block.number !== d.height) {
            throw new ChainError('BLOCK_INVALID', `synced block ${d.block.number} (height ${d.height}) is not the one after the head ${head}; ask another peer`);
          }
          // The ledger verifies the certificate against the committee before it writes anything.
          const block = await ledger.commit(ledger.validateBlock(d.block), d.certificate);
          this.host.committed(block);
        });
      } catch (err) {
        this.host.log.warn('synced block refused; asking again', { height: d.height, hash: d.block.hash, error: err });
        break;
      }
      done++;
    }
    return done;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.host.timers.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        this.host.timers.clearTimeout(handle);
        this.wake = null;
        resolve();
      };
    });
  }
}

interface Request {
  readonly from: bigint;
  readonly to: bigint;
  readonly blocks: Promise<Decided<EngineBlock>[]>;
}
