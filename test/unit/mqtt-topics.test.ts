// The pure side of the MQTT driver: topic filters and wildcard matching, stream templates, payload parsing
// into values or stable reject reasons, and configuration checks that name the bad field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_PAYLOAD_BYTES,
  compileSubscription,
  matchTopic,
  parsePayload,
  parseStreamTemplate,
  parseTopicFilter,
  renderStream,
  resolveStream,
  type MqttSubscription,
} from '../../sensors/mqtt-topics.ts';
import { validateMqttConfig, type MqttDriverConfig } from '../../sensors/mqtt.ts';
import { SensorError } from '../../sensors/reading.ts';

const T0 = 1_750_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function configError(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SensorError);
    assert.equal(e.code, 'SENSOR_CONFIG_INVALID');
    assert.equal(e.fields['field'], field);
    return true;
  });
}

test('topic filters: wildcards counted, malformed filters refused', () => {
  assert.deepEqual(parseTopicFilter('farm/+/temp'), { filter: 'farm/+/temp', levels: ['farm', '+', 'temp'], wildcards: 1 });
  assert.equal(parseTopicFilter('+/a/#').wildcards, 2);
  assert.equal(parseTopicFilter('plain/topic').wildcards, 0);
  for (const bad of ['', 'a/#/b', 'a+/b', 'a/b#', '$share/group/a/+', 'a\u0000b']) configError(() => parseTopicFilter(bad), 'topic');
});

test('matchTopic follows the MQTT rules and returns the captures in order', () => {
  const f = parseTopicFilter;
  assert.deepEqual(matchTopic(f('farm/+/temp'), 'farm/north/temp'), ['north']);
  assert.equal(matchTopic(f('farm/+/temp'), 'farm/north/east/temp'), null);
  assert.equal(matchTopic(f('farm/+/temp'), 'farm/north'), null);
  assert.equal(matchTopic(f('farm/+/temp'), 'farm/north/temp/x'), null);
  assert.deepEqual(matchTopic(f('+/+/x'), 'a/b/x'), ['a', 'b']);
  assert.deepEqual(matchTopic(f('farm/#'), 'farm/a/b/c'), ['a/b/c']);
  assert.deepEqual(matchTopic(f('farm/#'), 'farm'), ['']); // '#' also matches the parent level
  assert.deepEqual(matchTopic(f('farm/+/#'), 'farm/a/b'), ['a', 'b']);
  assert.deepEqual(matchTopic(f('a/+'), 'a/'), ['']); // '+' matches an empty level
  assert.deepEqual(matchTopic(f('exact/topic'), 'exact/topic'), []);
  assert.equal(matchTopic(f('exact/topic'), 'exact/Topic'), null);
  // Wildcards in the first level never match $-topics.
  assert.equal(matchTopic(f('#'), '$SYS/broker/load'), null);
  assert.equal(matchTopic(f('+/broker/load'), '$SYS/broker/load'), null);
  assert.deepEqual(matchTopic(f('$SYS/#'), '$SYS/broker/load'), ['broker/load']);
});

test('stream templates: ${n} must name a wildcard; literal $ is kept', () => {
  assert.deepEqual(parseStreamTemplate('farm/${1}/t-${2}', 2), ['farm/', { capture: 1 }, '/t-', { capture: 2 }]);
  assert.deepEqual(parseStreamTemplate('cost$/${1}', 1), ['cost$/', { capture: 1 }]);
  assert.deepEqual(parseStreamTemplate('fixed', 0), ['fixed']);
  configError(() => parseStreamTemplate('x/${2}', 1), 'stream');
  configError(() => parseStreamTemplate('x/${0}', 1), 'stream');
  configError(() => parseStreamTemplate('', 1), 'stream');
});

