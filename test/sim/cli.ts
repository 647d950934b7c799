// `npm run sim -- --seeds N [--scenario NAME|all] [--seed S] [--n 4|7] [--stats]`: runs scenarios x seeds x
// committee sizes of the deterministic LBFT simulation. For each failing run it prints the seed, the
// scenario, the command that replays it and the path of a JSON trace; it ends with one summary line and
// exits 1 on any safety violation or liveness failure.
import { parseArgs } from 'node:util';
import { replayCommand, runScenario, type RunSpec } from './run.ts';
import { SCENARIOS } from './scenarios.ts';
import { writeTrace } from './trace.ts';

const USAGE = 'usage: npm run sim -- [--seeds N | --seed S] [--scenario NAME|all] [--n 4|7] [--stats]';

function fail(message: string): never {
  process.stderr.write(`sim: ${message}\n${USAGE}\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}

function main(): void {
  let args;
  try {
    args = parseArgs({
      options: {
        seeds: { type: 'string' },
        seed: { type: 'string' },
        scenario: { type: 'string', default: 'all' },
        n: { type: 'string' },
        stats: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const scenarios = args.scenario === 'all' ? SCENARIOS.map((s) => s.name) : [args.scenario];
  for (const name of scenarios) if (!SCENARIOS.some((s) => s.name === name)) fail(`unknown scenario ${JSON.stringify(name)}`);
  const sizes = args.n === undefined ? [4, 7] : [Number(args.n)];
  if (sizes.some((n) => !Number.isInteger(n) || n < 4 || n > 64)) fail(`--n must be an integer from 4 to 64, got ${JSON.stringify(args.n)}`);
  if (args.seed !== undefined && args.seeds !== undefined) fail('give --seed or --seeds, not both');
  const count = args.seeds === undefined ? 10 : Number(args.seeds);
  if (!Number.isInteger(count) || count < 1) fail(`--seeds must be a positive integer, got ${JSON.stringify(args.seeds)}`);
  const seeds = args.seed !== undefined ? [args.seed] : Array.from({ length: count }, (_, i) => String(i + 1));

  let runs = 0;
  let safety = 0;
  let liveness = 0;
  const started = performance.now();
  for (const scenario of scenarios) {
    for (const n of sizes) {
      const stats: Record<string, number> = {};
      for (const seed of seeds) {
        const spec: RunSpec = { scenario, seed, n };
        const out = runScenario(spec);
        runs++;
        for (const [k, v] of Object.entries(out.stats)) stats[k] = (stats[k] ?? 0) + v;
        if (out.violations.length === 0 && out.liveness === null) continue;
        if (out.violations.length > 0) safety++;
        else liveness++;
        const traced = runScenario({ ...spec, trace: true });
        const summary = { spec, replay: replayCommand(spec), healAt: traced.healAt, k: traced.k, violations: traced.violations, liveness: traced.liveness, nodes: traced.nodes, heights: traced.heights, stats: traced.stats };
        const path = writeTrace(`sim-${scenario}-n${n}-seed${seed}`, summary, traced.trace ?? []);
        process.stdout.write(`FAIL scenario=${scenario} seed=${seed} n=${n}\n`);
        for (const v of out.violations) process.stdout.write(`  safety ${v.kind} at ${v.time} ms on ${v.node}: ${v.detail.split('\n')[0]}\n`);
        if (out.liveness !== null) process.stdout.write(`  liveness: ${out.liveness}\n`);
        process.stdout.write(`  replay: ${replayCommand(spec)}\n  trace: ${path}\n`);
      }
      if (args.stats) process.stdout.write(`${scenario} n=${n}: ${JSON.stringify(stats)}\n`);
    }
  }
  process.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
  process.stdout.write(`sim: ${runs} runs, ${safety} safety violations, ${liveness} liveness failures\n`);
  if (safety > 0 || liveness > 0) process.exitCode = 1;
}

main();
