// Enforces the dependency direction of docs/architecture.md ("Layout and dependency direction") on the real source:
// chain/ imports none of device/, sensors/, gateway/; device/ imports chain/ only; sensors/ imports none of
// the others; and an import that crosses into another top-level folder must target that folder's index.ts.
// bench/ and deploy/ (tools) may import any source file and the test helpers; no source folder imports them.
// No two files import each other, directly or around a circle (type-only imports count: the circle is in the
// design even when the emitted JavaScript drops it). Imports are found with the TypeScript parser, so comments
// and strings never count as imports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAYERS = ['chain', 'device', 'sensors', 'gateway'] as const;
type Layer = (typeof LAYERS)[number];

/** Which other source folders each folder may import (always through their index.ts). */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  chain: [],
  device: ['chain'],
  sensors: [],
  gateway: ['chain', 'device', 'sensors'],
};
/** Folders no source file may import from at all. */
const NEVER = new Set(['test', 'bench', 'deploy', 'node_modules']);
/** Tool folders: they may import any source file (no index.ts needed) and test/, but nothing imports them. */
const TOOLS = ['bench', 'deploy'] as const;
const TOOL_MAY_IMPORT = new Set<string>([...LAYERS, 'test']);

export interface ImportRef {
  readonly specifier: string;
  readonly line: number;
}

/** Every module specifier in `source`: import/export-from (incl. type-only), dynamic import(), import types, import = require. */
export function scanImports(fileName: string, source: string): ImportRef[] {
  const kind = fileName.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
  const found: ImportRef[] = [];
  const add = (lit: ts.Node | undefined): void => {
    if (lit !== undefined && ts.isStringLiteralLike(lit)) {
      found.push({ specifier: lit.text, line: sf.getLineAndCharacterOfPosition(lit.getStart(sf)).line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isExternalModuleReference(node)) add(node.expression);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** One broken rule: the importing file (repo-relative, posix), line, specifier and why. */
export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly specifier: string;
  readonly reason: string;
}

/** Checks one file's imports against the rules; `file` is repo-relative with forward slashes. */
export function checkFile(file: string, source: string): Violation[] {
  const from = file.split('/')[0] as Layer;
  const tool = (TOOLS as readonly string[]).includes(from);
  const out: Violation[] = [];
  for (const { specifier, line } of scanImports(file, source)) {
    if (!specifier.startsWith('.')) continue; // packages and node: builtins are not ours to police here
    const target = posix.normalize(posix.join(posix.dirname(file), specifier));
    const folder = target.split('/')[0] ?? '';
    const report = (reason: string): void => void out.push({ file, line, specifier, reason });
    if (target.startsWith('../')) report('imports from outside the repository');
    else if (folder === from) continue;
    else if (tool) {
      if (!TOOL_MAY_IMPORT.has(folder) && target.includes('/')) report(`${from}/ may import source folders and test/, not ${folder}/`);
    }
    else if (NEVER.has(folder)) report(`source code must not import from ${folder}/`);
    else if (!(LAYERS as readonly string[]).includes(folder)) continue; // root files such as package.json
    else if (!ALLOWED[from].includes(folder as Layer)) report(`${from}/ must not import from ${folder}/`);
    else if (target !== `${folder}/index.ts`) report(`deep import across folders: use ${folder}/index.ts`);
  }
  return out;
}

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // a layer folder that does not exist yet has nothing to check
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(path);
      } else if (e.name.endsWith('.ts') || (e.name.endsWith('.mjs') && MJS_DIRS.has(relative(ROOT, dir).split(sep).join('/')))) {
        files.push(relative(ROOT, path).split(sep).join('/'));
      }
    }
  };
  for (const folder of [...LAYERS, ...TOOLS]) walk(join(ROOT, folder));
  return files.sort();
}

/** Folders whose .mjs files are source (plain JavaScript that runs before tsx is loaded). */
const MJS_DIRS = new Set(['gateway/bin', 'deploy']);