test('renderStream and resolveStream: empty or odd captures are bad-topic', () => {
  const tpl = parseStreamTemplate('s/${1}', 1);
  assert.deepEqual(renderStream(tpl, ['a']), { ok: true, stream: 's/a' });
  for (const c of ['', 'a//b', 'a/', 'x\u0001', 'y'.repeat(129)]) {
    const r = renderStream(tpl, [c]);
    assert.equal(r.ok ? 'ok' : r.reason, 'bad-topic', JSON.stringify(c));
  }
  const sub = compileSubscription({ topic: 'farm/+/temp', stream: 'farm/${1}/temperature', payload: 'number' });
  assert.deepEqual(resolveStream(sub, 'farm/barn/temp'), { ok: true, stream: 'farm/barn/temperature' });
  const miss = resolveStream(sub, 'other/barn/temp');
  assert.equal(miss.ok ? 'ok' : miss.reason, 'bad-topic');
  const hash = compileSubscription({ topic: 'env/#', stream: 'env/${1}', payload: 'number' });
  assert.deepEqual(resolveStream(hash, 'env/a/b'), { ok: true, stream: 'env/a/b' });
  const parent = resolveStream(hash, 'env');
  assert.equal(parent.ok ? 'ok' : parent.reason, 'bad-topic');
});

test('compileSubscription names the bad field', () => {
  const base: MqttSubscription = { topic: 'a/+', stream: 'a/${1}', payload: 'json' };
  assert.equal(compileSubscription(base).qos, 1);
  configError(() => compileSubscription({ ...base, payload: 'number', fields: { t: 't' } }, 2), 'subscriptions[2].payload');
  configError(() => compileSubscription({ ...base, payload: 'xml' as 'json' }), 'subscriptions[0].payload');
  configError(() => compileSubscription({ ...base, fields: {} }), 'subscriptions[0].fields');
  configError(() => compileSubscription({ ...base, fields: { t: 'a..b' } }), 'subscriptions[0].fields.t');
  configError(() => compileSubscription({ ...base, tsField: '' }), 'subscriptions[0].tsField');
  configError(() => compileSubscription({ ...base, qos: 2 as 1 }), 'subscriptions[0].qos');
  configError(() => compileSubscription({ ...base, topic: 'a/#/b' }), 'subscriptions[0].topic');
  configError(() => compileSubscription({ ...base, stream: 'a/${2}' }), 'subscriptions[0].stream');
});

test('validateMqttConfig checks the driver-level fields', () => {
  const ok: MqttDriverConfig = { name: 'm', url: 'mqtt://127.0.0.1:1883', subscriptions: [{ topic: 'a', stream: 'a', payload: 'number' }] };
  assert.equal(validateMqttConfig(ok).length, 1);
  for (const url of ['mqtts://h', 'ws://h:9001/mqtt', 'wss://h/mqtt']) assert.equal(validateMqttConfig({ ...ok, url }).length, 1);
  configError(() => validateMqttConfig({ ...ok, url: 'http://h' }), 'url');
  configError(() => validateMqttConfig({ ...ok, url: 'not a url' }), 'url');
  configError(() => validateMqttConfig({ ...ok, name: '' }), 'name');
  configError(() => validateMqttConfig({ ...ok, subscriptions: [] }), 'subscriptions');
  configError(() => validateMqttConfig({ ...ok, protocolVersion: 3 as 4 }), 'protocolVersion');
  configError(() => validateMqttConfig({ ...ok, reconnect: { baseMs: -1 } }), 'reconnect.baseMs');
  configError(() => validateMqttConfig({ ...ok, clientId: '' }), 'clientId');
});

test('number payloads: strict decimals, stable reasons for everything else', () => {
  const num = { payload: 'number' as const };
  const value = (s: string | Uint8Array) => {
    const r = parsePayload(num, typeof s === 'string' ? bytes(s) : s, T0);
    return r.ok ? ('value' in r ? r.value : r.values) : r.reason;
  };
  assert.equal(value('21.5'), 21.5);
  assert.equal(value(' -3e1\n'), -30);
  assert.equal(value('.5'), 0.5);
  assert.equal(value('0'), 0);
  for (const s of ['abc', '0x10', '12abc', '1,5', '--1', '"1"']) assert.equal(value(s), 'not-a-number', s);
  for (const s of ['NaN', 'nan', '-inf', 'Infinity', '1e999']) assert.equal(value(s), 'not-finite', s);
  assert.equal(value(new Uint8Array(0)), 'bad-payload');
  assert.equal(value(new Uint8Array([0xff, 0xfe, 0x80])), 'bad-payload'); // not UTF-8
  assert.equal(value(new Uint8Array([0x01, 0x31])), 'bad-payload'); // control characters
  assert.equal(value(new Uint8Array(MAX_PAYLOAD_BYTES + 1).fill(0x31)), 'bad-payload');
  const r = parsePayload(num, bytes('1'), T0);
  assert.ok(r.ok && r.ts === T0, 'arrival time');
});

