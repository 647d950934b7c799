// The lbft_* JSON-RPC methods: the committee, the proposer schedule, where consensus is (height, round),
// recent impeachments with their causes, and the peers this node knows.
import { bytesToHex } from '../crypto/index.ts';
import type { Ledger } from '../ledger.ts';
import type { LbftRecorder } from '../lbft/metrics.ts';
import type { Address } from '../types.ts';
import { invalidParams } from './errors.ts';
import { quantity } from './format.ts';
import type { RpcHandler } from './server.ts';

/** What the methods read; the composition root supplies it. */
export interface LbftInfo {
  readonly ledger: Ledger;
  /** Consensus position of this node (or of the node the RPC speaks for). */
  status(): { height: bigint; round: number; decided: boolean };
  readonly recorder: LbftRecorder;
  /** Known peers with their role and head height. */
  peers(): { address: Address; role: 'validator' | 'proposer' | 'follower'; head: bigint; up: boolean }[];
}

const MAX_SCHEDULE = 1024;

export function createLbftApi(info: LbftInfo): Record<string, RpcHandler> {
  const spec = info.ledger.spec;
  return {
    lbft_committee: () => ({
      validators: spec.committee.map((m) => ({ address: m.address, keyType: m.keyType, publicKey: bytesToHex(m.publicKey) })),
      proposers: [...spec.proposers],
      quorum: quantity(Math.ceil((spec.committee.length + Math.floor((spec.committee.length - 1) / 3) + 1) / 2)),
      periodMs: spec.periodMs,
      timeoutMs: spec.timeoutMs,
    }),

    lbft_proposerSchedule: ([count]) => {
      const n = count == null ? 10 : typeof count === 'number' ? count : Number.NaN;
      if (!Number.isInteger(n) || n < 1 || n > MAX_SCHEDULE) throw invalidParams(`count must be an integer between 1 and ${MAX_SCHEDULE}`);
      const next = info.ledger.head.header.number + 1n;
      return Array.from({ length: n }, (_, i) => ({ height: quantity(next + BigInt(i)), proposer: info.ledger.proposerOf(next + BigInt(i)) }));
    },

    lbft_status: () => {
      const s = info.status();
      const last = info.recorder.decisions.at(-1);
      return {
        height: quantity(s.height),
        round: s.round,
        decided: s.decided,
        head: quantity(info.ledger.head.header.number),
        // Heights decided in round 0, 1, 2, ... among the recent ones this node recorded.
        roundsHistogram: Array.from(info.recorder.roundsHistogram, (c) => c ?? 0),
        lastDecision:
          last === undefined
            ? null
            : { height: quantity(last.height), round: last.round, proposalToPrepareMs: last.proposalToPrepareMs, prepareToCommitMs: last.prepareToCommitMs, commitToDecideMs: last.commitToDecideMs, totalMs: last.totalMs },
      };
    },

    lbft_impeachments: () =>
      info.recorder.impeachments.map((i) => ({ height: quantity(i.height), proposer: i.proposer, cause: i.cause, at: i.at })),

    lbft_rejections: () => ({ ...info.recorder.rejections }),

    lbft_peers: () => info.peers().map((p) => ({ ...p, head: quantity(p.head) })),
  };
}
