// Seeded deterministic simulation of LBFT 2.0 (the real reducer in chain/lbft/step.ts): every scenario over
// many seeds for committees of 4 and 7 must show no safety violation and reach the liveness target after
// its faults heal. Then the checkers are shown to fail on deliberately broken reducers, and a seed is shown
// to replay the exact same run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ancestorImpeachment, commitOnWrongParent, doublePrepare, forgetfulHeight, rebuildAfterRestart, skipExecution, timeoutsFromBeforeRestart } from './broken.ts';
import type { ViolationKind } from './checkers.ts';
import type { Reducer } from './node.ts';
import { replayCommand, runScenario } from './run.ts';
import { SCENARIOS } from './scenarios.ts';
import { toJson } from './trace.ts';

/** Seeds per (scenario, n): 18 scenarios x 2 sizes x 80 = 2,880 runs. */
const SEEDS = 80;

/**
 * Scenarios that reproduce an open engine bug run as node:test `todo` entries on a few seeds (reported, not
 * failing the suite) until the engine is fixed; none are open now.
 */
const KNOWN_ENGINE_BUGS: Record<string, string> = {};
const TODO_SEEDS = 3;

/** What must have happened at least once across the seeds of a scenario, so it is known to test something. */
const EXPECT: Record<string, readonly string[]> = {
  lossy: ['impeach:timeout'],
  'partition-heal': ['impeach:timeout'],
  'one-way-partition': ['impeach:timeout'],
  'silent-proposer': ['impeach:timeout', 'commit:I(h)'],
  'invalid-proposer': ['impeach:invalid-block'],
  'equivocating-proposer': ['impeach:equivocation', 'double-vote'],
  'crash-restart': ['restart'],
  'proposer-restart': ['crash-after:seal', 'restart'],
  twins: ['byzantine-conflicts'],
  'replay-old-rounds': ['replay'],
  'forged-justification': ['forge:below-quorum', 'forge:forged-signatures', 'forge:forged-prepares', 'forge:few-prepares', 'forge:empty', 'commit:I(h)'],
  'byzantine-mix': ['double-vote', 'restart'],
  'cpchain-fork': ['victim-round-change', 'push-impeachment'],
};

for (const scenario of SCENARIOS) {
  for (const n of [4, 7]) {
    const todo = KNOWN_ENGINE_BUGS[scenario.name];
    const seeds = todo === undefined ? SEEDS : TODO_SEEDS;
    test(`sim ${scenario.name} n=${n}: ${seeds} seeds, no safety violation, live after healing`, todo === undefined ? {} : { todo }, () => {
      const failures: string[] = [];
      const stats: Record<string, number> = {};
      for (let seed = 1; seed <= seeds; seed++) {
        const spec = { scenario: scenario.name, seed: String(seed), n };
        const out = runScenario(spec);
        for (const [k, v] of Object.entries(out.stats)) stats[k] = (stats[k] ?? 0) + v;
        for (const v of out.violations) failures.push(`${replayCommand(spec)}: ${v.kind} at ${v.time} ms on ${v.node}: ${v.detail.split('\n')[0]}`);
        if (out.liveness !== null) failures.push(`${replayCommand(spec)}: liveness: ${out.liveness}`);
      }
      assert.deepEqual(failures, []);
      for (const what of EXPECT[scenario.name] ?? []) assert.ok((stats[what] ?? 0) > 0, `${scenario.name} n=${n} never produced ${what}: ${JSON.stringify(stats)}`);
    });
  }
}

/** The kinds of violation a broken reducer causes over a few seeds of `scenario`. */
function kindsWith(scenario: string, n: number, make: () => Reducer): Set<ViolationKind> {
  const kinds = new Set<ViolationKind>();
  for (let seed = 1; seed <= 3; seed++) for (const v of runScenario({ scenario, seed: String(seed), n, makeReducer: make }).violations) kinds.add(v.kind);
  return kinds;
}

test('checkers: the ancestor f+1 impeachment forks the CPChain scenario (agreement, certificate)', () => {
  for (const n of [4, 7]) {
    const kinds = kindsWith('cpchain-fork', n, ancestorImpeachment(n));
    assert.ok(kinds.has('agreement') && kinds.has('certificate'), `n=${n}: ${[...kinds].join(', ')}`);
  }
});

test('checkers: an engine that prepares two blocks in one round is caught by the signer (conflict)', () => {
  assert.ok(kindsWith('normal', 4, doublePrepare()).has('conflict'));
});

test('checkers: an engine that votes without executing commits an invalid block (validity)', () => {
  assert.ok(kindsWith('invalid-proposer', 4, skipExecution()).has('validity'));
});

test('checkers: a proposer that builds a new block after a restart is refused its seal (conflict)', { timeout: 60_000 }, () => {
  for (const n of [4, 7]) assert.ok(kindsWith('proposer-restart', n, rebuildAfterRestart()).has('conflict'), `n=${n}`);
});

test('checkers: timeouts armed before a restart impeach the proposer at once (early-impeachment)', { timeout: 60_000 }, () => {
  assert.ok(kindsWith('crash-restart', 4, timeoutsFromBeforeRestart()).has('early-impeachment'));
});

test('checkers: a host error on which the driver would stop fails the run (stopped)', { timeout: 60_000 }, () => {
  assert.ok(kindsWith('normal', 4, commitOnWrongParent()).has('stopped'));
});

test('checkers: an engine whose height goes down is caught (monotonic)', () => {
  assert.ok(kindsWith('silent-proposer', 4, forgetfulHeight()).has('monotonic'));
});

test('determinism: the same seed gives the same trace, another seed a different one', () => {
  const trace = (seed: string) => toJson(runScenario({ scenario: 'byzantine-mix', seed, n: 4, trace: true }).trace);
  const a = trace('11');
  assert.ok(a.length > 10_000);
  assert.equal(trace('11'), a);
  assert.notEqual(trace('12'), a);
});

test('cli: prints the summary line, and for a failing run the replay command and a trace file', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'test/sim/cli.ts', ...args], { encoding: 'utf8' });
  const ok = cli('--scenario', 'normal', '--seeds', '2', '--n', '4');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^sim: 2 runs, 0 safety violations, 0 liveness failures$/m);
  const bad = cli('--scenario', 'crash-before-commit', '--seed', '1', '--n', '4');
  if (bad.status === 0) return; // the engine bug behind crash-before-commit is fixed: nothing fails any more
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /^ {2}replay: npm run sim -- --scenario crash-before-commit --seed 1 --n 4$/m);
  const path = /^ {2}trace: (.+)$/m.exec(bad.stdout)?.[1];
  assert.ok(path !== undefined && existsSync(path), bad.stdout);
  assert.match(bad.stdout, /^sim: 1 runs, 0 safety violations, 1 liveness failures$/m);
});
