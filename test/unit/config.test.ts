// Unit tests of config loading: defaults, the schema toolkit, and errors that carry a stable code plus the
// file:line:column and dotted path of the offending value.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  configDefaults,
  field,
  loadConfigFile,
  parseConfig,
  withOverrides,
  type Infer,
} from '../../gateway/config/config.ts';
import { devConfigSchema, type DevConfig } from '../../gateway/config/dev-config.ts';
import { DatagateError } from '../../chain/index.ts';

/** Runs fn, expects a ConfigError with `code`, returns its message. */
function configError(fn: () => unknown, code: string): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(err instanceof DatagateError);
    assert.equal(err.code, code);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const GOOD = `{
  "chainId": 4242,
  "rpc": {
    "port": 9545,
    "host": "0.0.0.0"
  },
  "log": { "level": "debug" }
}
`;

test('a good file: given values kept, everything else defaulted', () => {
  const cfg: DevConfig = parseConfig(GOOD, 'datagate.json', devConfigSchema);
  assert.deepEqual(cfg, {
    chainId: 4242,
    dataDir: './data/dev',
    rpc: { host: '0.0.0.0', port: 9545, maxRequestBytes: 5_242_880, maxBatch: 100, maxLogRange: 10_000 },
    block: { periodMs: 1000, timeoutMs: 2000, gasLimit: 30_000_000 },
    lbft: { validators: 4, proposers: 2, solo: false },
    sensors: { sources: [], broker: { enabled: false, host: '127.0.0.1', port: 1883 } },
    pipeline: { segmentSeconds: 60, maxSegmentBytes: 262_144, maxQueueBytes: 268_435_456, maxStoreBytes: 4_294_967_296, policy: 'stop-accepting', minFreeBytes: 67_108_864 },
    txpool: { maxTotal: 20_000, maxPerSender: 64 },
    log: { level: 'debug', format: 'auto' },
  });
  assert.deepEqual(configDefaults(devConfigSchema), parseConfig('{}', 'x.json', devConfigSchema));
  assert.equal(configDefaults(devConfigSchema).rpc.port, 8545);
});

test('loadConfigFile reads a file; a missing file is CONFIG_NOT_FOUND', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'datagate-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'datagate.json');
  await writeFile(path, GOOD);
  assert.equal((await loadConfigFile(path, devConfigSchema)).rpc.port, 9545);
  await assert.rejects(loadConfigFile(join(dir, 'nope.json'), devConfigSchema), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CONFIG_NOT_FOUND');
    assert.ok(err.message.includes('nope.json'));
    return true;
  });
  await writeFile(path, '{\n  "rpc": { "port": "abc" }\n}\n');
  await assert.rejects(loadConfigFile(path, devConfigSchema), (err: unknown) => {
    assert.ok(err instanceof ConfigError && err.code === 'CONFIG_INVALID');
    assert.ok(err.message.includes(`${path}:2:20: rpc.port`), err.message);
    return true;
  });
});

