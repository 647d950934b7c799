// Safety checkers of a simulated run, fed by the hosts as things happen (so they hold after every event):
// agreement (no two honest nodes commit different blocks at a height, nor does any node holding a valid
// certificate), validity (a committed block is
// valid or is I(h) of its parent, never a block only a forger proposed), certificates (Q distinct commit
// signatures), no honest identity signs (or asks its guard to sign) two different things for one (purpose,
// height, round), block seals included, committed height and engine height never go down, no honest node
// impeaches a proposer by a timeout that counted the node's own downtime, and no node's driver stops.
import type { CommitCertificate } from '../../chain/certificate.ts';
import type { SigningPayload } from '../../chain/lbft/types.ts';
import type { Address, Hash } from '../../chain/types.ts';
import { blockProblem, certificateProblem, hex, impeachmentOf, type SimBlock, type Timing } from './model.ts';

export type ViolationKind = 'agreement' | 'validity' | 'certificate' | 'conflict' | 'monotonic' | 'exception' | 'stopped' | 'early-impeachment';

/** What the double-sign guard checks: a consensus signing payload, or a proposer's block seal. */
export type GuardPayload = Omit<SigningPayload, 'purpose'> & { readonly purpose: SigningPayload['purpose'] | 'seal' };

export interface Violation {
  readonly kind: ViolationKind;
  /** Virtual time (ms). */
  readonly time: number;
  /** Label of the node where it was seen. */
  readonly node: string;
  readonly detail: string;
}

export interface CheckerWorld {
  readonly validators: readonly Address[];
  readonly proposers: readonly Address[];
  readonly timing: Timing;
  /** False for an identity a scenario made Byzantine (twins, forgers, faulty proposers). */
  isHonest(who: Address): boolean;
}

export class Checkers {
  readonly violations: Violation[] = [];
  /** Hashes of blocks only a Byzantine forger proposed: an honest node must never commit one. */
  readonly forged = new Set<Hash>();
  /** Hashes of blocks some proposer's host built (a forged block that happens to equal one is not forged). */
  readonly built = new Set<Hash>();
  /** Conflicting signatures by Byzantine identities (expected: twins, equivocators). */
  byzantineConflicts = 0;
  private readonly committed = new Map<bigint, { hash: Hash; node: string }>();
  private readonly signed = new Map<Address, Map<string, string>>();

  constructor(private readonly world: CheckerWorld) {}

  private add(kind: ViolationKind, time: number, node: string, detail: string): void {
    this.violations.push({ kind, time, node, detail });
  }

  /** `who` signed `payload` (any node holding that identity). */
  onSign(time: number, node: string, who: Address, payload: GuardPayload): void {
    const key = `${payload.purpose}|${payload.height}|${payload.round}`;
    const hash = hex(payload.hash);
    let mine = this.signed.get(who);
    if (mine === undefined) this.signed.set(who, (mine = new Map()));
    const prior = mine.get(key);
    if (prior === undefined) mine.set(key, hash);
    else if (prior !== hash) {
      if (this.world.isHonest(who)) this.add('conflict', time, node, `${who} signed ${key} for ${prior} and ${hash}`);
      else this.byzantineConflicts++;
    }
  }

  /** An honest node's engine asked its signer for a conflicting signature (the signer refused). */
  onRefusedSign(time: number, node: string, who: Address, payload: GuardPayload, prior: string): void {
    this.add('conflict', time, node, `engine of ${who} asked to sign ${payload.purpose}|${payload.height}|${payload.round} for ${hex(payload.hash)} after ${prior}`);
  }

  /** A node's host hit an error on which the real driver stops: the node is gone for good. */
  onStopped(time: number, node: string, err: unknown): void {
    this.add('stopped', time, node, `the driver would stop: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** An honest node impeached by its own round timeout sooner than timeoutMs after it restarted. */
  onEarlyImpeachment(time: number, node: string, height: bigint, sinceRestartMs: number): void {
    this.add('early-impeachment', time, node, `impeached the proposer of height ${height} ${sinceRestartMs} ms after restarting: the downtime was charged to the proposer`);
  }

  /**
   * A node committed `block` on top of `parent` with `cert`. Every check applies to an honest node; for a
   * Byzantine one (twins run correct code) only agreement, and only when its certificate is valid: two valid
   * certificates for different blocks at one height break safety whoever holds them.
   */
  onCommit(time: number, node: string, honest: boolean, block: SimBlock, parent: SimBlock, cert: CommitCertificate): void {
    const { validators, proposers, timing } = this.world;
    const certProblem = certificateProblem(cert, block, validators);
    if (!honest) {
      if (certProblem === null) this.agree(time, node, block);
      return;
    }
    if (block.number !== parent.number + 1n) {
      this.add('monotonic', time, node, `committed height ${block.number} on a head at ${parent.number}`);
    }
    if (certProblem !== null) this.add('certificate', time, node, `height ${block.number}: ${certProblem}`);
    this.agree(time, node, block);
    if (this.forged.has(block.hash) && !this.built.has(block.hash)) this.add('validity', time, node, `height ${block.number}: committed a forger's block ${block.hash}`);
    const problem = blockProblem(block, parent, proposers, timing);
    const isI = block.hash === impeachmentOf(parent, proposers, timing).hash;
    if (problem !== null && !isI) this.add('validity', time, node, `height ${block.number}: committed an invalid block (${problem})`);
  }

  private agree(time: number, node: string, block: SimBlock): void {
    const prior = this.committed.get(block.number);
    if (prior === undefined) this.committed.set(block.number, { hash: block.hash, node });
    else if (prior.hash !== block.hash) {
      this.add('agreement', time, node, `height ${block.number}: committed ${block.hash}, ${prior.node} committed ${prior.hash}`);
    }
  }

  /** The engine's height went from `before` to `after`. */
  onEngineHeight(time: number, node: string, before: bigint, after: bigint): void {
    if (after < before) this.add('monotonic', time, node, `engine height went down from ${before} to ${after}`);
  }

  /** The engine threw: a broken invariant. */
  onException(time: number, node: string, err: unknown): void {
    this.add('exception', time, node, err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err));
  }
}
