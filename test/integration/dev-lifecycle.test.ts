// `datagate dev` as real processes ends within a bounded time whatever state a stop signal finds it in
// (loading, starting, serving, with its pipeline blocked, stuck on a key file that never answers), refuses a
// data directory it cannot use at once, keeps the data directory private, and keeps ordinary blocks out of
// the info log. CAP_MS is a generous cap against hangs, not a timing goal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rpcCall, spawnDatagate, startDev, type SpawnedDatagate } from '../helpers/dev-process.ts';
import { tempDirClosingFirst } from '../helpers/temp-dir.ts';

const CAP_MS = 120_000;

/** The exit code (or signal), or 'still running' when the child outlived CAP_MS. */
function exitWithinCap(p: SpawnedDatagate): Promise<number | string> {
  return Promise.race([p.exited, sleep(CAP_MS, 'still running', { ref: false })]);
}

async function waitFor(what: string, p: SpawnedDatagate, pattern: RegExp): Promise<void> {
  const until = Date.now() + CAP_MS;
  while (!pattern.test(p.output())) {
    if (Date.now() > until || p.child.exitCode !== null) assert.fail(`${what}: no ${pattern} in:\n${p.output().slice(-2000)}`);
    await sleep(50);
  }
}

test('a data directory that cannot be used is refused at once with DATA_DIR_UNUSABLE: in /proc, under a file', { timeout: 400_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  writeFileSync(join(dir, 'file'), 'not a directory');
  for (const dataDir of ['/proc/datagate-nope', join(dir, 'file', 'dev')]) {
    const p = spawnDatagate(['dev', '--data-dir', dataDir, '--rpc-port', '0'], { t });
    assert.equal(await exitWithinCap(p), 1, `${dataDir}:\n${p.output()}`);
    assert.match(p.output(), /\[DATA_DIR_UNUSABLE\]/);
  }
});

test('SIGTERM or SIGINT ends the process at any moment of its start, and once it serves; the data dir is 0700, blocks log at debug', { timeout: 400_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  const base = ['dev', '--rpc-port', '0', '--log-format', 'json', '--solo', '--block-period', '100'];
  // Moments of the start: while node loads the code, then once each of these exists (the data directory, the
  // stores as they are opened in turn).
  const moments = ['', '.', 'nodes/solo/wal', 'content', 'pipeline', 'api-token'];
  for (const [i, marker] of moments.entries()) {
    const dataDir = join(dir, `early-${i}`);
    const p = spawnDatagate([...base, '--data-dir', dataDir], { t });
    while (marker !== '' && !existsSync(join(dataDir, marker)) && p.child.exitCode === null) await sleep(5);
    p.child.kill(i % 2 === 0 ? 'SIGTERM' : 'SIGINT');
    const code = await exitWithinCap(p);
    assert.notEqual(code, 'still running', `signal once ${marker || 'spawned'}:\n${p.output()}`);
    assert.doesNotMatch(p.output(), /STOP_DEADLINE|\n\s+at /, 'stopped cleanly, without a stack trace');
    t.diagnostic(`signal once ${marker || 'spawned'}: exit ${code}`);
  }
  // An existing 0755 data directory is made private.
  const served = join(dir, 'served');
  mkdirSync(served);
  chmodSync(served, 0o755);
  const node = await startDev(['--data-dir', served, '--solo', '--block-period', '100'], { t });
  assert.equal(statSync(served).mode & 0o777, 0o700);
  while (Number((await rpcCall(node.rpcUrl, 'eth_blockNumber')).result) < 5) await sleep(100);
  assert.doesNotMatch(node.output(), /"block committed"/, 'an ordinary block is a debug line');
  assert.equal(await Promise.race([node.stop('SIGTERM'), sleep(CAP_MS, 'still running', { ref: false })]), 0, node.output());
  assert.equal(statSync(join(dir, 'early-1')).mode & 0o777, 0o700);
});

test('SIGTERM ends a node whose pipeline is blocked at its disk bound', { timeout: 400_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  const config = join(dir, 'datagate.json');
  // A reserve larger than any disk: the pipeline refuses every reading from the start.
  writeFileSync(config, JSON.stringify({ pipeline: { minFreeBytes: 2 ** 52 } }));
  const p = spawnDatagate(['dev', '--config', config, '--data-dir', join(dir, 'dev'), '--solo', '--rpc-port', '0', '--log-format', 'json'], { t });
  await waitFor('blocked pipeline', p, /pipeline full at the disk bound/);
  p.child.kill('SIGTERM');
  assert.equal(await exitWithinCap(p), 0, p.output());
});

test('a start stuck on a key file that never answers is killed at the stop deadline, saying so', { timeout: 400_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  const fifo = join(dir, 'key.json');
  execFileSync('mkfifo', [fifo]);
  const p = spawnDatagate(['dev', '--data-dir', join(dir, 'dev'), '--rpc-port', '0', '--validator-key', `keystore:${fifo}`], {
    t,
    env: { DATAGATE_KEYSTORE_PASSPHRASE: 'never read past the key file', DATAGATE_STOP_DEADLINE_MS: '2000' },
  });
  // Opening the FIFO's write end succeeds once datagate opened it to read: from then on it waits for bytes.
  let writer: number | null = null;
  const until = Date.now() + CAP_MS;
  while (writer === null) {
    try {
      writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > until) throw err;
      await sleep(50);
    }
  }
  t.after(() => closeSync(writer));
  p.child.kill('SIGTERM');
  assert.equal(await exitWithinCap(p), 'SIGKILL', p.output());
  assert.match(p.output(), /\[STOP_DEADLINE\]/);
});
