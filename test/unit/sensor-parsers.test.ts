// Line formats of sensors/: JSON lines, CSV, key=value and NMEA 0183 with good lines and every reject reason,
// config validation naming the bad field, the line framer's chunking independence and length cap, and a
// seeded fuzz run (random and mutated bytes through the framer and every parser: no throw, only known reasons).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LineFormatConfig, ParseResult, Reading } from '../../sensors/index.ts';
import { LineFramer, PARSE_REJECT_REASONS, SensorError, createLineParser, mulberry32, nmeaChecksum, parseNmeaSentence } from '../../sensors/index.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const enc = new TextEncoder();

function one(r: ParseResult): Omit<Reading, 'seq'> {
  assert.ok(r.ok, r.ok ? '' : `expected a reading, got ${r.reason}: ${r.detail}`);
  assert.equal(r.readings.length, 1);
  return r.readings[0]!;
}

function rejected(r: ParseResult, reason: string): void {
  assert.equal(r.ok, false, `expected reject '${reason}', got ${JSON.stringify(r)}`);
  if (!r.ok) {
    assert.equal(r.reason, reason, r.detail);
    assert.equal(typeof r.detail, 'string');
  }
}

function configInvalid(config: unknown, field: string): void {
  assert.throws(
    () => createLineParser(config as LineFormatConfig),
    (err: unknown) => err instanceof SensorError && err.code === 'SENSOR_CONFIG_INVALID' && err.fields.field === field,
    `expected SENSOR_CONFIG_INVALID on '${field}' for ${JSON.stringify(config)}`,
  );
}

/** A sentence with a correct checksum around `body`. */
const nmea = (body: string): string => `$${body}*${nmeaChecksum(body)}`;

test('jsonl: one field gives value, several give values; nested paths, units and device timestamps', () => {
  const single = createLineParser({ kind: 'jsonl', stream: 'barn/t', fields: { temperature: 'data.t' }, unit: 'degC' });
  assert.deepEqual(one(single('{"data":{"t":21.5,"h":40}}', NOW)), { stream: 'barn/t', ts: NOW, value: 21.5, unit: 'degC' });
  assert.deepEqual(one(single('  {"data":{"t":-3e2}}  ', NOW)), { stream: 'barn/t', ts: NOW, value: -300, unit: 'degC' });

  const multi = createLineParser({ kind: 'jsonl', stream: 'barn', fields: { t: 'data.t', h: 'data.h', first: 'list.0' }, tsField: 'time' });
  assert.deepEqual(one(multi('{"data":{"t":21.5,"h":40},"list":[7],"time":1714560000000}', NOW)), {
    stream: 'barn',
    ts: 1714560000000,
    values: { t: 21.5, h: 40, first: 7 },
  });
  assert.equal(one(multi('{"data":{"t":1,"h":2},"list":[3],"time":"2024-05-01T10:00:00.250Z"}', NOW)).ts, Date.UTC(2024, 4, 1, 10, 0, 0, 250));
  assert.equal(one(multi('{"data":{"t":1,"h":2},"list":[3],"time":"2024-05-01T12:00:00+02:00"}', NOW)).ts, Date.UTC(2024, 4, 1, 10));
  // No timestamp in the line: arrival time.
  assert.equal(one(multi('{"data":{"t":1,"h":2},"list":[3]}', NOW)).ts, NOW);
});

