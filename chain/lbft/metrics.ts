// What the LBFT driver reports: time per phase, rounds per height, impeachments with their cause, and
// refused inputs. The driver owns this interface; the default does nothing, and `LbftRecorder` keeps a
// bounded in-memory record for the lbft_* RPC methods.
import type { Address } from '../types.ts';
import type { ImpeachCause } from './types.ts';

export interface LbftMetrics {
  /** A height was decided: phase durations in ms since its proposal was first seen. */
  decided(info: DecisionRecord): void;
  impeachment(info: { height: bigint; proposer: Address; cause: ImpeachCause; at: number }): void;
  rejected(reason: string): void;
}

export const nopLbftMetrics: LbftMetrics = { decided() {}, impeachment() {}, rejected() {} };

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

  constructor(private readonly limit = 256) {}

  decided(info: DecisionRecord): void {
    this.decisions.push(info);
    if (this.decisions.length > this.limit) this.decisions.shift();
    this.roundsHistogram[info.round] = (this.roundsHistogram[info.round] ?? 0) + 1;
  }

  impeachment(info: ImpeachmentRecord): void {
    this.impeachments.push(info);
    if (this.impeachments.length > this.limit) this.impeachments.shift();
  }

  rejected(reason: string): void {
    this.rejections[reason] = (this.rejections[reason] ?? 0) + 1;
  }
}
