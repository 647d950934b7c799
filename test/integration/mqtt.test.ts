// MqttDriver against real brokers: mosquitto (MQTT 5, started by the test on a free loopback port) and the
// embedded aedes broker (MQTT 3.1.1). Wildcard topics to stream names, counted rejects for garbage, no loss
// across a driver restart (persistent session, QoS 1), and across a mosquitto restart with persistence.
// Without mosquitto its tests skip (MOSQUITTO_SKIP) unless DATAGATE_REQUIRE_SYSTEM=1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { MqttDriver, type MqttDriverConfig } from '../../sensors/mqtt.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../sensors/mqtt-broker.ts';
import { nopSensorLogger, type Reading } from '../../sensors/reading.ts';
import type { DriverStatus } from '../../sensors/driver.ts';
import { mosquittoSkipReason, startMosquitto, type Mosquitto } from '../helpers/mosquitto.ts';

const skipMosquitto = mosquittoSkipReason();
let uniq = 0;
const prefix = (): string => `dg${process.pid}-${++uniq}`;

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a consumer that collects every reading of the driver. */
function collect(driver: MqttDriver): Reading[] {
  const got: Reading[] = [];
  void (async () => {
    for await (const r of driver.readings()) got.push(r);
  })();
  return got;
}

function statuses(driver: MqttDriver): DriverStatus[] {
  const seen: DriverStatus[] = [];
  driver.on('status', (s: DriverStatus) => seen.push(s));
  return seen;
}

async function publisher(url: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  return connectAsync(url, { protocolVersion, clientId: `pub-${prefix()}`, reconnectPeriod: 0 });
}

interface Target {
  readonly url: () => string;
  readonly protocolVersion: 4 | 5;
  /** The embedded broker does not forward topics with an empty level (see sensors/mqtt-broker.ts). */
  readonly forwardsEmptyLevels: boolean;
}

