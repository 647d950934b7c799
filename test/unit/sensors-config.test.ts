// The sensors section of the gateway config: every source kind parses, and bad entries are named by
// file:line:col and dotted path.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasCode, nopLogger } from '../../chain/index.ts';
import { parseConfig } from '../../gateway/config/config.ts';
import { sensorsSchema } from '../../gateway/config/sensors-config.ts';
import { devConfigSchema } from '../../gateway/config/dev-config.ts';
import { createDriver } from '../../gateway/sensors.ts';
import { tempDir } from '../helpers/chain.ts';

const GOOD = `{
  "sources": [
    { "kind": "simulator", "name": "sim", "streams": [{ "stream": "t", "shape": "sine", "rateHz": 2, "min": 10, "max": 30 }] },
    { "kind": "serial", "name": "barn", "path": "/dev/ttyUSB0", "baudRate": 9600,
      "format": { "kind": "jsonl", "stream": "barn/climate", "fields": { "temperature": "t", "humidity": "h" } } },
    { "kind": "serial", "name": "gps", "path": "/dev/ttyACM0", "baudRate": 4800, "format": { "kind": "nmea", "stream": "truck/position" } },
    { "kind": "modbus", "name": "meter", "path": "/dev/ttyUSB1", "baudRate": 19200, "parity": "even",
      "devices": [{ "unitId": 1, "pollMs": 1000, "registers": [{ "stream": "power", "table": "input", "address": 0, "type": "float32", "wordOrder": "little", "unit": "W" }] }] },
    { "kind": "firmata", "name": "uno", "port": "/dev/ttyACM1",
      "sensors": [{ "kind": "analog", "pin": "A0", "stream": "soil" }, { "kind": "thermometer", "controller": "LM35", "pin": "A1", "stream": "air" }] },
    { "kind": "mqtt", "name": "lan", "url": "mqtt://127.0.0.1:1883", "passwordFile": "/etc/datagate/mqtt.pass",
      "subscriptions": [{ "topic": "farm/+/temp", "stream": "farm/\${1}/temperature", "payload": "number", "qos": 1 }] }
  ],
  "broker": { "enabled": true }
}`;

function configError(text: string): string {
  try {
    parseConfig(text, 'g.json', sensorsSchema);
  } catch (err) {
    assert.ok(hasCode(err, 'CONFIG_INVALID'), String(err));
    return (err as Error).message;
  }
  assert.fail('expected CONFIG_INVALID');
}

test('every source kind of the annotated example parses', () => {
  const cfg = parseConfig(GOOD, 'g.json', sensorsSchema);
  assert.deepEqual(cfg.sources.map((s) => s.kind), ['simulator', 'serial', 'serial', 'modbus', 'firmata', 'mqtt']);
  assert.equal(cfg.broker.host, '127.0.0.1');
  assert.equal(cfg.broker.port, 1883);
  const serial = cfg.sources[1]!;
  assert.ok(serial.kind === 'serial' && serial.format.kind === 'jsonl' && serial.format.fields['humidity'] === 'h');
  assert.deepEqual(parseConfig('{}', 'x.json', devConfigSchema).sensors, { sources: [], broker: { enabled: false, host: '127.0.0.1', port: 1883 } });
});

test('source names are unique, and so are MQTT client ids', () => {
  const sim = (name: string) => `{"kind": "simulator", "name": "${name}", "streams": [{"stream": "a", "shape": "sine", "rateHz": 1}]}`;
  const mqtt = (name: string, clientId?: string) =>
    `{"kind": "mqtt", "name": "${name}", "url": "mqtt://h"${clientId === undefined ? '' : `, "clientId": "${clientId}"`}, "subscriptions": [{"topic": "a", "stream": "a", "payload": "number"}]}`;
  assert.match(configError(`{"sources": [${sim('x')}, ${sim('y')}, ${sim('x')}]}`), /sources\[2\]\.name: 'x' is already the name of sources\[0\]; source names must be unique/);
  assert.match(configError(`{"sources": [${mqtt('a')}, ${mqtt('b', 'datagate-a')}]}`), /sources\[1\]: MQTT client id 'datagate-a' is also that of sources\[0\]/);
  assert.equal(parseConfig(`{"sources": [${mqtt('a')}, ${mqtt('b', 'gw-b')}, ${sim('c')}]}`, 'g.json', sensorsSchema).sources.length, 3);
});

test('a bad source is named by location and path', () => {
  const unknownKind = configError('{"sources": [{"kind": "zigbee", "name": "z"}]}');
  assert.match(unknownKind, /g\.json:1:23: sources\[0\]\.kind: must be one of simulator, serial, modbus, firmata, mqtt/);
  const noKind = configError('{"sources": [{"name": "z"}]}');
  assert.match(noKind, /sources\[0\]\.kind/);
  const badBaud = configError('{"sources": [{"kind": "serial", "name": "s", "path": "/dev/x", "baudRate": 0, "format": {"kind": "nmea", "stream": "g"}}]}');
  assert.match(badBaud, /sources\[0\]\.baudRate: must be an integer between 50 and 4000000/);
  const badFormat = configError('{"sources": [{"kind": "serial", "name": "s", "path": "/dev/x", "baudRate": 9600, "format": {"kind": "xml", "stream": "g"}}]}');
  assert.match(badFormat, /sources\[0\]\.format\.kind: must be one of jsonl, csv, kv, nmea/);
  const extra = configError('{"sources": [{"kind": "simulator", "name": "s", "streams": [{"stream": "a", "shape": "sine", "rateHz": 1, "colour": "red"}]}]}');
  assert.match(extra, /unknown field sources\[0\]\.streams\[0\]\.colour/);
  const emptyFields = configError('{"sources": [{"kind": "serial", "name": "s", "path": "/dev/x", "baudRate": 9600, "format": {"kind": "jsonl", "stream": "g", "fields": {}}}]}');
  assert.match(emptyFields, /sources\[0\]\.format\.fields: must have at least 1 entries/);
  const password = configError('{"sources": [{"kind": "mqtt", "name": "m", "url": "mqtt://h", "password": "x", "subscriptions": [{"topic": "a", "stream": "a", "payload": "number"}]}]}');
  assert.match(password, /unknown field sources\[0\]\.password/);
});

test("an MQTT source's unusable passwordFile is an error naming the source and the field", { timeout: 10_000 }, async (t) => {
  const dir = tempDir(t);
  const source = parseConfig(GOOD, 'g.json', sensorsSchema).sources.find((s) => s.kind === 'mqtt')!;
  const attempt = async (passwordFile: string, code: string) => {
    const err = await createDriver({ ...source, passwordFile }, nopLogger).then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    assert.ok(hasCode(err, code), String(err));
    assert.match((err as Error).message, /'lan'/, 'names the source');
    assert.match((err as Error).message, /passwordFile/, 'names the field');
  };
  await attempt(join(dir, 'absent.pass'), 'PASSPHRASE_MISSING');
  writeFileSync(join(dir, 'open.pass'), 'secret\n', { mode: 0o644 });
  chmodSync(join(dir, 'open.pass'), 0o644);
  await attempt(join(dir, 'open.pass'), 'PASSPHRASE_FILE_INSECURE');
});