test('jsonl rejects: empty-line, bad-json, not-an-object, missing-field, not-a-number, not-finite, bad-timestamp', () => {
  const p = createLineParser({ kind: 'jsonl', stream: 's', fields: { t: 'd.t' }, tsField: 'ts' });
  rejected(p('', NOW), 'empty-line');
  rejected(p(' \t', NOW), 'empty-line');
  rejected(p('{"d":{"t":1}', NOW), 'bad-json');
  rejected(p("{'d':1}", NOW), 'bad-json');
  rejected(p('NaN', NOW), 'bad-json');
  rejected(p('[1,2]', NOW), 'not-an-object');
  rejected(p('21.5', NOW), 'not-an-object');
  rejected(p('null', NOW), 'not-an-object');
  rejected(p('"x"', NOW), 'not-an-object');
  rejected(p('{"d":{}}', NOW), 'missing-field');
  rejected(p('{"d":5}', NOW), 'missing-field');
  rejected(p('{"x":{"t":1}}', NOW), 'missing-field');
  // Only own properties are followed, never the prototype chain.
  const proto = createLineParser({ kind: 'jsonl', stream: 's', fields: { t: 'constructor' } });
  rejected(proto('{}', NOW), 'missing-field');
  // Only JSON numbers: numeric strings, null and booleans are not numbers.
  rejected(p('{"d":{"t":"21.5"}}', NOW), 'not-a-number');
  rejected(p('{"d":{"t":null}}', NOW), 'not-a-number');
  rejected(p('{"d":{"t":true}}', NOW), 'not-a-number');
  rejected(p('{"d":{"t":[1]}}', NOW), 'not-a-number');
  rejected(p('{"d":{"t":1e999}}', NOW), 'not-finite');
  rejected(p('{"d":{"t":-1e400}}', NOW), 'not-finite');
  rejected(p('{"d":{"t":1},"ts":1714560000}', NOW), 'bad-timestamp'); // seconds, not ms
  rejected(p('{"d":{"t":1},"ts":"2024-05-01T10:00:00"}', NOW), 'bad-timestamp'); // no zone
  rejected(p('{"d":{"t":1},"ts":"2024-02-30T10:00:00Z"}', NOW), 'bad-timestamp');
  rejected(p('{"d":{"t":1},"ts":"yesterday"}', NOW), 'bad-timestamp');
  rejected(p('{"d":{"t":1},"ts":"1714560000000"}', NOW), 'bad-timestamp');
  rejected(p('{"d":{"t":1},"ts":null}', NOW), 'bad-timestamp');
});

test('csv: named, ignored and timestamp columns, custom delimiter, strict decimals', () => {
  const p = createLineParser({ kind: 'csv', stream: 'field', columns: ['ts', '-', 'temp', '', 'hum'], tsColumn: 'ts', unit: 'mixed' });
  assert.deepEqual(one(p('1714560000000,whatever,21.5,x, 40', NOW)), { stream: 'field', ts: 1714560000000, values: { temp: 21.5, hum: 40 }, unit: 'mixed' });
  assert.deepEqual(one(p('2024-05-01T10:00:00Z,,-.5,,1.5e2\r', NOW)).values, { temp: -0.5, hum: 150 });

  const single = createLineParser({ kind: 'csv', stream: 't', columns: ['temp', 'hum'], fields: ['hum'], delimiter: ';' });
  assert.deepEqual(one(single('garbage;+12.', NOW)), { stream: 't', ts: NOW, value: 12 });
  const tab = createLineParser({ kind: 'csv', stream: 't', columns: ['a', 'b'], delimiter: '\t' });
  assert.deepEqual(one(tab('1\t2', NOW)).values, { a: 1, b: 2 });
});

test('csv rejects: empty-line, column-count, not-a-number, not-finite, bad-timestamp', () => {
  const p = createLineParser({ kind: 'csv', stream: 's', columns: ['ts', 'a', 'b'], tsColumn: 'ts' });
  rejected(p('', NOW), 'empty-line');
  rejected(p('1714560000000,1', NOW), 'column-count');
  rejected(p('1714560000000,1,2,3', NOW), 'column-count');
  rejected(p('a,b', NOW), 'column-count');
  for (const bad of ['0x10', '12abc', '', ' ', 'abc', '1,5'.replace(',', ' '), '1e', '--1', '1.2.3', 'Infinityx', '١٢']) {
    rejected(p(`1714560000000,${bad},2`, NOW), 'not-a-number');
  }
  rejected(p('ts,a,b', NOW), 'not-a-number'); // a header line
  for (const bad of ['nan', 'NaN', 'inf', '-inf', 'Infinity', 'ovf', '1e999']) rejected(p(`1714560000000,1,${bad}`, NOW), 'not-finite');
  rejected(p('0,1,2', NOW), 'bad-timestamp');
  rejected(p('later,1,2', NOW), 'bad-timestamp');
  rejected(p('2024-13-01T00:00:00Z,1,2', NOW), 'bad-timestamp');
});