test('json payloads: fields by dotted path, one field -> value, several -> values', () => {
  const parse = (sub: Omit<MqttSubscription, 'topic' | 'stream' | 'payload'>, s: string) => parsePayload({ payload: 'json', ...sub }, bytes(s), T0);
  assert.deepEqual(parse({}, '42'), { ok: true, ts: T0, value: 42 });
  assert.deepEqual(parse({}, '{"value": 7, "other": "x"}'), { ok: true, ts: T0, value: 7 });
  assert.deepEqual(parse({ fields: { t: 'env.t' } }, '{"env":{"t":20.5}}'), { ok: true, ts: T0, value: 20.5 });
  assert.deepEqual(parse({ fields: { t: 'env.t', h: 'list.1' } }, '{"env":{"t":20.5},"list":[0,55]}'), { ok: true, ts: T0, values: { t: 20.5, h: 55 } });
  const reason = (sub: Omit<MqttSubscription, 'topic' | 'stream' | 'payload'>, s: string): string => {
    const r = parse(sub, s);
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(reason({}, '{bad'), 'bad-json');
  assert.equal(reason({}, '{"x":1}'), 'missing-field');
  assert.equal(reason({}, '"21"'), 'not-a-number');
  assert.equal(reason({}, '[1]'), 'not-a-number');
  assert.equal(reason({}, 'null'), 'not-a-number');
  assert.equal(reason({}, '1e999'), 'not-finite');
  assert.equal(reason({ fields: { t: 't', h: 'h' } }, '{"t":1}'), 'missing-field'); // all or nothing
  assert.equal(reason({ fields: { t: 't' } }, '{"t":"21.5"}'), 'not-a-number');
  assert.equal(reason({ fields: { t: 't' } }, '{"t":true}'), 'not-a-number');
  assert.equal(reason({ fields: { t: 't' } }, '{"t":-1e400}'), 'not-finite');
  assert.equal(reason({ fields: { t: 'a.toString' } }, '{"a":{}}'), 'missing-field'); // own properties only
  const proto = parse({ fields: Object.fromEntries([['__proto__', 'a'], ['b', 'b']]) }, '{"a":1,"b":2}');
  assert.ok(proto.ok && 'values' in proto && Object.hasOwn(proto.values, '__proto__'));
});

test('json payloads: tsField as ms or ISO with a zone; absent -> arrival time; nonsense -> bad-timestamp', () => {
  const sub = { payload: 'json' as const, fields: { t: 't' }, tsField: 'meta.ts' };
  const ts = (s: string): number | string => {
    const r = parsePayload(sub, bytes(s), T0);
    return r.ok ? r.ts : r.reason;
  };
  assert.equal(ts('{"t":1,"meta":{"ts":1700000000000}}'), 1_700_000_000_000);
  assert.equal(ts('{"t":1,"meta":{"ts":"2024-05-01T12:00:00.250Z"}}'), Date.UTC(2024, 4, 1, 12, 0, 0, 250));
  assert.equal(ts('{"t":1}'), T0);
  assert.equal(ts('{"t":1,"meta":{"ts":"yesterday"}}'), 'bad-timestamp');
  assert.equal(ts('{"t":1,"meta":{"ts":"2024-05-01T12:00:00"}}'), 'bad-timestamp'); // no zone
  assert.equal(ts('{"t":1,"meta":{"ts":1700000000}}'), 'bad-timestamp'); // seconds, not ms
});
