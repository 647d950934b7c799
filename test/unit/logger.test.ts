// Unit tests of the gateway logger: JSON and human lines, level filtering, child fields, redaction,
// rendering of bigint / bytes / errors, and that logging never throws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, redact, isSecretKey, type LogStream } from '../../gateway/logger.ts';
import { DatagateError } from '../../chain/index.ts';

function capture(isTTY = false): LogStream & { lines: string[]; json(): Record<string, unknown>[] } {
  const lines: string[] = [];
  return {
    isTTY,
    lines,
    write(chunk: string) {
      lines.push(chunk);
      return true;
    },
    json() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

const fixed = new Date(2026, 10, 26, 9, 5, 7, 42);
const now = () => fixed;

test('JSON lines carry time, level, msg and fields; one line per entry', () => {
  const stream = capture();
  const log = createLogger({ format: 'json', stream, now, fields: { node: 'gw1' } });
  log.info('block sealed', { height: 12, ok: true });
  assert.equal(stream.lines.length, 1);
  assert.ok(stream.lines[0]?.endsWith('\n'));
  assert.deepEqual(stream.json()[0], { t: fixed.toISOString(), level: 'info', msg: 'block sealed', node: 'gw1', height: 12, ok: true });
});

test('bigint as decimal string, bytes as 0x-hex, Error as {code, message}', () => {
  const stream = capture();
  const log = createLogger({ format: 'json', stream, now });
  const err = new DatagateError('TX_NONCE_TOO_LOW', 'nonce 3 is below 5');
  log.warn('rejected', { value: 10n ** 30n, raw: new Uint8Array([0, 1, 0xab]), err, plain: new Error('boom') });
  const [line] = stream.json();
  assert.equal(line?.value, '1000000000000000000000000000000');
  assert.equal(line?.raw, '0x0001ab');
  assert.deepEqual(line?.err, { code: 'TX_NONCE_TOO_LOW', message: 'nonce 3 is below 5' });
  assert.deepEqual(line?.plain, { message: 'boom' });
});

test('levels below the threshold are dropped', () => {
  const stream = capture();
  const log = createLogger({ level: 'warn', format: 'json', stream, now });
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  assert.deepEqual(stream.json().map((l) => l.level), ['warn', 'error']);
  const all = capture();
  const debug = createLogger({ level: 'debug', format: 'json', stream: all, now });
  debug.debug('d');
  assert.equal(all.lines.length, 1);
});

test('child loggers merge fields; call fields win; reserved keys are not overwritten', () => {
  const stream = capture();
  const log = createLogger({ format: 'json', stream, now, fields: { app: 'datagate' } });
  const rpc = log.child({ module: 'rpc' }).child({ conn: 7 });
  rpc.info('request', { conn: 8, msg: 'sneaky', level: 'x' });
  const [line] = stream.json();
  assert.equal(line?.app, 'datagate');
  assert.equal(line?.module, 'rpc');
  assert.equal(line?.conn, 8);
  assert.equal(line?.msg, 'request');
  assert.equal(line?.level, 'info');
  assert.equal(line?._msg, 'sneaky');
});

test('secret fields are redacted at any depth, in both formats', () => {
  const stream = capture();
  const log = createLogger({ format: 'json', stream, now });
  log.info('unlocked', { privateKey: '0xdead', keystore: { path: '/k', password: 'hunter2' }, mnemonic: 'abandon', user: { PIN: '1234', name: 'op' } });
  const text = stream.lines.join('');
  assert.ok(!text.includes('0xdead') && !text.includes('hunter2') && !text.includes('abandon') && !text.includes('1234'));
  const [line] = stream.json();
  assert.equal(line?.privateKey, '[redacted]');
  assert.equal(line?.mnemonic, '[redacted]');
  assert.deepEqual(line?.user, { PIN: '[redacted]', name: 'op' });

  const human = capture();
  createLogger({ format: 'human', stream: human, now }).child({ apiSecret: 's3cret' }).info('x', { passphrase: 'pw' });
  assert.ok(!human.lines.join('').includes('s3cret') && !human.lines.join('').includes('=pw'));
  assert.match(human.lines[0] ?? '', / apiSecret=\[redacted\] passphrase=\[redacted\]\n$/);

  assert.deepEqual(redact({ seedSecret: 1n, height: 2n }), { seedSecret: '[redacted]', height: '2' });
  assert.ok(isSecretKey('soPin') && isSecretKey('signingKey') && !isSecretKey('height'));
});

test('human format: HH:MM:SS.mmm LEVEL [module] msg key=value', () => {
  const stream = capture();
  const log = createLogger({ format: 'human', stream, now }).child({ module: 'txpool' });
  log.warn('dropped tx', { hash: '0xabc', reason: 'nonce too low', n: 3n });
  assert.equal(stream.lines[0], '09:05:07.042 WARN  [txpool] dropped tx hash=0xabc reason="nonce too low" n=3\n');
});

test('human message newlines are escaped so one entry stays one line', () => {
  const stream = capture();
  createLogger({ format: 'human', stream, now }).error('line1\nFAKE 00:00:00.000 INFO forged');
  assert.equal(stream.lines.length, 1);
  assert.equal(stream.lines[0]?.split('\n').length, 2);
});

test("format 'auto' is human on a TTY and JSON otherwise", () => {
  const tty = capture(true);
  createLogger({ stream: tty, now }).info('hello');
  assert.match(tty.lines[0] ?? '', /^\d\d:\d\d:\d\d\.\d\d\d INFO {2}hello\n$/);
  const pipe = capture(false);
  createLogger({ stream: pipe, now }).info('hello');
  assert.equal(pipe.json()[0]?.msg, 'hello');
});

test('logging never throws: circular fields, throwing getters, throwing streams', () => {
  const stream = capture();
  const log = createLogger({ format: 'json', stream, now });
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  const evil = {
    get boom(): never {
      throw new Error('getter');
    },
  };
  assert.doesNotThrow(() => log.info('circular', { a, evil, list: [a, a] }));
  const [line] = stream.json();
  assert.deepEqual(line?.a, { name: 'a', self: '[circular]' });
  assert.equal(line?.evil, '[unserializable]');
  // The same object twice (not a cycle) is printed twice.
  assert.deepEqual(line?.list, [
    { name: 'a', self: '[circular]' },
    { name: 'a', self: '[circular]' },
  ]);

  const broken = createLogger({
    format: 'json',
    stream: {
      write() {
        throw new Error('EPIPE');
      },
    },
  });
  assert.doesNotThrow(() => broken.error('nowhere to go'));
  const human = capture();
  assert.doesNotThrow(() => createLogger({ format: 'human', stream: human, now }).info('x', { a }));
  assert.equal(human.lines.length, 1);
});
