// The lbft_* JSON-RPC methods: the committee, the proposer schedule, where consensus is (height, round),
// the impeachments committed on the chain (with their causes where this process saw them), and the peers
// this node knows.
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
  /** Known peers with their role and head height (null when this node does not know it). */
  peers(): { address: Address; role: 'validator' | 'proposer' | 'follower'; head: bigint | null; up: boolean; peerId?: string }[];
}

const MAX_SCHEDULE = 1024;
const MAX_IMPEACHMENTS = 1024;
const DEFAULT_IMPEACHMENTS = 256;

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

    // The chain keeps every impeachment block I(h); why the committee impeached (and when this node did) is
    // known only for heights this process saw, so `cause` and `at` are null for the others.
    lbft_impeachments: async ([count, before]) => {
      const n = count == null ? DEFAULT_IMPEACHMENTS : typeof count === 'number' ? count : Number.NaN;
      if (!Number.isInteger(n) || n < 1 || n > MAX_IMPEACHMENTS) throw invalidParams(`count must be an integer between 1 and ${MAX_IMPEACHMENTS}`);
      if (before != null && (typeof before !== 'string' || !/^0x(0|[1-9a-f][0-9a-f]*)$/i.test(before))) {
        throw invalidParams('before must be a block number as a hex quantity (0x...)');
      }
      const seen = new Map(info.recorder.impeachments.map((i) => [`${i.height}/${i.proposer}`, i]));
      const committed = await info.ledger.impeachments(n, before == null ? undefined : BigInt(before));
      return committed.reverse().map((c) => {
        const mine = seen.get(`${c.number}/${c.proposer}`);
        return { height: quantity(c.number), proposer: c.proposer, timestamp: c.timestamp, cause: mine?.cause ?? null, at: mine?.at ?? null };
      });
    },

    lbft_rejections: () => ({ ...info.recorder.rejections }),

    lbft_peers: () => info.peers().map((p) => ({ ...p, head: p.head === null ? null : quantity(p.head) })),
  };
}