test('kv: every numeric key by default (as values), chosen keys, separators and a timestamp key', () => {
  const all = createLineParser({ kind: 'kv', stream: 'k' });
  assert.deepEqual(one(all('T=21.5 H=40,P=1013.2;id=abc OK', NOW)), { stream: 'k', ts: NOW, values: { T: 21.5, H: 40, P: 1013.2 } });
  assert.deepEqual(one(all('only=1', NOW)).values, { only: 1 });
  // Any key is an own property of values, even '__proto__'.
  const weird = one(all('__proto__=1 x=2', NOW)).values!;
  assert.equal(Object.getPrototypeOf(weird), Object.prototype);
  assert.deepEqual(Object.keys(weird).sort(), ['__proto__', 'x']);

  const chosen = createLineParser({ kind: 'kv', stream: 'k', fields: ['t'], tsKey: 'at', separator: '|', unit: 'degC' });
  assert.deepEqual(one(chosen('t=21.5|h=x|at=1714560000000', NOW)), { stream: 'k', ts: 1714560000000, value: 21.5, unit: 'degC' });
  assert.deepEqual(one(chosen(' t = 3 ', NOW)), { stream: 'k', ts: NOW, value: 3, unit: 'degC' });
  const withTs = createLineParser({ kind: 'kv', stream: 'k', tsKey: 'at' });
  assert.deepEqual(one(withTs('a=1 at=2024-05-01T10:00:00Z', NOW)), { stream: 'k', ts: Date.UTC(2024, 4, 1, 10), values: { a: 1 } });
});

test('kv rejects: empty-line, missing-field, not-a-number, not-finite, duplicate-key, bad-timestamp', () => {
  const all = createLineParser({ kind: 'kv', stream: 'k', tsKey: 'at' });
  const chosen = createLineParser({ kind: 'kv', stream: 'k', fields: ['t', 'h'] });
  rejected(all('   ', NOW), 'empty-line');
  rejected(all('hello world', NOW), 'missing-field');
  rejected(all('id=abc', NOW), 'missing-field');
  rejected(chosen('t=1', NOW), 'missing-field');
  rejected(chosen('t=1 h=', NOW), 'not-a-number');
  rejected(chosen('t=0x1F h=2', NOW), 'not-a-number');
  rejected(chosen('t=1 h=12abc', NOW), 'not-a-number');
  rejected(chosen('t=nan h=2', NOW), 'not-finite');
  rejected(all('t=1 h=inf', NOW), 'not-finite');
  rejected(chosen('t=1 h=2 t=3', NOW), 'duplicate-key');
  rejected(all('t=1 at=12', NOW), 'bad-timestamp');
});

