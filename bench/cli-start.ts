// How long the `datagate` command takes to answer, run as a user runs it (a new process each time): --version
// and --help (answered without loading the node), a command that loads the whole CLI from dist/, the first
// call after a source edit (dist/ refreshed by recompiling that file, refresh-dist.mjs), and the same command
// through tsx (what every call cost while dist/ was stale, before the refresh existed). Prints the median and
// the range of wall-clock seconds per case. Needs a built dist/ (npm run build). Touches the modification
// time of gateway/version.ts (not its content) to stand for an edit.
//
//   node --import tsx bench/cli-start.ts [runs]     (default 5 runs per case)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distIsFresh } from '../gateway/bin/build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'gateway', 'bin', 'datagate.mjs');
const runs = Number(process.argv[2] ?? 5);
const emptyDir = mkdtempSync(join(tmpdir(), 'datagate-cli-bench-'));

function seconds(args: string[], env: NodeJS.ProcessEnv = {}, before?: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    before?.();
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
    out.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (r.status !== 0 && r.status !== 2) throw new Error(`datagate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return out;
}

function report(name: string, s: number[]): void {
  const sorted = [...s].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(`${name.padEnd(50)} median ${median.toFixed(2)} s   (${sorted[0]!.toFixed(2)}-${sorted[sorted.length - 1]!.toFixed(2)} s, ${s.length} runs)`);
}

if (!distIsFresh(root)) {
  console.error('dist/ is stale: run npm run build first');
  process.exit(1);
}
const status = ['status', '--data-dir', emptyDir];
const edit = (): void => {
  const now = new Date();
  utimesSync(join(root, 'gateway', 'version.ts'), now, now);
};
try {
  seconds(['--help']); // renders the help cache if it is missing
  report('datagate --version', seconds(['--version']));
  report('datagate --help', seconds(['--help']));
  report('datagate status --help', seconds(['status', '--help']));
  report('datagate status (whole CLI from dist/)', seconds(status));
  report('datagate status, first call after an edit', seconds(status, {}, edit));
  report('datagate status through tsx (stale dist/ before)', seconds(status, { DATAGATE_FROM_SOURCE: '1' }));
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores`);
} finally {
  rmSync(emptyDir, { recursive: true, force: true });
}
