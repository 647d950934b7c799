// `datagate sensors watch` as a real process: readings from a serial port (socat PTY) and from a config file,
// NDJSON on stdout, rejects and status on stderr; a bad config is named by file, line and field.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ptySkipReason, startPtyPair } from '../helpers/pty.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

function watch(args: string[], whenStarted?: (stderr: () => string) => Promise<void>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'sensors', 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sensors watch did not finish:\n${stderr}`));
    }, 30_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (!started && /: connected/.test(stderr) && whenStarted !== undefined) {
        started = true;
        whenStarted(() => stderr).catch(reject);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('--serial with --format nmea prints NDJSON readings and reports rejects', { skip: ptySkipReason() }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-watch-'));
  const pty = await startPtyPair(dir);
  t.after(async () => {
    await pty.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const out = await watch(['--serial', pty.devPath, '--format', 'nmea', '--stream', 'truck/gps', '--ndjson', '--count', '2'], async () => {
    await pty.write('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n');
    await pty.write('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48\r\n');
    await pty.write('$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n');
  });
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { stream: string; seq: number; values: Record<string, number> });
  assert.equal(lines.length, 2);
  assert.deepEqual(lines.map((l) => [l.stream, l.seq]), [['truck/gps', 0], ['truck/gps', 1]]);
  assert.equal(lines[0]!.values['alt'], 545.4);
  assert.equal(lines[1]!.values['speedKn'], 22.4);
  assert.match(out.stderr, /rejected checksum/);
  assert.match(out.stderr, /2 readings, 1 rejected/);
});

test('--config runs the sources of the gateway config; a bad config names file, line and field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-watch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'gateway.json');
  writeFileSync(good, JSON.stringify({ sensors: { sources: [{ kind: 'simulator', name: 'sim', streams: [{ stream: 'a', shape: 'sine', rateHz: 50 }, { stream: 'b', shape: 'step', rateHz: 50 }] }] } }));
  const out = await watch(['--config', good, '--ndjson', '--count', '6']);
  assert.equal(out.code, 0, out.stderr);
  const streams = new Set(out.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { stream: string }).stream));
  assert.deepEqual([...streams].sort(), ['a', 'b']);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{\n  "sensors": {"sources": [{"kind": "serial", "name": "s", "path": "/dev/x", "baudRate": 9600,\n    "format": {"kind": "csv", "stream": "s"}}]}\n}\n');
  const err = await watch(['--config', bad]);
  assert.equal(err.code, 1);
  assert.match(err.stderr, /bad\.json:3:15: missing required field sensors\.sources\[0\]\.format\.columns/);
  const none = await watch([]);
  assert.equal(none.code, 2);
});
