// Whether dist/ (the compiled JavaScript that `npm run build` writes) matches the TypeScript sources. The
// `datagate` command runs dist/ only when it does, and the sources through tsx otherwise, so an edit, a
// checkout or a pull never runs stale code. Compiled code matters on a gateway: tsx's transformer costs
// ~50 MiB of RSS and slows every start.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Directories compiled into dist/ (the runtime; tests and benchmarks run through tsx). */
export const SOURCE_DIRS = ['chain', 'device', 'sensors', 'gateway'];
export const DIST_DIR = 'dist';
export const STAMP_FILE = '.build-stamp.json';

/**
 * What the build depends on: number of TypeScript sources, the newest modification time among them,
 * package.json and the build config. Any edit, added or deleted file, or checkout changes it.
 */
export function sourceState(root) {
  let files = 0;
  let newest = 0;
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        files++;
        newest = Math.max(newest, statSync(path).mtimeMs);
      }
    }
  };
  for (const dir of SOURCE_DIRS) visit(join(root, dir));
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) newest = Math.max(newest, statSync(join(root, file)).mtimeMs);
  return { files, newest };
}

/** True when dist/ was built from exactly the sources there are now. */
export function distIsFresh(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, DIST_DIR, STAMP_FILE), 'utf8'));
  } catch {
    return false;
  }
  const now = sourceState(root);
  return stamp.files === now.files && stamp.newest === now.newest;
}
