// The consensus part of /metrics (docs/architecture.md "Status, metrics and the admin API"): the
// `datagate_lbft_*` families, read from the LBFT driver's position and its LbftRecorder per request. Counters,
// sums and counts run since the node started; the recorder sees what one node (the one the API speaks for)
// saw. Pure, no I/O.
import type { LbftPhase, LbftRecorder } from '../../chain/index.ts';
import { IMPEACH_CAUSES, LBFT_PHASES } from '../../chain/index.ts';
import type { MetricFamily, MetricSample } from './prometheus.ts';

/** Where the consensus families come from; the composition root supplies it. */
export interface ConsensusSource {
  /** Consensus position of the node the API speaks for. */
  status(): { height: bigint; round: number; decided: boolean };
  readonly recorder: Pick<LbftRecorder, 'roundsHistogram' | 'phases' | 'impeachmentsByCause' | 'rejections'>;
  peers(): readonly { up: boolean }[];
  /** The height this node is fetching decided blocks up to, or null when it is not behind. */
  syncTarget(): bigint | null;
}

/** Upper bounds (le) of the rounds-per-height buckets: a healthy committee decides nearly all in round 0. */
export const ROUND_BUCKETS: readonly number[] = [0, 1, 2, 3, 5, 8];

/** The label value of each phase in datagate_lbft_phase_seconds{phase}. */
export const PHASE_LABELS: Readonly<Record<LbftPhase, string>> = {
  proposalToPrepare: 'proposal_to_prepare',
  prepareToCommit: 'prepare_to_commit',
  commitToDecide: 'commit_to_decide',
  total: 'total',
};

/** Histogram samples of `perRound` (index = round in which a height was decided, value = heights). */
function roundSamples(perRound: readonly (number | undefined)[]): MetricSample[] {
  let count = 0;
  let sum = 0;
  perRound.forEach((n = 0, round) => {
    count += n;
    sum += n * round;
  });
  const upTo = (le: number) => perRound.reduce<number>((acc, n = 0, round) => (round <= le ? acc + n : acc), 0);
  return [
    ...ROUND_BUCKETS.map((le) => ({ suffix: '_bucket' as const, labels: { le: String(le) }, value: upTo(le) })),
    { suffix: '_bucket', labels: { le: '+Inf' }, value: count },
    { suffix: '_sum', value: sum },
    { suffix: '_count', value: count },
  ];
}

/** The `datagate_lbft_*` families of `src` now. */
export function consensusMetrics(src: ConsensusSource): MetricFamily[] {
  const status = src.status();
  const r = src.recorder;
  const peers = src.peers();
  const up = peers.filter((p) => p.up).length;
  const target = src.syncTarget();
  return [
    { name: 'datagate_lbft_height', type: 'gauge', help: 'Height the consensus engine is deciding (the head + 1 while it works on it).', samples: [{ value: Number(status.height) }] },
    { name: 'datagate_lbft_round', type: 'gauge', help: 'Round of the current height (0 = first; a higher one means proposers were impeached).', samples: [{ value: status.round }] },
    { name: 'datagate_lbft_rounds_per_height', type: 'histogram', help: 'Round in which each height was decided (0 = first round), for heights this node decided.', samples: roundSamples(r.roundsHistogram) },
    {
      name: 'datagate_lbft_phase_seconds',
      type: 'summary',
      help: 'Time of each decision phase as this node saw it: proposal to prepare, prepare to commit, commit to decide, and proposal to decide (total).',
      samples: LBFT_PHASES.flatMap((phase) => [
        { suffix: '_sum' as const, labels: { phase: PHASE_LABELS[phase] }, value: r.phases[phase].sumMs / 1000 },
        { suffix: '_count' as const, labels: { phase: PHASE_LABELS[phase] }, value: r.phases[phase].count },
      ]),
    },
    { name: 'datagate_lbft_impeachments_total', type: 'counter', help: 'Impeachments of a proposer this node voted for, by cause.', samples: IMPEACH_CAUSES.map((cause) => ({ labels: { cause }, value: r.impeachmentsByCause[cause] })) },
    {
      name: 'datagate_lbft_rejected_messages_total',
      type: 'counter',
      help: 'Consensus inputs this node refused (and signatures its double-sign guard refused, as sign-conflict:<purpose>), by reason.',
      samples: Object.entries(r.rejections).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: 'datagate_lbft_peers',
      type: 'gauge',
      help: 'Known consensus peers by state: up (reachable) or down.',
      samples: [
        { labels: { state: 'up' }, value: up },
        { labels: { state: 'down' }, value: peers.length - up },
      ],
    },
    { name: 'datagate_lbft_sync_target_height', type: 'gauge', help: 'Height this node is syncing decided blocks up to; 0 when it is not behind.', samples: [{ value: target === null ? 0 : Number(target) }] },
  ];
}