test('a bad value names file:line:col, the dotted path and what was got', () => {
  const text = '{\n  "chainId": 1,\n  "rpc": {\n    "host": "127.0.0.1",\n\n\n    "port":      "abc"\n  }\n}';
  const msg = configError(() => parseConfig(text, 'datagate.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(msg.startsWith('datagate.json:7:18: rpc.port: '), msg);
  assert.ok(msg.includes('"abc"'), msg);

  const range = configError(() => parseConfig('{"rpc":{"port":70000}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(range.includes('a.json:1:16: rpc.port'), range);
  assert.ok(range.includes('65535'), range);

  const min = configError(() => parseConfig('{"block": {"periodMs": 0}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(min.includes('a.json:1:24: block.periodMs'), min);
  const lbft = configError(() => parseConfig('{"lbft": {"validators": 0}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(lbft.includes('a.json:1:25: lbft.validators'), lbft);

  const frac = configError(() => parseConfig('{"chainId": 1.5}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(frac.includes('a.json:1:13: chainId'), frac);

  const en = configError(() => parseConfig('{"log": {"level": "loud"}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(en.includes('a.json:1:19: log.level'), en);
  assert.ok(en.includes('"debug"'), en);

  const obj = configError(() => parseConfig('{"rpc": 8545}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(obj.includes('a.json:1:9: rpc'), obj);
});

test('every problem is reported, in file order', () => {
  const text = '{\n  "rpc": {"port": -1},\n  "chainId": "x"\n}';
  const msg = configError(() => parseConfig(text, 'c.json', devConfigSchema), 'CONFIG_INVALID');
  const lines = msg.split('\n');
  assert.equal(lines.length, 2);
  assert.ok(lines[0]?.startsWith('c.json:2:19: rpc.port'), msg);
  assert.ok(lines[1]?.startsWith('c.json:3:14: chainId'), msg);
});

test('unknown fields are errors that list the known ones', () => {
  const msg = configError(() => parseConfig('{\n  "rpc": {\n    "prot": 9000\n  }\n}', 'datagate.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(msg.includes('datagate.json:3:5:'), msg);
  assert.ok(msg.includes('rpc.prot'), msg);
  assert.ok(msg.includes('port') && msg.includes('maxBatch'), msg);
  const top = configError(() => parseConfig('{"chainID": 5}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(top.includes('a.json:1:2:') && top.includes('chainID'), top);
});

test('duplicate keys are errors', () => {
  const msg = configError(() => parseConfig('{"rpc": {"port": 1, "port": 2}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(msg.includes('a.json:1:21: ') && msg.includes('rpc.port'), msg);
});

test('JSON syntax errors are CONFIG_PARSE with line:col; comments are called out', () => {
  const comment = configError(() => parseConfig('{\n  // the port\n  "rpc": {}\n}', 'datagate.json', devConfigSchema), 'CONFIG_PARSE');
  assert.ok(comment.includes('datagate.json:2:3:'), comment);
  assert.ok(comment.includes('comment'), comment);
  const block = configError(() => parseConfig('{ /* x */ }', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  assert.ok(block.includes('a.json:1:3:') && block.includes('comment'), block);

  const trailing = configError(() => parseConfig('{\n  "chainId": 5,\n}', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  assert.ok(trailing.includes('a.json:3:1:'), trailing);
  const bare = configError(() => parseConfig('{ chainId: 5 }', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  assert.ok(bare.includes('a.json:1:3:'), bare);
  configError(() => parseConfig('', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  configError(() => parseConfig('{"a": 01}', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  configError(() => parseConfig('{"a": "x\ny"}', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  configError(() => parseConfig('{} {}', 'a.json', devConfigSchema), 'CONFIG_PARSE');
  // "//" inside a string is data, not a comment.
  assert.equal(parseConfig('{"dataDir": "http://x//y"}', 'a.json', devConfigSchema).dataDir, 'http://x//y');
});

test('the parser agrees with JSON.parse on valid documents', () => {
  const schema = field.object({
    s: field.array(field.string(), { default: [] }),
    n: field.array(field.number(), { default: [] }),
    b: field.array(field.boolean(), { default: [] }),
  });
  const doc = { s: ['a"b', 'tab\there', 'é\u0001€😀', '\\/'], n: [0, -1, 1.5e3, -0.25, 1e-7], b: [true, false] };
  const text = JSON.stringify(doc, null, 2) + '\n';
  assert.deepEqual(parseConfig(text, 'a.json', schema), JSON.parse(text));
  assert.deepEqual(parseConfig('\ufeff{"s": ["\\u00e9\\/"]}', 'a.json', schema).s, ['é/']);
});

test('schema toolkit: address, pattern, optional, required, array items, refine', () => {
  const schema = field.object({
    owner: field.address(),
    name: field.string({ pattern: /[a-z][a-z0-9-]*/, patternHint: 'a lowercase name' }),
    note: field.optional(field.string()),
    peers: field.array(field.integer({ min: 1 }), { default: [1] }),
    limits: field.object({ soft: field.integer({ default: 1 }), hard: field.integer({ default: 2 }) }, { refine: (v) => (v.soft > v.hard ? 'soft must not exceed hard' : undefined) }),
  });
  type Conf = Infer<typeof schema>;
  const checksummed = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
  const ok: Conf = parseConfig(`{"owner": "${checksummed}", "name": "gw-1"}`, 'a.json', schema);
  assert.equal(ok.owner, checksummed.toLowerCase());
  assert.equal(ok.note, undefined);
  assert.deepEqual(ok.peers, [1]);

  const badSum = configError(() => parseConfig(`{"owner": "${checksummed.replace('aA', 'Aa')}", "name": "x"}`, 'a.json', schema), 'CONFIG_INVALID');
  assert.ok(badSum.includes('a.json:1:11: owner'), badSum);
  const missing = configError(() => parseConfig('{\n "name": "x"}', 'a.json', schema), 'CONFIG_INVALID');
  assert.ok(missing.includes('a.json:1:1:') && missing.includes('owner'), missing);
  const pat = configError(() => parseConfig(`{"owner": "${checksummed}", "name": "Gw"}`, 'a.json', schema), 'CONFIG_INVALID');
  assert.ok(pat.includes('a.json:1:65: name') && pat.includes('a lowercase name'), pat);
  const item = configError(() => parseConfig(`{"owner": "${checksummed}", "name": "g",\n"peers": [1, 0]}`, 'a.json', schema), 'CONFIG_INVALID');
  assert.ok(item.includes('a.json:2:14: peers[1]'), item);
  const refine = configError(() => parseConfig(`{"owner": "${checksummed}", "name": "g",\n"limits": {"soft": 5}}`, 'a.json', schema), 'CONFIG_INVALID');
  assert.ok(refine.includes('a.json:2:11: limits'), refine);
});

test('txpool.maxPerSender may not exceed txpool.maxTotal', () => {
  const msg = configError(() => parseConfig('{"txpool": {"maxTotal": 10, "maxPerSender": 64}}', 'a.json', devConfigSchema), 'CONFIG_INVALID');
  assert.ok(msg.includes('a.json:1:12: txpool'), msg);
});

test('withOverrides applies dotted paths, checks them, and leaves the original alone', () => {
  const base = parseConfig(GOOD, 'datagate.json', devConfigSchema);
  const next = withOverrides(base, { 'rpc.port': 9000, 'log.format': 'json', 'block.periodMs': '500', dataDir: undefined }, devConfigSchema);
  assert.equal(next.rpc.port, 9000);
  assert.equal(next.rpc.host, '0.0.0.0');
  assert.equal(next.log.format, 'json');
  assert.equal(next.block.periodMs, 500);
  assert.equal(next.dataDir, './data/dev');
  assert.equal(base.rpc.port, 9545);

  const bad = configError(() => withOverrides(base, { 'rpc.port': 70000 }, devConfigSchema), 'CONFIG_INVALID');
  assert.ok(bad.includes('command line: rpc.port'), bad);
  const unknown = configError(() => withOverrides(base, { 'rpc.prot': 1 }, devConfigSchema, '--set'), 'CONFIG_INVALID');
  assert.ok(unknown.includes('--set: ') && unknown.includes('rpc.prot'), unknown);
  configError(() => withOverrides(base, { 'rpc.port': 'abc' }, devConfigSchema), 'CONFIG_INVALID');
});