/** The relative imports of each file that land on another file of `files` (repo-relative, posix). */
export function importGraph(files: readonly string[], read: (file: string) => string): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = new Set<string>();
    for (const { specifier } of scanImports(file, read(file))) {
      if (!specifier.startsWith('.')) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      // A specifier names its file exactly (with .ts or .mjs); a folder means its index.ts.
      for (const candidate of [target, `${target}/index.ts`]) {
        if (known.has(candidate)) {
          targets.add(candidate);
          break;
        }
      }
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * Every import circle of `graph`, found by a depth-first search: each as the list of files around it, starting
 * and ending at its smallest file name (so a circle is reported once, whatever node the search entered by).
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const found = new Map<string, string[]>();
  const visit = (node: string): void => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') {
        const ring = path.slice(path.lastIndexOf(next));
        const start = ring.indexOf([...ring].sort()[0]!);
        const cycle = [...ring.slice(start), ...ring.slice(0, start)];
        cycle.push(cycle[0]!);
        found.set(cycle.join(' -> '), cycle);
      } else if (s === undefined) {
        visit(next);
      }
    }
    path.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return [...found.values()];
}

test('scanner finds every import form and ignores comments and strings', () => {
  const src = [
    "import type { A } from './a.ts';",
    "import B, { c } from '../b/index.ts';",
    "import './side.ts';",
    "export * from './star.ts';",
    "export * as ns from '../ns/index.ts';",
    "export type * from './types.ts';",
    "export { d } from '../d.ts';",
    "const m = await import('../dyn.ts');",
    "type T = typeof import('../typeonly.ts');",
    "import fs = require('../cjs.ts');",
    "// import x from '../commented.ts'",
    "/* export * from '../block-comment.ts' */",
    "const s = \"import y from '../in-string.ts'\";",
    "const r = /['\"]/; const t = `${1}import('../in-template.ts')`;",
  ].join('\n');
  assert.deepEqual(
    scanImports('x.ts', src).map((i) => `${i.line}:${i.specifier}`),
    ['1:./a.ts', '2:../b/index.ts', '3:./side.ts', '4:./star.ts', '5:../ns/index.ts', '6:./types.ts', '7:../d.ts', '8:../dyn.ts', '9:../typeonly.ts', '10:../cjs.ts'],
  );
});

test('rules: each forbidden direction and deep import is reported, allowed ones are not', () => {
  const cases: [file: string, source: string, bad: boolean][] = [
    ['chain/ledger.ts', "import { x } from '../gateway/index.ts';", true],
    ['chain/rpc/server.ts', "import type { S } from '../../device/index.ts';", true],
    ['chain/ledger.ts', "const s = await import('../sensors/index.ts');", true],
    ['chain/ledger.ts', "import { t } from './tx.ts'; import { k } from './crypto/index.ts';", false],
    ['device/keystore.ts', "import { keccak } from '../chain/crypto/keccak.ts';", true],
    ['device/keystore.ts', "export { Signer } from '../chain/index.ts';", false],
    ['device/keystore.ts', "import { s } from '../sensors/index.ts';", true],
    ['device/keystore.ts', "import { g } from '../gateway/index.ts';", true],
    ['sensors/nmea.ts', "import type { Logger } from '../chain/index.ts';", true],
    ['sensors/nmea.ts', "import { g } from '../gateway/config.ts';", true],
    ['gateway/cli.ts', "import { Ledger } from '../chain/ledger.ts';", true],
    ['gateway/cli.ts', "import { Ledger } from '../chain/index.ts'; import { k } from '../device/index.ts';", false],
    ['gateway/cli.ts', "import { fixture } from '../test/fixtures.ts';", true],
    ['gateway/bin/datagate.mjs', "await import('../cli.ts'); await import('../../chain/store.ts');", true],
    ['gateway/cli.ts', "import { x } from '../../elsewhere/index.ts';", true],
    ['gateway/cli.ts', "import ethers from 'ethers'; import { readFile } from 'node:fs/promises';", false],
    ['gateway/cli.ts', "import { b } from '../bench/lbft-cluster.ts';", true],
    ['chain/ledger.ts', "import { d } from '../deploy/build.mjs';", true],
    ['device/keystore.ts', "import type { B } from '../bench/signers.ts';", true],
    ['bench/pipeline.ts', "import { p } from '../gateway/pipeline/pipeline.ts'; import { c } from '../chain/lbft/wal.ts';", false],
    ['bench/ledger.ts', "import { h } from '../test/helpers/chain.ts'; import { l } from './lbft-cluster.ts';", false],
    ['deploy/build.mjs', "import { s } from '../gateway/bin/build-state.mjs';", false],
    ['bench/lbft.ts', "import { x } from '../../elsewhere/index.ts';", true],
    ['bench/lbft.ts', "import { x } from '../deploy/build.mjs';", true],
  ];
  for (const [file, source, bad] of cases) {
    const found = checkFile(file, source);
    assert.equal(found.length > 0, bad, `${file}: ${source} -> ${JSON.stringify(found)}`);
  }
  const [v] = checkFile('chain/a.ts', "\n\nimport { x } from '../gateway/index.ts';");
  assert.deepEqual(v, { file: 'chain/a.ts', line: 3, specifier: '../gateway/index.ts', reason: 'chain/ must not import from gateway/' });
});

