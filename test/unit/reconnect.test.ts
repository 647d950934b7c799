// The drivers' one reconnect path on a stopped clock: backoff growth and cap, jitter bounds, the backoff
// starting over after a healthy connection, stop() cancelling a pending retry, and no global timer used.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Reconnector, backoffDelay } from '../../sensors/index.ts';
import type { DriverStatus } from '../../sensors/index.ts';
import { FakeClock } from '../helpers/fake-clock.ts';


// The global timers fail the test if the reconnect path touches them.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
let globalTimerCalls = 0;
beforeEach(() => {
  globalTimerCalls = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    globalTimerCalls++;
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((h: Parameters<typeof clearTimeout>[0]) => {
    globalTimerCalls++;
    realClearTimeout(h);
  }) as typeof clearTimeout;
});
afterEach(() => {
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
  assert.equal(globalTimerCalls, 0, 'the reconnect path used a global timer');
});

function setup(policy: { baseMs?: number; maxMs?: number; resetAfterMs?: number } = {}, random = (): number => 0.5) {
  const clock = new FakeClock(1_000_000);
  const statuses: DriverStatus[] = [];
  let attempts = 0;
  const r = new Reconnector(policy, { now: clock.now, status: (s) => statuses.push(s), timers: clock, random }, () => attempts++);
  return { clock, statuses, r, attempts: () => attempts };
}

test('backoff doubles per failure up to the cap; each attempt runs when its delay is over', () => {
  const { clock, statuses, r, attempts } = setup({ baseMs: 100, maxMs: 1000 });
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    const next = r.retry('port gone');
    assert.ok(next !== null);
    delays.push(next.delayMs);
    assert.equal(next.attempt, i + 1);
    clock.advance(next.delayMs - 1);
    assert.equal(attempts(), i, `no attempt before ${next.delayMs} ms`);
    clock.advance(1);
    assert.equal(attempts(), i + 1);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
  const last = statuses.at(-1);
  assert.ok(last?.state === 'retrying' && last.reason === 'port gone' && last.attempt === 7);
});

test('a penalty adds backoff steps (MQTT refusals in a row)', () => {
  const { r } = setup({ baseMs: 100, maxMs: 10_000 });
  assert.equal(r.retry('refused', 3)?.delayMs, 800);
});

test('jitter stays within +-20% of the delay and never passes the cap', () => {
  for (const random of [0, 0.25, 0.5, 0.999999]) {
    for (let attempt = 0; attempt < 12; attempt++) {
      const raw = Math.min(5000, 100 * 2 ** attempt);
      const d = backoffDelay(attempt, { baseMs: 100, maxMs: 5000, random: () => random });
      assert.ok(d >= Math.round(raw * 0.8) && d <= Math.round(raw * 1.2), `attempt ${attempt}, random ${random}: ${d}`);
      assert.ok(d <= 5000);
    }
  }
  assert.equal(backoffDelay(0, { baseMs: 1000, random: () => 0 }), 800);
  assert.equal(backoffDelay(0, { baseMs: 1000, random: () => 0.999999 }), 1200);
});

test('connected reports the time and counts reconnects after the first connection', () => {
  const { clock, statuses, r } = setup();
  r.connected();
  assert.deepEqual(statuses.at(-1), { state: 'connected', since: clock.t });
  assert.equal(r.reconnects, 0);
  r.retry('lost');
  clock.advance(1000);
  r.connected();
  assert.equal(r.reconnects, 1);
});

test('the backoff starts over only after a connection stayed up for the healthy period', () => {
  const { clock, r } = setup({ baseMs: 100, maxMs: 10_000, resetAfterMs: 5000 });
  for (let i = 0; i < 3; i++) clock.advance(r.retry('down')?.delayMs ?? 0);
  r.connected();
  clock.advance(4999);
  assert.equal(r.retry('flapped')?.delayMs, 800, 'up for less than the healthy period: the backoff keeps growing');
  clock.advance(800);
  r.connected();
  clock.advance(5000);
  assert.deepEqual(r.retry('lost after a healthy hour'), { delayMs: 100, attempt: 1, nextAttemptAt: clock.t + 100 });
});

test('without a healthy period the backoff starts over as soon as the source is connected', () => {
  const { clock, r } = setup({ baseMs: 100 });
  for (let i = 0; i < 3; i++) clock.advance(r.retry('down')?.delayMs ?? 0);
  r.connected();
  assert.equal(r.attempts, 0);
  assert.equal(r.retry('lost')?.delayMs, 100);
});

test('stop() cancels a pending retry at once; later retries schedule nothing', () => {
  const { clock, r, attempts, statuses } = setup({ baseMs: 100 });
  r.retry('down');
  assert.equal(clock.pending, 1);
  assert.equal(r.pending, true);
  r.stop();
  assert.equal(clock.pending, 0, 'the pending retry is cancelled');
  assert.equal(r.pending, false);
  clock.advance(60_000);
  assert.equal(attempts(), 0);
  const before = statuses.length;
  assert.equal(r.retry('down again'), null);
  r.connected();
  assert.equal(statuses.length, before, 'a stopped reconnector reports nothing');
  assert.equal(clock.pending, 0);
});

test('fail() reports the reason and cancels a pending retry', () => {
  const { clock, r, statuses, attempts } = setup();
  r.retry('down');
  r.fail('bad baud rate: fix the config');
  assert.deepEqual(statuses.at(-1), { state: 'failed', reason: 'bad baud rate: fix the config' });
  clock.advance(60_000);
  assert.equal(attempts(), 0);
});

test('a new retry replaces the pending one', () => {
  const { clock, r, attempts } = setup({ baseMs: 100 });
  r.retry('a');
  r.retry('b');
  assert.equal(clock.pending, 1);
  clock.advance(60_000);
  assert.equal(attempts(), 1);
});