test('line format configs are checked up front and the error names the field', () => {
  configInvalid(null, 'config');
  configInvalid({ kind: 'xml', stream: 's' }, 'kind');
  configInvalid({ kind: 'nmea' }, 'stream');
  configInvalid({ kind: 'nmea', stream: ' ' }, 'stream');
  configInvalid({ kind: 'nmea', stream: 's', unit: 'm' }, 'unit');
  configInvalid({ kind: 'jsonl', stream: 's', fields: {} }, 'fields');
  configInvalid({ kind: 'jsonl', stream: 's', fields: ['a'] }, 'fields');
  configInvalid({ kind: 'jsonl', stream: 's', fields: { t: 'a..b' } }, 'fields.t');
  configInvalid({ kind: 'jsonl', stream: 's', fields: { t: 5 } }, 'fields.t');
  configInvalid({ kind: 'jsonl', stream: 's', fields: { t: 'a' }, tsField: '' }, 'tsField');
  configInvalid({ kind: 'jsonl', stream: 's', fields: { t: 'a' }, unit: 3 }, 'unit');
  configInvalid({ kind: 'jsonl', stream: 's', fields: { t: 'a' }, tsfield: 'x' }, 'tsfield');
  configInvalid({ kind: 'csv', stream: 's', columns: [] }, 'columns');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', 'a'] }, 'columns[1]');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', '-'], fields: ['b'] }, 'fields[0]');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', 'b'], tsColumn: 'c' }, 'tsColumn');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', 'b'], tsColumn: 'a', fields: ['a'] }, 'fields[0]');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a'], tsColumn: 'a' }, 'fields');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', 'b'], delimiter: '.' }, 'delimiter');
  configInvalid({ kind: 'csv', stream: 's', columns: ['a', 'b'], delimiter: ',,' }, 'delimiter');
  configInvalid({ kind: 'kv', stream: 's', fields: [] }, 'fields');
  configInvalid({ kind: 'kv', stream: 's', fields: ['a', 'a'] }, 'fields');
  configInvalid({ kind: 'kv', stream: 's', fields: ['a'], tsKey: 'a' }, 'tsKey');
  configInvalid({ kind: 'kv', stream: 's', separator: '=' }, 'separator');
});

test('nmea: the classic GGA and RMC sentences decode to the documented fix', () => {
  const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
  const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
  assert.equal(nmeaChecksum(gga.slice(1, gga.indexOf('*'))), '47');
  assert.equal(nmeaChecksum(rmc.slice(1, rmc.indexOf('*'))), '6A');

  const p = createLineParser({ kind: 'nmea', stream: 'boat/gps' });
  const g = one(p(gga, NOW));
  assert.equal(g.stream, 'boat/gps');
  assert.equal(g.ts, Date.UTC(2024, 4, 1, 12, 35, 19)); // GGA time on the date of `now`
  assert.equal(g.quality, 1);
  const gv = g.values!;
  assert.ok(Math.abs(gv.lat! - 48.1173) < 1e-9);
  assert.ok(Math.abs(gv.lon! - 11.516666666) < 1e-8);
  assert.equal(gv.alt, 545.4);
  assert.equal(gv.fixQuality, 1);
  assert.equal(gv.satellites, 8);
  assert.equal(gv.hdop, 0.9);

  const r = one(parseNmeaSentence(rmc + '\r', NOW, 'gps'));
  assert.equal(r.ts, Date.UTC(1994, 2, 23, 12, 35, 19));
  const rv = r.values!;
  assert.ok(Math.abs(rv.lat! - 48.1173) < 1e-9);
  assert.ok(Math.abs(rv.lon! - 11.516666666) < 1e-8);
  assert.equal(rv.speedKn, 22.4);
  assert.ok(Math.abs(rv.speedMs! - (22.4 * 1852) / 3600) < 1e-12);
  assert.equal(rv.course, 84.4);
  // Checksum hex digits in lower case are fine.
  assert.ok(parseNmeaSentence(rmc.replace('*6A', '*6a'), NOW).ok);
});