test('the source tree follows the dependency direction', () => {
  const files = sourceFiles();
  assert.ok(files.includes('chain/index.ts'), 'chain/index.ts not found: is the scan looking in the right place?');
  const violations = files.flatMap((file) => checkFile(file, readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(
    violations.map((v) => `${v.file}:${v.line}: ${v.specifier}: ${v.reason}`),
    [],
    'imports break the layering of docs/architecture.md',
  );
});

test('cycle search: finds each circle once, as its list of files, and passes a graph without one', () => {
  const g = (edges: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(edges));
  assert.deepEqual(findCycles(g({ a: ['b', 'c'], b: ['c'], c: [], d: ['a'] })), []);
  assert.deepEqual(findCycles(g({ a: ['a'] })), [['a', 'a']]);
  assert.deepEqual(findCycles(g({ b: ['a'], a: ['b'] })), [['a', 'b', 'a']]);
  assert.deepEqual(findCycles(g({ x: ['c'], c: ['a'], a: ['b'], b: ['c'] })), [['a', 'b', 'c', 'a']]);
  assert.deepEqual(
    findCycles(g({ a: ['b'], b: ['a', 'c'], c: ['d'], d: ['c'] })).sort(),
    [['a', 'b', 'a'], ['c', 'd', 'c']],
  );
  const graph = importGraph(['p/a.ts', 'p/b.ts', 'p/sub/index.ts'], (file) => ({
    'p/a.ts': "import type { B } from './b.ts'; import { s } from './sub'; import x from 'pkg';",
    'p/b.ts': "export type { A } from './a.ts';",
    'p/sub/index.ts': "import { missing } from './gone.ts';",
  })[file]!);
  assert.deepEqual(Object.fromEntries(graph), { 'p/a.ts': ['p/b.ts', 'p/sub/index.ts'], 'p/b.ts': ['p/a.ts'], 'p/sub/index.ts': [] });
  assert.deepEqual(findCycles(graph), [['p/a.ts', 'p/b.ts', 'p/a.ts']], 'type-only imports and re-exports count');
});

test('no source file imports itself around a circle', () => {
  const files = sourceFiles();
  assert.ok(files.includes('bench/lbft.ts') && files.includes('deploy/build.mjs'), 'bench/ and deploy/ are not scanned');
  const cycles = findCycles(importGraph(files, (file) => readFileSync(join(ROOT, file), 'utf8')));
  assert.deepEqual(cycles.map((c) => c.join(' -> ')), [], 'import circles: move what both files need into one of them, or a third file both import');
});

/** Every file git tracks, as text, except the lock file (package names and hashes, not prose). */
function trackedTextFiles(): { path: string; text: string }[] {
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(listed.status, 0, `git ls-files failed: ${listed.stderr}`);
  return listed.stdout
    .split('\0')
    .filter((path) => path !== '' && path !== 'package-lock.json' && existsSync(join(ROOT, path)))
    .map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }))
    .filter(({ text }) => !text.includes('\0'));
}

test('the repository stands alone: no file cites a document outside it, and cited sections of docs/architecture.md exist', { timeout: 30_000 }, () => {
  // Spelled in pieces so that this file does not match itself.
  const outside = new RegExp(['DESIGN' + '\\.md', '\\.\\./shared' + '/', 'STYLE' + '\\.md', 'TOOLCHAIN' + '\\.md'].join('|'));
  const headings = new Set(
    readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .map((line) => line.replace(/^#+\s*/, '')),
  );
  const problems: string[] = [];
  for (const { path, text } of trackedTextFiles()) {
    text.split('\n').forEach((line, i) => {
      if (outside.test(line)) problems.push(`${path}:${i + 1}: cites a document outside the repository`);
      for (const m of line.matchAll(/docs\/architecture\.md[^"\n]{0,3}((?:"[^"]+"(?:,? (?:and )?)?)+)/g)) {
        for (const [, section] of m[1]!.matchAll(/"([^"]+)"/g)) {
          if (!headings.has(section!)) problems.push(`${path}:${i + 1}: docs/architecture.md has no section "${section}"`);
        }
      }
    });
  }
  assert.deepEqual(problems, []);
});
