// When the `datagate` command may run the compiled dist/ (gateway/bin/build-state.mjs): only when it was
// built from exactly the sources there are now. An edit, a new or deleted file, or a changed package.json
// makes it stale (the command then runs the sources through tsx).
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIST_DIR, SOURCE_DIRS, STAMP_FILE, distIsFresh, sourceState } from '../../gateway/bin/build-state.mjs';
import { tempDir } from '../helpers/chain.ts';

function stamp(root: string): void {
  mkdirSync(join(root, DIST_DIR), { recursive: true });
  writeFileSync(join(root, DIST_DIR, STAMP_FILE), JSON.stringify(sourceState(root)));
}

test('dist/ is fresh only for the sources it was built from', (t) => {
  const root = tempDir(t);
  for (const dir of SOURCE_DIRS) mkdirSync(join(root, dir, 'sub'), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) writeFileSync(join(root, file), '{}');
  writeFileSync(join(root, 'chain', 'a.ts'), 'export const a = 1;');
  writeFileSync(join(root, 'gateway', 'sub', 'b.ts'), 'export const b = 1;');
  writeFileSync(join(root, 'gateway', 'notes.md'), 'not a source');
  const past = new Date(Date.now() - 60_000);
  for (const f of ['chain/a.ts', 'gateway/sub/b.ts', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) utimesSync(join(root, f), past, past);

  assert.equal(distIsFresh(root), false, 'no dist/ at all');
  stamp(root);
  assert.equal(distIsFresh(root), true);
  assert.deepEqual(sourceState(root).files, 2);

  writeFileSync(join(root, 'gateway', 'notes.md'), 'still not a source');
  assert.equal(distIsFresh(root), true, 'only .ts sources and the build configs count');

  writeFileSync(join(root, 'gateway', 'sub', 'b.ts'), 'export const b = 2;');
  assert.equal(distIsFresh(root), false, 'an edited source');
  stamp(root);
  writeFileSync(join(root, 'sensors', 'c.ts'), 'export const c = 1;');
  utimesSync(join(root, 'sensors', 'c.ts'), past, past);
  assert.equal(distIsFresh(root), false, 'a new source, even with an old mtime');
  stamp(root);
  rmSync(join(root, 'sensors', 'c.ts'));
  assert.equal(distIsFresh(root), false, 'a deleted source');
  stamp(root);
  writeFileSync(join(root, 'package.json'), '{"version":"2"}');
  assert.equal(distIsFresh(root), false, 'a changed package.json');
  stamp(root);
  writeFileSync(join(root, DIST_DIR, STAMP_FILE), 'not json');
  assert.equal(distIsFresh(root), false, 'a damaged stamp');
});