/** The tests both brokers must pass. */
function commonTests(t: Target): void {
  const driverFor = (cfg: Omit<MqttDriverConfig, 'url' | 'protocolVersion'>): MqttDriver =>
    new MqttDriver({ ...cfg, url: t.url(), protocolVersion: t.protocolVersion }, { logger: nopSensorLogger });

  test('numeric and JSON payloads on wildcard topics become readings with the templated stream names', async () => {
    const p = prefix();
    const driver = driverFor({
      name: `wild-${p}`,
      subscriptions: [
        { topic: `${p}/farm/+/temp`, stream: 'farm/${1}/temperature', payload: 'number', unit: 'C' },
        { topic: `${p}/env/#`, stream: 'env/${1}', payload: 'json', fields: { t: 'data.t', h: 'data.h' }, tsField: 'ts' },
        { topic: `${p}/single/+`, stream: 'single/${1}', payload: 'json' },
      ],
    });
    const got = collect(driver);
    await driver.start();
    assert.equal(driver.status().state, 'connected');
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      await pub.publishAsync(`${p}/farm/a/temp`, '21.5', { qos: 1 });
      await pub.publishAsync(`${p}/farm/b/temp`, ' -3e1\n', { qos: 1 });
      await pub.publishAsync(`${p}/env/barn/north`, JSON.stringify({ data: { t: 20.5, h: 55 }, ts: 1_700_000_000_000 }), { qos: 1 });
      await pub.publishAsync(`${p}/single/x`, '{"value": 7}', { qos: 1 });
      await pub.publishAsync(`${p}/single/y`, '42', { qos: 0 });
      await waitFor(() => got.length >= 5, '5 readings');
      const byStream = Object.fromEntries(got.map((r) => [r.stream, r]));
      assert.deepEqual(Object.keys(byStream).sort(), ['env/barn/north', 'farm/a/temperature', 'farm/b/temperature', 'single/x', 'single/y']);
      assert.equal(byStream['farm/a/temperature']?.value, 21.5);
      assert.equal(byStream['farm/a/temperature']?.unit, 'C');
      assert.equal(byStream['farm/b/temperature']?.value, -30);
      assert.deepEqual(byStream['env/barn/north']?.values, { t: 20.5, h: 55 });
      assert.equal(byStream['env/barn/north']?.ts, 1_700_000_000_000);
      assert.equal(byStream['single/x']?.value, 7);
      assert.equal(byStream['single/y']?.value, 42);
      assert.ok(got.every((r) => r.seq === 0));
      assert.deepEqual(driver.counters().rejects, {});
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('garbage payloads and topics are counted by reason and never throw', async () => {
    const p = prefix();
    const driver = driverFor({
      name: `junk-${p}`,
      subscriptions: [
        { topic: `${p}/n/+`, stream: 'n/${1}', payload: 'number' },
        { topic: `${p}/j/+`, stream: 'j/${1}', payload: 'json', fields: { t: 't' } },
        { topic: `${p}/h/#`, stream: 'h/${1}', payload: 'number' },
      ],
    });
    const got = collect(driver);
    const rejectEvents: string[] = [];
    driver.on('reject', (r: { reason: string }) => rejectEvents.push(r.reason));
    await driver.start();
    const pub = await publisher(t.url(), t.protocolVersion);
    const junk: [topic: string, payload: string | Buffer][] = [
      ['n/a', 'abc'],
      ['n/a', '0x10'],
      ['n/a', 'NaN'],
      ['n/a', '1e999'],
      ['n/a', 'inf'],
      ['n/a', Buffer.from([0xff, 0xfe, 0xfd, 0x80])],
      ['n/a', Buffer.from([0x01, 0x02, 0x31])],
      ['n/a', Buffer.alloc(0)],
      ['j/a', '{bad'],
      ['j/a', '{"x":1}'],
      ['j/a', '{"t":"21"}'],
      ['j/a', '{"t":1e999}'],
      ['h', '1'], // '#' matched no level: nothing to fill ${1} with
      ...(t.forwardsEmptyLevels ? [['n/', '1'] as [string, string]] : []), // '+' matched an empty level
    ];
    try {
      for (const [topic, payload] of junk) await pub.publishAsync(`${p}/${topic}`, payload, { qos: 1 });
      await pub.publishAsync(`${p}/n/ok`, '5', { qos: 1 });
      await waitFor(() => got.length === 1 && rejectEvents.length === junk.length, 'all junk counted').catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(driver.counters())}`);
      });
      assert.deepEqual(driver.counters().rejects, {
        'not-a-number': 3,
        'not-finite': 4,
        'bad-payload': 3,
        'bad-json': 1,
        'missing-field': 1,
        'bad-topic': t.forwardsEmptyLevels ? 2 : 1,
      });
      assert.equal(got[0]?.stream, 'n/ok');
      assert.equal(driver.status().state, 'connected');
      assert.equal(driver.counters().reconnects, 0);
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('a retained value replayed on subscribe is a counted reject; live retained publishes are readings', async () => {
    const p = prefix();
    const pub = await publisher(t.url(), t.protocolVersion);
    await pub.publishAsync(`${p}/r/x`, '5', { qos: 1, retain: true });
    const driver = driverFor({ name: `ret-${p}`, subscriptions: [{ topic: `${p}/r/+`, stream: 'r/${1}', payload: 'number' }] });
    const got = collect(driver);
    try {
      await driver.start();
      await pub.publishAsync(`${p}/r/x`, '6', { qos: 1 });
      await pub.publishAsync(`${p}/r/x`, '7', { qos: 1, retain: true });
      await waitFor(() => got.length === 2, 'two live readings');
      assert.deepEqual(got.map((r) => r.value), [6, 7]);
      assert.deepEqual(driver.counters().rejects, { retained: 1 });
    } finally {
      await pub.publishAsync(`${p}/r/x`, '', { qos: 1, retain: true }); // clears the retained value
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('a wildcard makes at most maxStreams streams: readings of further topics are counted stream-limit rejects', { timeout: 30_000 }, async () => {
    const p = prefix();
    const driver = driverFor({ name: `limit-${p}`, maxStreams: 3, subscriptions: [{ topic: `${p}/dev/+`, stream: 'dev/${1}', payload: 'number', qos: 1 }] });
    const got = collect(driver);
    await driver.start();
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      for (let i = 0; i < 6; i++) await pub.publishAsync(`${p}/dev/d${i}`, String(i), { qos: 1 });
      await pub.publishAsync(`${p}/dev/d0`, '10', { qos: 1 }); // a stream it already has still works
      await waitFor(() => got.length >= 4 && (driver.counters().rejects['stream-limit'] ?? 0) >= 3, '4 readings and 3 rejects');
      assert.deepEqual(got.map((r) => [r.stream, r.value]), [['dev/d0', 0], ['dev/d1', 1], ['dev/d2', 2], ['dev/d0', 10]]);
      assert.deepEqual(driver.counters().rejects, { 'stream-limit': 3 });
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('watchers (observer) beside the gateway: no session takeover, no acknowledgement for it, no leftover subscription', { timeout: 60_000 }, async () => {
    const p = prefix();
    // The gateway and both watchers run the same source config, as `sensors watch --config` does.
    const cfg = { name: `watched-${p}`, clientId: `dg-watched-${uniq}`, subscriptions: [{ topic: `${p}/w/+`, stream: 'w/${1}', payload: 'number' as const, qos: 1 as const }] };
    const observe = (sub = cfg.subscriptions): MqttDriver => new MqttDriver({ ...cfg, subscriptions: sub, url: t.url(), protocolVersion: t.protocolVersion }, { logger: nopSensorLogger }, { observer: true });
    const gateway = driverFor(cfg);
    const old = observe([{ topic: `${p}/w/a`, stream: 'old', payload: 'number', qos: 1 }]);
    await old.start();
    await old.stop(); // a watcher's subscription must not outlive it
    const watchers = [observe(), observe()];
    const got = [gateway, ...watchers].map(collect);
    const gatewayStatus = statuses(gateway);
    await gateway.start();
    for (const w of watchers) await w.start();
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      for (let i = 0; i < 20; i++) await pub.publishAsync(`${p}/w/a`, String(i), { qos: 1 });
      await waitFor(() => got.every((g) => g.length >= 20), 'every client has 20 readings');
      await new Promise((r) => setTimeout(r, 1500)); // a takeover or a doubled reading would show up by now
      for (const [i, g] of got.entries()) assert.deepEqual(g.map((r) => r.value), Array.from({ length: 20 }, (_, k) => k), `client ${i}`);
      for (const d of [gateway, ...watchers]) assert.equal(d.counters().reconnects, 0, `${d.name} was not kicked off`);
      assert.deepEqual(gatewayStatus.map((s) => s.state), ['connected']);
    } finally {
      await pub.endAsync();
      for (const w of watchers) await w.stop();
      await gateway.stop();
    }
  });

  test('driver restart: 100 QoS 1 readings published while it is down arrive exactly once', async () => {
    const p = prefix();
    const cfg = {
      name: `restart-${p}`,
      clientId: `dg-restart-${uniq}`,
      subscriptions: [{ topic: `${p}/s/+`, stream: 's/${1}', payload: 'number' as const, qos: 1 as const }],
    };
    const first = driverFor(cfg);
    await first.start();
    assert.equal(first.status().state, 'connected');
    await first.stop(); // the gateway restarts; the broker keeps the session
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      for (let i = 0; i < 100; i++) await pub.publishAsync(`${p}/s/n${i % 10}`, String(i), { qos: 1 });
    } finally {
      await pub.endAsync();
    }
    const second = driverFor(cfg);
    const got = collect(second);
    await second.start();
    try {
      await waitFor(() => got.length >= 100, '100 readings after restart');
      await new Promise((r) => setTimeout(r, 300)); // a duplicate would show up by now
      const values = got.map((r) => r.value).sort((a, b) => (a ?? 0) - (b ?? 0));
      assert.deepEqual(values, Array.from({ length: 100 }, (_, i) => i));
      assert.ok(got.every((r) => /^s\/n\d$/.test(r.stream)));
      assert.deepEqual(second.counters().rejects, {});
    } finally {
      await second.stop();
    }
  });

  test('pausing the source stops acknowledging; nothing is lost once the consumer catches up', async () => {
    const p = prefix();
    const driver = new MqttDriver(
      { name: `bp-${p}`, url: t.url(), protocolVersion: t.protocolVersion, subscriptions: [{ topic: `${p}/b/+`, stream: 'b/${1}', payload: 'number' }] },
      { logger: nopSensorLogger },
      { highWater: 50 },
    );
    await driver.start();
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      await Promise.all(Array.from({ length: 400 }, (_, i) => pub.publishAsync(`${p}/b/x`, String(i), { qos: 1 })));
      await new Promise((r) => setTimeout(r, 200));
      // Nobody reads: the driver holds at its high-water mark instead of taking all 400.
      assert.ok(driver.counters().readings <= 51, `readings taken while paused: ${driver.counters().readings}`);
      const got: number[] = [];
      for await (const r of driver.readings()) {
        got.push(r.value ?? -1);
        if (got.length === 400) break;
      }
      assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => i));
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('stop while paused: what was not acknowledged goes to the next driver, exactly once', async () => {
    const p = prefix();
    const cfg: MqttDriverConfig = {
      name: `sp-${p}`,
      clientId: `dg-sp-${uniq}`,
      url: t.url(),
      protocolVersion: t.protocolVersion,
      subscriptions: [{ topic: `${p}/b/+`, stream: 'b/${1}', payload: 'number' }],
    };
    const first = new MqttDriver(cfg, { logger: nopSensorLogger }, { highWater: 50 });
    await first.start();
    const pub = await publisher(t.url(), t.protocolVersion);
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => pub.publishAsync(`${p}/b/x`, String(i), { qos: 1 })));
      await waitFor(() => first.counters().readings >= 50, 'the first driver to fill up');
      await first.stop();
      const got: number[] = [];
      for await (const r of first.readings()) got.push(r.value ?? -1); // what it had queued is still readable
      assert.equal(got.length, first.counters().readings);
      const second = new MqttDriver(cfg, { logger: nopSensorLogger });
      const rest = collect(second);
      await second.start();
      try {
        await waitFor(() => got.length + rest.length >= 200, 'the rest after the restart');
        await new Promise((r) => setTimeout(r, 300));
        const all = [...got, ...rest.map((r) => r.value ?? -1)].sort((a, b) => a - b);
        assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => i));
      } finally {
        await second.stop();
      }
    } finally {
      await pub.endAsync();
      await first.stop();
    }
  });
}

describe('MqttDriver with mosquitto (MQTT 5)', { skip: skipMosquitto }, () => {
  let mosq: Mosquitto;
  before(async () => {
    mosq = await startMosquitto({ persistence: false });
  });
  after(async () => {
    await mosq?.cleanup();
  });
  commonTests({ url: () => mosq.url, protocolVersion: 5, forwardsEmptyLevels: true });

  test('PUBACKs deferred until a slow consumer acknowledges: many messages in flight, keepalive answered, no reconnect', { timeout: 60_000 }, async () => {
    const p = prefix();
    // keepalive 1 s: mqtt.js drops a connection whose PINGRESP has not come in 1.5 s. The consumer acknowledges
    // each reading 400 ms after it got it (a slow disk): one message per acknowledgement would take 800 s
    // here, and a client that stopped reading the socket meanwhile would miss its PINGRESP.
    const driver = new MqttDriver(
      { name: `slow-${p}`, url: mosq.url, keepaliveSec: 1, subscriptions: [{ topic: `${p}/k/+`, stream: 'k/${1}', payload: 'number', qos: 1 }] },
      { logger: nopSensorLogger },
      { ackAfterConsumer: true },
    );
    const got: number[] = [];
    void (async () => {
      for await (const r of driver.readings()) {
        got.push(r.value!);
        setTimeout(() => driver.acknowledge(r), 400);
      }
    })();
    await driver.start();
    const pub = await publisher(mosq.url, 5);
    try {
      await Promise.all(Array.from({ length: 2000 }, (_, i) => pub.publishAsync(`${p}/k/a`, String(i), { qos: 1 })));
      await waitFor(() => got.length >= 2000, '2000 readings', 20_000);
      await new Promise((r) => setTimeout(r, 2500)); // longer than the keepalive timeout, acknowledging meanwhile
      assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 2000 }, (_, i) => i));
      assert.equal(driver.counters().reconnects, 0);
      assert.equal(driver.status().state, 'connected');
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('a reading the consumer refuses (full pipeline) drops the connection; after the backoff the broker delivers it again', { timeout: 30_000 }, async () => {
    const p = prefix();
    const driver = new MqttDriver(
      { name: `refuse-${p}`, url: mosq.url, reconnect: { baseMs: 200, maxMs: 200 }, subscriptions: [{ topic: `${p}/r/+`, stream: 'r/${1}', payload: 'number', qos: 1 }] },
      { logger: nopSensorLogger },
      { ackAfterConsumer: true },
    );
    const got: number[] = [];
    let refused = false;
    void (async () => {
      for await (const r of driver.readings()) {
        got.push(r.value!);
        if (r.value === 3 && !refused) {
          refused = true;
          driver.refuse(r);
        } else driver.acknowledge(r);
      }
    })();
    await driver.start();
    const pub = await publisher(mosq.url, 5);
    try {
      for (let i = 0; i < 10; i++) await pub.publishAsync(`${p}/r/a`, String(i), { qos: 1 });
      await waitFor(() => got.filter((v) => v === 3).length >= 2 && new Set(got).size === 10 && driver.status().state === 'connected', 'value 3 again and all 10', 10_000);
      assert.equal(driver.counters().reconnects, 1);
      assert.deepEqual([...new Set(got)].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i));
    } finally {
      await pub.endAsync();
      await driver.stop();
    }
  });

  test('broker restart with persistence: retrying, then connected, and messages queued meanwhile arrive', async () => {
    const pm = await startMosquitto({ persistence: true });
    const p = prefix();
    // A fixed 3 s backoff leaves time to publish after the broker is back and before the driver returns.
    const driver = new MqttDriver(
      {
        name: `brestart-${p}`,
        url: pm.url,
        subscriptions: [{ topic: `${p}/t/+`, stream: 't/${1}', payload: 'number' }],
        reconnect: { baseMs: 3_000, maxMs: 3_000 },
      },
      { logger: nopSensorLogger },
      { random: () => 0.5 },
    );
    const seen = statuses(driver);
    const got = collect(driver);
    try {
      await driver.start();
      const pub1 = await publisher(pm.url, 5);
      await pub1.publishAsync(`${p}/t/before`, '1', { qos: 1 });
      await pub1.endAsync();
      await waitFor(() => got.length === 1, 'reading before the restart');

      await pm.stop();
      await waitFor(() => driver.status().state === 'retrying', 'retrying');
      await pm.start();
      const pub2 = await publisher(pm.url, 5);
      for (let i = 0; i < 20; i++) await pub2.publishAsync(`${p}/t/after`, String(100 + i), { qos: 1 });
      await pub2.endAsync();
      const publishedAt = Date.now();
      assert.equal(driver.status().state, 'retrying', 'the driver reconnected before the publishes: the test proves nothing');

      await waitFor(() => got.length >= 21, '20 readings after the broker restart', 15_000);
      const connected = seen.filter((s) => s.state === 'connected');
      assert.equal(connected.length, 2);
      const back = connected[1];
      assert.ok(back?.state === 'connected' && back.since >= publishedAt);
      const retrying = seen.find((s) => s.state === 'retrying');
      assert.ok(retrying?.state === 'retrying' && retrying.nextAttemptAt > 0 && retrying.attempt === 1);
      assert.deepEqual(
        got.slice(1).map((r) => r.value),
        Array.from({ length: 20 }, (_, i) => 100 + i),
      );
      assert.equal(driver.counters().reconnects, 1);
    } finally {
      await driver.stop();
      await pm.cleanup();
    }
  });
});

describe('MqttDriver with the embedded aedes broker (MQTT 3.1.1)', () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
  });
  after(async () => {
    await broker?.close();
  });
  commonTests({ url: () => broker.url, protocolVersion: 4, forwardsEmptyLevels: false });

  test('with credentials, a wrong password is refused (driver retrying) and the right one connects', async () => {
    const secured = await startEmbeddedBroker({ port: 0, credentials: { username: 'gw', password: 's3cret' } });
    const mk = (password: string): MqttDriver =>
      new MqttDriver(
        { name: 'auth', url: secured.url, protocolVersion: 4, username: 'gw', password, subscriptions: [{ topic: 'a/+', stream: 'a/${1}', payload: 'number' }], reconnect: { baseMs: 60_000 } },
        { logger: nopSensorLogger },
      );
    const wrong = mk('nope');
    const right = mk('s3cret');
    try {
      await wrong.start();
      const s = wrong.status();
      assert.equal(s.state, 'retrying');
      assert.match(s.state === 'retrying' ? s.reason : '', /username or password|not authorized/i);
      await wrong.stop();
      await right.start();
      assert.equal(right.status().state, 'connected');
    } finally {
      await wrong.stop();
      await right.stop();
      await secured.close();
    }
  });
});
