// Temp directories for tests that open databases in them: node:test runs after-hooks in the order they were
// registered, so a directory removed in its own hook would go before a store opened later is closed (LevelDB
// may still write to it: ENOTEMPTY). Here the removal first closes whatever was registered with onClose(t).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type TestContext = { after(fn: () => void | Promise<void>): void };

const closers = new WeakMap<TestContext, (() => unknown)[]>();

function closersOf(t: TestContext): (() => unknown)[] {
  let list = closers.get(t);
  if (list === undefined) {
    list = [];
    closers.set(t, list);
  }
  return list;
}

/** A fresh directory, removed after the test once everything passed to onClose(t) is closed (newest first). */
export function tempDirClosingFirst(t: TestContext, prefix = 'datagate-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const list = closersOf(t);
  t.after(async () => {
    for (const close of list.splice(0).reverse()) await close();
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Close `fn` after the test, before its temp directories are removed. */
export function onClose(t: TestContext, fn: () => unknown): void {
  closersOf(t).push(fn);
}
