// The datagate_lbft_* families (gateway/api/consensus-metrics.ts) from a real LbftRecorder fed by hand: well-formed
// Prometheus text, and values that follow what the recorder saw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LbftRecorder } from '../../chain/index.ts';
import type { ConsensusSource } from '../../gateway/api/consensus-metrics.ts';
import { ROUND_BUCKETS, consensusMetrics } from '../../gateway/api/consensus-metrics.ts';
import { formatMetrics } from '../../gateway/api/prometheus.ts';
import type { ParsedMetrics } from '../helpers/prometheus-text.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const PROPOSER = '0x' + '11'.repeat(20);
const TIMEOUT = { timeout: 10_000 };

function source() {
  const state = { height: 1n, round: 0, peers: [{ up: true }, { up: true }, { up: false }], target: null as bigint | null };
  const recorder = new LbftRecorder();
  const src: ConsensusSource = {
    status: () => ({ height: state.height, round: state.round, decided: false }),
    recorder,
    peers: () => state.peers,
    syncTarget: () => state.target,
  };
  return { state, recorder, src };
}

const scrape = (src: ConsensusSource): ParsedMetrics => parsePrometheusText(formatMetrics(consensusMetrics(src)));

test('a fresh node: every family announced, counters at zero, not syncing', TIMEOUT, () => {
  const { src } = source();
  const m = scrape(src);
  assert.deepEqual(
    [...m.types.entries()],
    [
      ['datagate_lbft_height', 'gauge'],
      ['datagate_lbft_round', 'gauge'],
      ['datagate_lbft_rounds_per_height', 'histogram'],
      ['datagate_lbft_phase_seconds', 'summary'],
      ['datagate_lbft_impeachments_total', 'counter'],
      ['datagate_lbft_rejected_messages_total', 'counter'],
      ['datagate_lbft_peers', 'gauge'],
      ['datagate_lbft_sync_target_height', 'gauge'],
    ],
  );
  for (const name of m.types.keys()) assert.ok((m.helps.get(name) ?? '').length > 0, `HELP of ${name}`);
  assert.equal(sampleValue(m, 'datagate_lbft_height'), 1);
  assert.equal(sampleValue(m, 'datagate_lbft_rounds_per_height_count'), 0);
  assert.equal(sampleValue(m, 'datagate_lbft_rounds_per_height_bucket', { le: '+Inf' }), 0);
  assert.equal(sampleValue(m, 'datagate_lbft_phase_seconds_count', { phase: 'total' }), 0);
  for (const cause of ['timeout', 'invalid-block', 'equivocation']) assert.equal(sampleValue(m, 'datagate_lbft_impeachments_total', { cause }), 0);
  assert.equal(m.samples.filter((s) => s.name === 'datagate_lbft_rejected_messages_total').length, 0);
  assert.equal(sampleValue(m, 'datagate_lbft_peers', { state: 'up' }), 2);
  assert.equal(sampleValue(m, 'datagate_lbft_peers', { state: 'down' }), 1);
  assert.equal(sampleValue(m, 'datagate_lbft_sync_target_height'), 0);
});

