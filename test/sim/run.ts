// Run one (scenario, seed, n) and say how it went; shared by the CLI and the tests. Everything random in a
// run derives from the string "<scenario>/<n>/<seed>", so the same triple always replays the same run.
import type { Reducer } from './node.ts';
import { Rng } from './rng.ts';
import { scenarioByName } from './scenarios.ts';
import { Sim, type RunResult } from './sim.ts';

export interface RunSpec {
  readonly scenario: string;
  readonly seed: string;
  readonly n: number;
  readonly trace?: boolean;
  /** Replace the reducer of some nodes (checker tests). */
  readonly makeReducer?: (label: string) => Reducer;
}

export interface RunOutcome extends RunResult {
  readonly spec: RunSpec;
  readonly healAt: number;
  readonly k: number;
}

export function runScenario(spec: RunSpec): RunOutcome {
  const scenario = scenarioByName(spec.scenario);
  if (scenario === undefined) throw new RangeError(`unknown scenario ${spec.scenario}`);
  const id = `${spec.scenario}/${spec.n}/${spec.seed}`;
  const rng = new Rng(`${id}/scenario`);
  const sim = new Sim({
    n: spec.n,
    seed: id,
    net: scenario.net(rng),
    ...(spec.trace === undefined ? {} : { trace: spec.trace }),
    ...(spec.makeReducer === undefined ? {} : { makeReducer: spec.makeReducer }),
  });
  const { healAt, k } = scenario.install(sim, rng);
  return { ...sim.run(healAt, k), spec, healAt, k };
}

/** The command that replays `spec`. */
export const replayCommand = (spec: RunSpec): string => `npm run sim -- --scenario ${spec.scenario} --seed ${spec.seed} --n ${spec.n}`;
