#!/usr/bin/env node
// `npm run build`: compile the runtime (chain/, device/, sensors/, gateway/) to dist/ with tsc, then stamp
// dist/ with the state of the sources it was built from (gateway/bin/build-state.mjs) so the `datagate`
// command knows whether it may run it. `--if-stale` does nothing when dist/ is already fresh (npm start uses
// it). Type errors do not stop the build (tsc still emits; `npm run typecheck` and CI catch them).
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST_DIR, STAMP_FILE, distIsFresh, sourceState } from '../gateway/bin/build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
if (process.argv.includes('--if-stale') && distIsFresh(root)) process.exit(0);

// Taken before compiling: a source edited while tsc runs leaves dist/ marked stale, never wrongly fresh.
const state = sourceState(root);
const dist = join(root, DIST_DIR);
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const started = Date.now();
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
if (result.error || result.signal) {
  console.error(`build: could not run tsc: ${result.error?.message ?? result.signal}`);
  process.exit(1);
}
// tsc exits 2 when it emitted despite type errors, 1 when it emitted nothing.
if (result.status !== 0 && result.status !== 2) {
  console.error(`build: tsc failed (exit ${result.status}); dist/ not written`);
  process.exit(1);
}
// gateway/version.ts and the CLI read ../package.json relative to themselves.
copyFileSync(join(root, 'package.json'), join(dist, 'package.json'));
writeFileSync(join(dist, STAMP_FILE), JSON.stringify(state) + '\n');
console.error(`build: compiled ${state.files} sources to ${DIST_DIR}/ in ${((Date.now() - started) / 1000).toFixed(1)} s${result.status === 0 ? '' : ' (with type errors: run npm run typecheck)'}`);
