// Brings a stale dist/ up to date by compiling only the sources that changed since it was built, so that a
// source edit costs one CLI call a fraction of a second instead of every call running all sources through tsx
// (measured by bench/cli-start.ts). Each changed file is transpiled on its own by esbuild, the transformer
// tsx runs the sources with (and so the one every test runs them with); tsc's full build (`npm run build`)
// stays the reference and is what a change to package.json or a tsconfig needs.
import { createRequire } from 'node:module';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_CONFIGS, DIST_DIR, STAMP_FILE, builtState, sourceState, writeAtomically } from './build-state.mjs';

/** More changed files than this is a checkout or a pull: left to `npm run build` (tsx runs meanwhile). */
export const MAX_REFRESHED_FILES = 40;

/**
 * `import ... from './x.ts'` -> './x.js', as tsc's rewriteRelativeImportExtensions does; esbuild keeps the
 * specifier. Only relative specifiers of static imports, re-exports and literal dynamic imports are
 * rewritten (esbuild prints them in double quotes).
 */
export function rewriteImports(code) {
  return code.replace(/((?:\bfrom|\bimport)\s*\(?\s*)"(\.\.?\/[^"\n]*?)\.ts"/g, '$1"$2.js"');
}

/** esbuild, which tsx depends on; null when it cannot be loaded. */
function loadEsbuild() {
  try {
    const require = createRequire(import.meta.url);
    return createRequire(require.resolve('tsx/package.json'))('esbuild');
  } catch {
    return null;
  }
}

/**
 * Makes dist/ fresh by compiling the sources changed since its stamp; true when dist/ is now fresh. False
 * (and dist/ left stale) when there is no stamp with per-file times, a build config changed, too many files
 * changed, esbuild is missing or anything cannot be written: the caller then runs the sources through tsx.
 */
export function refreshDist(root) {
  const built = builtState(root);
  if (built === null || typeof built.mtimes !== 'object') return false;
  // Taken before compiling: a source edited meanwhile leaves dist/ stale, never wrongly fresh.
  const now = sourceState(root);
  const changed = Object.keys(now.mtimes).filter((path) => built.mtimes[path] !== now.mtimes[path]);
  const removed = Object.keys(built.mtimes).filter((path) => !(path in now.mtimes));
  if (changed.length === 0 && removed.length === 0) return true;
  if ([...changed, ...removed].some((path) => BUILD_CONFIGS.includes(path)) || changed.length > MAX_REFRESHED_FILES) return false;
  const esbuild = loadEsbuild();
  if (esbuild === null) return false;
  const out = (path) => join(root, DIST_DIR, path.replace(/\.ts$/, '.js'));
  try {
    for (const path of changed) {
      if (path.endsWith('.d.ts')) continue;
      const { code } = esbuild.transformSync(readFileSync(join(root, path), 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: 'es2022',
        sourcefile: path,
        tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
      });
      writeAtomically(out(path), rewriteImports(code));
    }
    for (const path of removed) rmSync(out(path), { force: true });
    writeAtomically(join(root, DIST_DIR, STAMP_FILE), JSON.stringify(now) + '\n');
  } catch {
    return false;
  }
  return true;
}
