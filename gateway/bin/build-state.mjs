// Whether dist/ (the compiled JavaScript that `npm run build` writes) matches the TypeScript sources. The
// `datagate` command runs dist/ only when it does, and the sources through tsx otherwise, so an edit, a
// checkout or a pull never runs stale code. Compiled code matters on a gateway: tsx's transformer costs
// ~50 MiB of RSS and slows every start.
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Directories compiled into dist/ (the runtime; tests and benchmarks run through tsx). */
export const SOURCE_DIRS = ['chain', 'device', 'sensors', 'gateway'];
export const DIST_DIR = 'dist';
export const STAMP_FILE = '.build-stamp.json';
/** Files besides the sources that the build depends on. */
export const BUILD_CONFIGS = ['package.json', 'tsconfig.json', 'tsconfig.build.json'];

/**
 * What the build depends on: number of TypeScript sources, the newest modification time among them,
 * package.json and the build config. Any edit, added or deleted file, or checkout changes it. `mtimes` has
 * each file's modification time by path relative to `root` (refresh-dist.mjs compiles only what changed).
 */
export function sourceState(root) {
  let files = 0;
  let newest = 0;
  const mtimes = {};
  const visit = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        files++;
        mtimes[path] = statSync(join(root, path)).mtimeMs;
        newest = Math.max(newest, mtimes[path]);
      }
    }
  };
  for (const dir of SOURCE_DIRS) visit(dir);
  for (const file of BUILD_CONFIGS) {
    mtimes[file] = statSync(join(root, file)).mtimeMs;
    newest = Math.max(newest, mtimes[file]);
  }
  return { files, newest, mtimes };
}

/** The state dist/ was built from (its stamp), or null when there is none or it is damaged. */
export function builtState(root) {
  try {
    return JSON.parse(readFileSync(join(root, DIST_DIR, STAMP_FILE), 'utf8'));
  } catch {
    return null;
  }
}

/** True when dist/ was built from exactly the sources there are now. */
export function distIsFresh(root) {
  const stamp = builtState(root);
  if (stamp === null) return false;
  const now = sourceState(root);
  if (stamp.files !== now.files || stamp.newest !== now.newest) return false;
  // Stamps of older builds have no per-file times; with them, a file set back to an older time shows too.
  return typeof stamp.mtimes !== 'object' || Object.entries(now.mtimes).every(([path, mtime]) => stamp.mtimes[path] === mtime);
}

/** Writes `text` to `path` through a temporary file, so a concurrent reader sees the old file or the new one. */
export function writeAtomically(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
