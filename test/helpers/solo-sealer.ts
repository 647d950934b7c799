// Block production with a committee of one, for ledger tests: one key proposes, seals and commits each
// block with a certificate of one signature, in the block and certificate format LBFT uses, without the
// consensus engine. `produceBlock()` is driven by hand.
import { headerHash } from '../../chain/block.ts';
import { hexToBytes } from '../../chain/crypto/index.ts';
import type { CommitCertificate } from '../../chain/certificate.ts';
import type { Ledger } from '../../chain/ledger.ts';
import { sealHashDigest } from '../../chain/ledger.ts';
import type { Logger } from '../../chain/logger.ts';
import { nopLogger } from '../../chain/logger.ts';
import type { Signer } from '../../chain/signing.ts';
import { consensusDigest } from '../../chain/signing.ts';
import type { TxPool } from '../../chain/txpool.ts';

import type { Timers } from '../../chain/index.ts';
import { systemTimers } from '../../chain/index.ts';

export interface SoloSealerOptions {
  readonly ledger: Ledger;
  readonly pool: TxPool;
  readonly signer: Signer;
  readonly periodMs: number;
  /** Most transactions in one block (besides the gas limit), to keep commit latency bounded. */
  readonly maxTxsPerBlock?: number;
  readonly timers?: Timers;
  readonly logger?: Logger;
  /** Called when a block cannot be produced (store or signer broken); production has stopped. */
  readonly onFatal?: (err: unknown) => void;
}

export class SoloSealer {
  private readonly timers: Timers;
  private readonly log: Logger;
  private timer: unknown = null;
  private producing = false;
  private stopped = true;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SoloSealerOptions) {
    this.timers = opts.timers ?? systemTimers;
    this.log = opts.logger ?? nopLogger;
    const { committee, proposers } = opts.ledger.spec;
    if (committee.length !== 1 || committee[0]?.address !== opts.signer.address || !proposers.includes(opts.signer.address)) {
      throw new Error(`solo sealing needs a committee of exactly the signer ${opts.signer.address}, which must also be a proposer`);
    }
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.opts.periodMs);
  }

  /** Stop producing; resolves once a block in progress is committed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    await this.idle;
  }

  /** Tell the sealer transactions arrived: a block follows as soon as the current one is done. */
  notify(): void {
    if (!this.stopped && !this.producing) this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.idle = this.produce();
    }, ms);
  }

  /** Build, seal, certify and commit one block on the head. */
  async produceBlock(): Promise<void> {
    const { ledger, pool, signer } = this.opts;
    const parent = ledger.head.header;
    const timestamp = Math.max(this.timers.now(), parent.timestamp + 1);
    const txs = pool.select(ledger.spec.gasLimit, this.opts.maxTxsPerBlock ?? 5_000);
    const candidate = ledger.buildBlock({ proposer: signer.address, timestamp, round: 0, txs });
    for (const { tx, error } of candidate.rejected) {
      pool.remove(tx.hash);
      this.log.warn('dropped transaction that cannot run', { tx: tx.hash, code: error.code, reason: error.message });
    }
    const seal = await signer.sign(sealHashDigest(ledger.spec.chainId, candidate.header), 'seal', { height: candidate.header.number, round: 0 });
    const header = { ...candidate.header, seal };
    const sealed = { ...candidate, header };
    const hash = headerHash(header);
    const commitSig = await signer.sign(consensusDigest('commit', ledger.spec.chainId, header.number, 0, hexToBytes(hash)), 'commit', {
      height: header.number,
      round: 0,
    });
    const cert: CommitCertificate = { height: header.number, round: 0, blockHash: hash, signatures: [{ signer: signer.address, signature: commitSig }] };
    await ledger.commit(sealed, cert);
    pool.onBlock(candidate.txs);
  }

  private async produce(): Promise<void> {
    this.producing = true;
    try {
      await this.produceBlock();
    } catch (err) {
      // A block that cannot be committed means the store or the signer is broken: stop loudly.
      this.log.error('block production failed', { error: err });
      this.stopped = true;
      if (this.opts.onFatal === undefined) throw err;
      this.opts.onFatal(err);
      return;
    } finally {
      this.producing = false;
    }
    if (this.stopped) return;
    this.schedule(this.opts.pool.pendingCount > 0 ? 0 : this.opts.periodMs);
  }
}