test('values follow the recorder: rounds, phases, impeachments, rejections, sync', TIMEOUT, () => {
  const { state, recorder, src } = source();
  recorder.decided({ height: 1n, round: 0, proposalToPrepareMs: 100, prepareToCommitMs: 50, commitToDecideMs: 10, totalMs: 160 });
  recorder.decided({ height: 2n, round: 0, proposalToPrepareMs: 300, prepareToCommitMs: null, commitToDecideMs: null, totalMs: null });
  recorder.decided({ height: 3n, round: 2, proposalToPrepareMs: null, prepareToCommitMs: 250, commitToDecideMs: 30, totalMs: 2_000 });
  recorder.impeachment({ height: 3n, proposer: PROPOSER, cause: 'timeout', at: 1 });
  recorder.impeachment({ height: 3n, proposer: PROPOSER, cause: 'timeout', at: 2 });
  recorder.impeachment({ height: 9n, proposer: PROPOSER, cause: 'equivocation', at: 3 });
  recorder.rejected('stale-height');
  recorder.rejected('stale-height');
  recorder.rejected('bad "signature"\n');
  recorder.syncing(12n);
  state.height = 4n;
  state.round = 1;
  state.target = recorder.syncTarget;
  const m = scrape(src);

  assert.equal(sampleValue(m, 'datagate_lbft_height'), 4);
  assert.equal(sampleValue(m, 'datagate_lbft_round'), 1);
  // Two heights in round 0, one in round 2; buckets are cumulative.
  const bucket = (le: string) => sampleValue(m, 'datagate_lbft_rounds_per_height_bucket', { le });
  assert.deepEqual([...ROUND_BUCKETS.map(String), '+Inf'].map(bucket), [2, 2, 3, 3, 3, 3, 3]);
  assert.equal(sampleValue(m, 'datagate_lbft_rounds_per_height_sum'), 2);
  assert.equal(sampleValue(m, 'datagate_lbft_rounds_per_height_count'), 3);

  const phase = (p: string) => [sampleValue(m, 'datagate_lbft_phase_seconds_sum', { phase: p }), sampleValue(m, 'datagate_lbft_phase_seconds_count', { phase: p })];
  assert.deepEqual(phase('proposal_to_prepare'), [0.4, 2]);
  assert.deepEqual(phase('prepare_to_commit'), [0.3, 2]);
  assert.deepEqual(phase('commit_to_decide'), [0.04, 2]);
  assert.deepEqual(phase('total'), [2.16, 2]);

  assert.equal(sampleValue(m, 'datagate_lbft_impeachments_total', { cause: 'timeout' }), 2);
  assert.equal(sampleValue(m, 'datagate_lbft_impeachments_total', { cause: 'equivocation' }), 1);
  assert.equal(sampleValue(m, 'datagate_lbft_impeachments_total', { cause: 'invalid-block' }), 0);
  assert.equal(sampleValue(m, 'datagate_lbft_rejected_messages_total', { reason: 'stale-height' }), 2);
  assert.equal(sampleValue(m, 'datagate_lbft_rejected_messages_total', { reason: 'bad "signature"\n' }), 1);
  assert.equal(sampleValue(m, 'datagate_lbft_sync_target_height'), 12);

  // Deciding the target height ends the sync.
  recorder.decided({ height: 12n, round: 0, proposalToPrepareMs: null, prepareToCommitMs: null, commitToDecideMs: null, totalMs: null });
  assert.equal(recorder.syncTarget, null);
  // The bounded lists drop old entries; the counters do not.
  const small = new LbftRecorder(1);
  small.impeachment({ height: 1n, proposer: PROPOSER, cause: 'timeout', at: 1 });
  small.impeachment({ height: 2n, proposer: PROPOSER, cause: 'timeout', at: 2 });
  assert.equal(small.impeachments.length, 1);
  assert.equal(small.impeachmentsByCause.timeout, 2);
});

test('histogram and summary samples need their suffix; other types refuse one', TIMEOUT, () => {
  assert.throws(() => formatMetrics([{ name: 'x', type: 'summary', help: 'h', samples: [{ value: 1 }] }]), /suffix/);
  assert.throws(() => formatMetrics([{ name: 'x', type: 'summary', help: 'h', samples: [{ suffix: '_bucket', value: 1 }] }]), /suffix/);
  assert.throws(() => formatMetrics([{ name: 'x', type: 'gauge', help: 'h', samples: [{ suffix: '_sum', value: 1 }] }]), /suffix/);
  assert.equal(formatMetrics([{ name: 'x', type: 'histogram', help: 'h', samples: [{ suffix: '_bucket', labels: { le: '+Inf' }, value: 1 }] }]), '# HELP x h\n# TYPE x histogram\nx_bucket{le="+Inf"} 1\n');
});
