// The undo stack every node part opens on (gateway/node/lifecycle.ts): reverse order, once, failures logged
// without stopping the rest, a failed or interrupted start closing what it opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lifecycle } from '../../gateway/node/lifecycle.ts';
import { createLogger } from '../../gateway/logger.ts';

const quiet = () => {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'error', format: 'json', stream: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream }) };
};

test('close runs every undo in reverse order, once, also when called twice at the same time', { timeout: 10_000 }, async () => {
  const { logger } = quiet();
  const life = new Lifecycle(logger);
  const order: string[] = [];
  await life.open('a', async () => 'A', (p) => order.push(`close ${p}`));
  life.defer('b', () => order.push('close b'));
  await life.open(
    'c',
    async () => 'C',
    async (p) => {
      await new Promise((r) => setTimeout(r, 20));
      order.push(`close ${p}`);
    },
  );
  await Promise.all([life.close(), life.close()]);
  await life.close();
  assert.deepEqual(order, ['close C', 'close b', 'close A']);
  assert.throws(() => life.defer('late', () => {}), /after the stop began/);
});

test('a close that throws is logged with the part name and the others still close', { timeout: 10_000 }, async () => {
  const { lines, logger } = quiet();
  const life = new Lifecycle(logger);
  const closed: string[] = [];
  life.defer('first', () => closed.push('first'));
  life.defer('broken store', () => {
    throw new Error('disk gone');
  });
  life.defer('last', () => closed.push('last'));
  await life.close();
  assert.deepEqual(closed, ['last', 'first']);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /broken store/);
  assert.match(lines[0]!, /disk gone/);
});

test('a start that throws closes what it opened and rethrows the error', { timeout: 10_000 }, async () => {
  const { logger } = quiet();
  const life = new Lifecycle(logger);
  const closed: string[] = [];
  await assert.rejects(
    life.starting(async () => {
      await life.open('ledger', async () => 1, () => closed.push('ledger'));
      await life.open('wal', async () => 2, () => closed.push('wal'));
      throw new Error('port in use');
    }),
    /port in use/,
  );
  assert.deepEqual(closed, ['wal', 'ledger']);
});

test('a stop signal during start-up stops at the next step with NODE_START_STOPPED', { timeout: 10_000 }, async () => {
  const { logger } = quiet();
  const ac = new AbortController();
  const life = new Lifecycle(logger, ac.signal);
  const opened: string[] = [];
  const closed: string[] = [];
  await assert.rejects(
    life.starting(async () => {
      await life.open('one', async () => opened.push('one'), () => closed.push('one'));
      ac.abort();
      await life.open('two', async () => opened.push('two'), () => closed.push('two'));
    }),
    (err: Error & { code?: string }) => err.code === 'NODE_START_STOPPED',
  );
  assert.deepEqual(opened, ['one']);
  assert.deepEqual(closed, ['one']);
});
