// What the LBFT driver reports: time per phase, rounds per height, impeachments with their cause, refused
// inputs and block sync. The driver owns this interface; the default does nothing, and `LbftRecorder` keeps a
// bounded in-memory record for the lbft_* RPC methods plus cumulative counts and sums since start for /metrics
// (docs/architecture.md "Status, metrics and the admin API").
import type { Address } from '../types.ts';
import type { ImpeachCause } from './types.ts';

export interface LbftMetrics {
  /** A height was decided: phase durations in ms since its proposal was first seen. */
  decided(info: DecisionRecord): void;
  impeachment(info: { height: bigint; proposer: Address; cause: ImpeachCause; at: number }): void;
  rejected(reason: string): void;
  /** A VALIDATE of `target` arrived ahead of this node: it fetches the decided heights before it. */
  syncing(target: bigint): void;
}

export const nopLbftMetrics: LbftMetrics = { decided() {}, impeachment() {}, rejected() {}, syncing() {} };

export const IMPEACH_CAUSES: readonly ImpeachCause[] = ['timeout', 'invalid-block', 'equivocation'];

/** The measured spans of a decision, as DecisionRecord names them (without `Ms`). */
export const LBFT_PHASES = ['proposalToPrepare', 'prepareToCommit', 'commitToDecide', 'total'] as const;
export type LbftPhase = (typeof LBFT_PHASES)[number];

/** Sum (ms) and number of the decisions in which this node saw a phase, since start. */
export interface PhaseTotals {
  sumMs: number;
  count: number;
}

/** One decided height: its round and phase durations (ms; null where this node did not see the phase). */
export interface DecisionRecord {
  readonly height: bigint;
  readonly round: number;
  readonly proposalToPrepareMs: number | null;
  readonly prepareToCommitMs: number | null;
  readonly commitToDecideMs: number | null;
  readonly totalMs: number | null;
}

export interface ImpeachmentRecord {
  readonly height: bigint;
  readonly proposer: Address;
  readonly cause: ImpeachCause;
  readonly at: number;
}

/** Keeps the last `limit` impeachments and decisions, and counts of rounds and rejections. */
export class LbftRecorder implements LbftMetrics {
  readonly impeachments: ImpeachmentRecord[] = [];
  readonly decisions: DecisionRecord[] = [];
  readonly rejections: Record<string, number> = {};
  /** heights decided per round number (index = round). */
  readonly roundsHistogram: number[] = [];

  /** Impeachments this node voted for since start, by cause (the list above keeps only the last ones). */
  readonly impeachmentsByCause: Record<ImpeachCause, number> = { timeout: 0, 'invalid-block': 0, equivocation: 0 };
  readonly phases: Record<LbftPhase, PhaseTotals> = {
    proposalToPrepare: { sumMs: 0, count: 0 },
    prepareToCommit: { sumMs: 0, count: 0 },
    commitToDecide: { sumMs: 0, count: 0 },
    total: { sumMs: 0, count: 0 },
  };
  /** The height of the last VALIDATE that sent this node syncing; null once it decided that height. */
  syncTarget: bigint | null = null;

  constructor(private readonly limit = 256) {}

  decided(info: DecisionRecord): void {
    this.decisions.push(info);
    if (this.decisions.length > this.limit) this.decisions.shift();
    this.roundsHistogram[info.round] = (this.roundsHistogram[info.round] ?? 0) + 1;
    for (const phase of LBFT_PHASES) {
      const ms = info[`${phase}Ms`];
      if (ms === null) continue;
      this.phases[phase].sumMs += ms;
      this.phases[phase].count++;
    }
    if (this.syncTarget !== null && info.height >= this.syncTarget) this.syncTarget = null;
  }

  impeachment(info: ImpeachmentRecord): void {
    this.impeachments.push(info);
    if (this.impeachments.length > this.limit) this.impeachments.shift();
    this.impeachmentsByCause[info.cause] = (this.impeachmentsByCause[info.cause] ?? 0) + 1;
  }

  syncing(target: bigint): void {
    if (this.syncTarget === null || target > this.syncTarget) this.syncTarget = target;
  }

  rejected(reason: string): void {
    this.rejections[reason] = (this.rejections[reason] ?? 0) + 1;
  }
}