test('nmea: any talker, southern and western fixes, empty optional fields, midnight, fractional seconds', () => {
  for (const talker of ['GN', 'GL', 'GA', 'BD']) {
    const v = one(parseNmeaSentence(nmea(`${talker}GGA,001500.00,3351.120,S,15112.600,W,2,12,0.6,-12.0,M,,,,`), NOW)).values!;
    assert.ok(Math.abs(v.lat! + 33.852) < 1e-9);
    assert.ok(Math.abs(v.lon! + 151.21) < 1e-9);
    assert.equal(v.alt, -12);
    assert.equal(v.fixQuality, 2);
  }
  // No altitude, satellites or hdop: left out of values.
  assert.deepEqual(Object.keys(one(parseNmeaSentence(nmea('GPGGA,120000,4807.038,N,01131.000,E,1,,,,,,,,'), NOW)).values!).sort(), ['fixQuality', 'lat', 'lon']);
  // A fix from just before midnight read just after it belongs to the day before.
  const justAfter = Date.UTC(2024, 4, 2, 0, 0, 1);
  assert.equal(one(parseNmeaSentence(nmea('GPGGA,235959.50,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), justAfter)).ts, Date.UTC(2024, 4, 1, 23, 59, 59, 500));
  const justBefore = Date.UTC(2024, 4, 1, 23, 59, 59);
  assert.equal(one(parseNmeaSentence(nmea('GPGGA,000001,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), justBefore)).ts, Date.UTC(2024, 4, 2, 0, 0, 1));
  // RMC standing still (no course), NMEA 2.3 mode field, 2000s date.
  const still = one(parseNmeaSentence(nmea('GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,,091202,,,A'), NOW));
  assert.equal(still.ts, Date.UTC(2002, 11, 9, 8, 35, 59));
  assert.deepEqual(Object.keys(still.values!).sort(), ['lat', 'lon', 'speedKn', 'speedMs']);
});

test('nmea rejects: checksum, ignored-sentence, no-fix, bad-sentence, bad-timestamp, empty-line', () => {
  const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
  rejected(parseNmeaSentence(gga.replace('*47', '*48'), NOW), 'checksum');
  rejected(parseNmeaSentence(gga.replace('4807.038', '4807.039'), NOW), 'checksum');
  rejected(parseNmeaSentence(gga.slice(0, gga.indexOf('*')), NOW), 'checksum');
  rejected(parseNmeaSentence(gga.replace('*47', '*4'), NOW), 'checksum');
  rejected(parseNmeaSentence(gga.replace('*47', '*ZZ'), NOW), 'checksum');
  rejected(parseNmeaSentence('$GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45*75', NOW), 'ignored-sentence');
  rejected(parseNmeaSentence(nmea('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K'), NOW), 'ignored-sentence');
  rejected(parseNmeaSentence(nmea('PUBX,00,081350.00,4717.113210,N'), NOW), 'ignored-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,,,,,0,00,99.99,,,,,,'), NOW), 'no-fix');
  rejected(parseNmeaSentence(nmea('GPRMC,123519,V,,,,,,,230394,,,N'), NOW), 'no-fix');
  rejected(parseNmeaSentence(nmea('GPRMC,123519,A,4807.038,N,01131.000,E,0,0,230394,,,N'), NOW), 'no-fix');
  rejected(parseNmeaSentence('GPGGA,123519*47', NOW), 'bad-sentence');
  rejected(parseNmeaSentence('$GPGGA,é*47', NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('G1GGA,123519'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4860.000,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4807.038,N,1131.000,E,1,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,F,46.9,M,,'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPRMC,123519,A,4807.038,N,01131.000,E,-1,084.4,230394,003.1,W'), NOW), 'bad-sentence');
  rejected(parseNmeaSentence(nmea('GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,310294,003.1,W'), NOW), 'bad-timestamp');
  rejected(parseNmeaSentence(nmea('GPRMC,,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W'), NOW), 'bad-timestamp');
  rejected(parseNmeaSentence(nmea('GPGGA,246000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'), NOW), 'bad-timestamp');
  rejected(parseNmeaSentence('', NOW), 'empty-line');
});

// --- LineFramer ----------------------------------------------------------------------------------------------

type Framed = { lines: string[]; oversize: number; undecodable: number; tail: string | null };

function frameAll(chunks: Uint8Array[], max: number): Framed {
  const f = new LineFramer(max);
  const out: Framed = { lines: [], oversize: 0, undecodable: 0, tail: null };
  for (const c of chunks) {
    const r = f.push(c);
    out.lines.push(...r.lines);
    out.oversize += r.oversize;
    out.undecodable += r.undecodable;
  }
  out.tail = f.flush();
  return out;
}

function concat(...parts: (string | number[])[]): Uint8Array {
  const bytes = parts.flatMap((p) => (typeof p === 'string' ? [...enc.encode(p)] : p));
  return Uint8Array.from(bytes);
}

test('LineFramer: the same lines whatever the chunking (every split point, byte by byte)', () => {
  const input = concat(
    '{"t":1}\r\n',
    'plain\n',
    '\n',
    'crlf-ending\r\n',
    'grüße 温度 🌡\n',
    'inner\rcr\n',
    [0x62, 0x61, 0x64, 0xff, 0x0a], // 'bad' + invalid UTF-8
    [0xe6, 0xb8, 0x0a], // a truncated multi-byte character
    'x'.repeat(40) + '\n', // oversize for max 16
    'exactly-16-bytes\r\n',
    'exactly-17-bytes!\r\n',
    'sixteen-bytes-ab\r\rX\n',
    'tail-no-nl',
  );
  const exp24: Framed = {
    lines: ['{"t":1}', 'plain', '', 'crlf-ending', 'grüße 温度 🌡', 'inner\rcr', 'exactly-16-bytes', 'exactly-17-bytes!', 'sixteen-bytes-ab\r\rX'],
    oversize: 1,
    undecodable: 2,
    tail: 'tail-no-nl',
  };
  // With a 16-byte limit the 17+ byte lines go too (the thermometer line is 19 bytes), and 'exactly-16-bytes'
  // still fits: its '\r' belongs to the terminator.
  const exp16: Framed = { ...exp24, lines: ['{"t":1}', 'plain', '', 'crlf-ending', 'inner\rcr', 'exactly-16-bytes'], oversize: 4 };
  const max = 24;
  assert.deepEqual(frameAll([input], max), exp24);
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(frameAll([input.subarray(0, i), input.subarray(i)], max), exp24, `split at ${i}`);
  }
  for (let i = 0; i <= input.length; i += 7) {
    for (let j = i; j <= input.length; j += 5) {
      assert.deepEqual(frameAll([input.subarray(0, i), input.subarray(i, j), input.subarray(j)], max), exp24, `split at ${i}, ${j}`);
    }
  }
  assert.deepEqual(frameAll([...input].map((b) => Uint8Array.of(b)), max), exp24, 'byte by byte');

  assert.deepEqual(frameAll([input], 16), exp16);
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(frameAll([input.subarray(0, i), input.subarray(i)], 16), exp16, `split at ${i} (max 16)`);
  }
  assert.deepEqual(frameAll([...input].map((b) => Uint8Array.of(b)), 16), exp16, 'byte by byte (max 16)');
});

test('LineFramer: an oversize line is dropped up to its newline, counted once, and the next line still parses', () => {
  const parse = createLineParser({ kind: 'jsonl', stream: 's', fields: { t: 't' } });
  const f = new LineFramer(4096);
  let oversize = 0;
  const lines: string[] = [];
  const junk = enc.encode('y'.repeat(1000));
  for (let i = 0; i < 1000; i++) {
    // 1 MB without a newline: counted when first seen, nothing returned, nothing kept.
    const r = f.push(junk);
    oversize += r.oversize;
    lines.push(...r.lines);
  }
  assert.equal(oversize, 1);
  assert.deepEqual(lines, []);
  const r = f.push(enc.encode('still junk\n{"t":42}\n'));
  assert.equal(r.oversize, 0);
  assert.deepEqual(r.lines, ['{"t":42}']);
  assert.equal(one(parse(r.lines[0]!, NOW)).value, 42);
  // A whole oversize line inside one chunk, between two good ones.
  const r2 = f.push(enc.encode(`{"t":1}\n${'z'.repeat(5000)}\n{"t":2}\n`));
  assert.deepEqual(r2, { lines: ['{"t":1}', '{"t":2}'], oversize: 1, undecodable: 0 });
  // The tail of an oversize line is not returned by flush.
  f.push(enc.encode('w'.repeat(5000)));
  assert.equal(f.flush(), null);
  assert.equal(f.flush(), null);
  assert.throws(() => new LineFramer(0), (err: unknown) => err instanceof SensorError && err.code === 'SENSOR_CONFIG_INVALID');
});

// --- fuzz ----------------------------------------------------------------------------------------------------

const FUZZ_CONFIGS: LineFormatConfig[] = [
  { kind: 'jsonl', stream: 'j', fields: { t: 'd.t', h: 'h' }, tsField: 'ts' },
  { kind: 'jsonl', stream: 'j1', fields: { t: 't' } },
  { kind: 'csv', stream: 'c', columns: ['ts', 'a', '-', 'b'], tsColumn: 'ts' },
  { kind: 'csv', stream: 'c1', columns: ['a'], delimiter: ';' },
  { kind: 'kv', stream: 'k', tsKey: 'ts' },
  { kind: 'kv', stream: 'k1', fields: ['t', 'h'], separator: '|' },
  { kind: 'nmea', stream: 'n' },
];

const SEEDS = [
  '{"d":{"t":21.5},"h":40,"ts":1714560000000}',
  '{"t":-1e3}',
  '1714560000000,1.5,x,2',
  '2024-05-01T10:00:00Z,1,,2',
  '3.25',
  't=1 h=2 ts=1714560000000',
  't=1|h=2',
  '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47',
  '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A',
  nmea('GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,,091202,,,A'),
];
const ALPHABET = '0123456789.,;:=|-+eE*$ \t\r\n{}[]"\\xNSEWAVGPRMC';

function mutate(rand: () => number, s: string): string {
  const chars = [...s];
  const edits = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rand() * (chars.length + 1));
    const c = ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
    const op = rand();
    if (op < 0.33) chars.splice(at, 1);
    else if (op < 0.66) chars.splice(at, 0, c);
    else chars[at] = c;
  }
  return chars.join('');
}

test('fuzz: random and mutated bytes through LineFramer and every parser never throw and give known reasons (6000 chunks)', { timeout: 60_000 }, () => {
  const rand = mulberry32(0xda7a6a7e);
  const parsers = FUZZ_CONFIGS.map((c) => createLineParser(c));
  const known = new Set<string>(PARSE_REJECT_REASONS);
  const framer = new LineFramer(256);
  const seen = new Map<string, number>();
  let lines = 0;
  // A fixed number of chunks, not a time budget: the same inputs on a loaded machine as on a quiet one.
  for (let chunks = 0; chunks < 6000; chunks++) {
    let chunk: Uint8Array;
    const kind = rand();
    if (kind < 0.3) {
      chunk = new Uint8Array(1 + Math.floor(rand() * 300));
      for (let i = 0; i < chunk.length; i++) chunk[i] = rand() < 0.05 ? 0x0a : Math.floor(rand() * 256);
    } else {
      const seed = SEEDS[Math.floor(rand() * SEEDS.length)]!;
      chunk = enc.encode((kind < 0.5 ? seed : mutate(rand, seed)) + (rand() < 0.9 ? '\n' : ''));
    }
    // Feed it in random pieces.
    let off = 0;
    while (off < chunk.length) {
      const n = 1 + Math.floor(rand() * chunk.length);
      const r = framer.push(chunk.subarray(off, off + n));
      off += n;
      for (const line of r.lines) {
        lines++;
        for (const parse of parsers) {
          const res = parse(line, NOW);
          if (res.ok) {
            seen.set('ok', (seen.get('ok') ?? 0) + 1);
            for (const rd of res.readings) {
              assert.ok(Number.isFinite(rd.ts), line);
              assert.ok((rd.value === undefined) !== (rd.values === undefined), line);
              if (rd.value !== undefined) assert.ok(Number.isFinite(rd.value), line);
              for (const v of Object.values(rd.values ?? {})) assert.ok(Number.isFinite(v), line);
            }
          } else {
            assert.ok(known.has(res.reason), `unknown reason '${res.reason}' for ${JSON.stringify(line)}`);
            assert.equal(typeof res.detail, 'string');
            seen.set(res.reason, (seen.get(res.reason) ?? 0) + 1);
          }
        }
      }
    }
  }
  assert.ok(lines > 1000, `only ${lines} lines from 6000 chunks`);
  assert.ok((seen.get('ok') ?? 0) > 0, 'the fuzz never produced a good line');
  assert.ok(seen.size >= 8, `few distinct outcomes: ${[...seen.keys()].join(', ')}`);
});
