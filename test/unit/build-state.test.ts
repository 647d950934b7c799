// The `datagate` entry point: when it may run the compiled dist/ (gateway/bin/build-state.mjs): only when it
// was built from exactly the sources there are now (an edit, a new or deleted file, or a changed package.json
// makes it stale, and the command runs the sources through tsx); and the gateway's V8 heap flags, the same in
// the shebang and in `npm start`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GATEWAY_NODE_FLAGS } from '../../gateway/bin/node-flags.mjs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIST_DIR, SOURCE_DIRS, STAMP_FILE, distIsFresh, sourceState } from '../../gateway/bin/build-state.mjs';
import { helpKey } from '../../gateway/bin/help-cache.mjs';
import { refreshDist, rewriteImports } from '../../gateway/bin/refresh-dist.mjs';
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

test('the shebang and npm start pass the gateway heap flags, and the command runs by its shebang', () => {
  const bin = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));
  const shebang = readFileSync(bin, 'utf8').split('\n')[0]!;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; scripts: Record<string, string> };
  assert.ok(GATEWAY_NODE_FLAGS.length > 0);
  assert.equal(shebang, `#!/usr/bin/env -S node ${GATEWAY_NODE_FLAGS.join(' ')}`);
  assert.equal(pkg.scripts['start'], `node ${GATEWAY_NODE_FLAGS.join(' ')} gateway/bin/datagate.mjs dev`);
  const run = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, new RegExp(pkg.version.replace(/\./g, '\\.')));
});

test('a stale dist/ is brought up to date by compiling only the changed sources; a config change needs the full build', { timeout: 60_000 }, async (t) => {
  const root = tempDir(t);
  for (const dir of SOURCE_DIRS) mkdirSync(join(root, dir), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) writeFileSync(join(root, file), '{}');
  writeFileSync(join(root, 'chain', 'a.ts'), "import { b } from './b.ts';\nimport type { B } from './b.ts';\nexport const a: B = b + 1;\n");
  writeFileSync(join(root, 'chain', 'b.ts'), 'export type B = number;\nexport const b: B = 1;\n');
  writeFileSync(join(root, 'chain', 'gone.ts'), 'export const gone = 1;\n');
  assert.equal(refreshDist(root), false, 'no dist/ to refresh');
  mkdirSync(join(root, DIST_DIR, 'chain'), { recursive: true });
  for (const f of ['a', 'b', 'gone']) writeFileSync(join(root, DIST_DIR, 'chain', `${f}.js`), 'throw new Error("stale");\n');
  stamp(root);
  writeFileSync(join(root, DIST_DIR, 'package.json'), '{"type":"module"}');

  const later = new Date(Date.now() + 60_000);
  utimesSync(join(root, 'chain', 'a.ts'), later, later);
  utimesSync(join(root, 'chain', 'b.ts'), later, later);
  rmSync(join(root, 'chain', 'gone.ts'));
  assert.equal(distIsFresh(root), false);
  assert.equal(refreshDist(root), true);
  assert.equal(distIsFresh(root), true);
  assert.equal(existsSync(join(root, DIST_DIR, 'chain', 'gone.js')), false, "a deleted source's output goes");
  const { a } = (await import(pathToFileURL(join(root, DIST_DIR, 'chain', 'a.js')).href)) as { a: number };
  assert.equal(a, 2, 'the refreshed modules run and import each other by .js');

  writeFileSync(join(root, 'tsconfig.build.json'), '{"compilerOptions":{}}');
  utimesSync(join(root, 'tsconfig.build.json'), later, later);
  assert.equal(refreshDist(root), false, 'a changed build config');
  assert.equal(distIsFresh(root), false);
});

test('import specifiers are rewritten from .ts to .js as tsc does, relative ones only', { timeout: 10_000 }, () => {
  assert.equal(rewriteImports('import { x } from "./x.ts";\nexport * from "../y/z.ts";\nimport "./side.ts";\nconst m = await import("./lazy.ts");'), 'import { x } from "./x.js";\nexport * from "../y/z.js";\nimport "./side.js";\nconst m = await import("./lazy.js");');
  assert.equal(rewriteImports('import { x } from "pkg/x.ts";\nconst s = "./not-an-import.ts";'), 'import { x } from "pkg/x.ts";\nconst s = "./not-an-import.ts";');
});

test('plain help requests have a cache key; anything else runs the CLI', { timeout: 10_000 }, () => {
  assert.equal(helpKey(['--help']), '--help');
  assert.equal(helpKey(['-h']), '--help');
  assert.equal(helpKey(['help']), '--help');
  assert.equal(helpKey(['help', 'help']), '--help');
  assert.equal(helpKey(['help', 'status']), 'status --help');
  assert.equal(helpKey(['status', '-h']), 'status --help');
  assert.equal(helpKey(['key', 'new', '--help']), 'key new --help');
  for (const argv of [[], ['--version'], ['status'], ['status', '--data-dir', 'x', '--help'], ['help', '--help'], ['dev', '--', '--help']]) assert.equal(helpKey(argv), null, argv.join(' '));
});
