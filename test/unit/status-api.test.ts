// The status API (gateway/api/status-api.ts) on a real HTTP server with a scripted pipeline and drivers: the token,
// method and body checks on both paths, the JSON of GET /api/v0/status and the metrics of GET /metrics for a
// known status. `datagate status` (gateway/cli/status-command.ts) against it: exit 0, 1 on an alarm or failure with
// one line on stderr, 2 without api.json, with a stale one nobody answers at, or with a wrong token.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../../gateway/cli/args.ts';
import type { PipelineStatus } from '../../gateway/pipeline/pipeline-options.ts';
import type { StatusSources } from '../../gateway/api/status-api.ts';
import { createStatusApiHandler, nodeStatus } from '../../gateway/api/status-api.ts';
import { statusCommand } from '../../gateway/cli/status-command.ts';
import type { DriverCounters, DriverStatus } from '../../sensors/index.ts';
import { tempDir } from '../helpers/chain.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const TOKEN = 'b'.repeat(64);
const AUTH = { authorization: `Bearer ${TOKEN}` };

const PIPELINE: PipelineStatus = {
  ingested: 1200, rejectedInvalid: 2, rejectedFull: 30, commits: 90, backlogWaits: 1, sealed: 11, stored: 10, droppedSegments: 3, droppedReadings: 300,
  sealErrors: 4, storeErrors: 5, alarms: 6, queueBytes: 7000, queuedReadings: 70, storeBytes: 60_000, openSegments: 2, awaitingSeal: 1, awaitingStore: 1,
  freeBytes: 90_000_000, alarm: true, alarmOn: ['store'], full: true, failed: null,
};

/** Scripted sources: `state.pipeline` and the drivers' status can be changed between requests. */
function sources() {
  const state = {
    pipeline: PIPELINE,
    head: 17n,
    barn: { state: 'connected', since: 1_700_000_000_000 } as DriverStatus,
    odd: { state: 'retrying', reason: 'ENOENT', nextAttemptAt: 1, attempt: 3 } as DriverStatus,
  };
  const barnCounters: DriverCounters = { readings: 500, rejects: { 'bad-json': 3, checksum: 1 }, reconnects: 2 };
  const src: StatusSources = {
    pipeline: { status: () => state.pipeline },
    drivers: [
      { name: 'barn', status: () => state.barn, counters: () => barnCounters },
      { name: 'odd "name"\\', status: () => state.odd, counters: () => ({ readings: 0, rejects: {}, reconnects: 0 }) },
    ],
    limits: { maxQueueBytes: 1_048_576, maxStoreBytes: 65_536, policy: 'stop-accepting', minFreeBytes: 67_108_864 },
    chainHead: () => state.head,
  };
  return { state, src };
}

/** Serve the handler on a free port (418 for paths it leaves alone); returns the base URL. */
async function serve(t: { after(fn: () => Promise<void>): void }, src: StatusSources | undefined): Promise<string> {
  const handler = createStatusApiHandler({ ...(src !== undefined ? { data: src } : {}), token: TOKEN });
  const server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(418).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a node without a data plane: /api/v0/status says so (404 NO_DATA_PLANE), /metrics still answers', { timeout: 10_000 }, async (t) => {
  const url = await serve(t, undefined);
  const status = await fetch(`${url}/api/v0/status`, { headers: AUTH });
  assert.equal(status.status, 404);
  assert.equal(((await status.json()) as { code: string }).code, 'NO_DATA_PLANE');
  const metrics = await fetch(`${url}/metrics`, { headers: AUTH });
  assert.equal(metrics.status, 200);
  assert.doesNotMatch(await metrics.text(), /datagate_pipeline/);
  assert.equal((await fetch(`${url}/metrics`)).status, 401);
});

test('GET /api/v0/status answers the snapshot as JSON', async (t) => {
  const { src } = sources();
  const url = await serve(t, src);
  const res = await fetch(`${url}/api/v0/status`, { headers: AUTH });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = await res.json();
  assert.deepEqual(body, {
    pipeline: PIPELINE,
    sensors: [
      { name: 'barn', status: { state: 'connected', since: 1_700_000_000_000 }, counters: { readings: 500, rejects: { 'bad-json': 3, checksum: 1 }, reconnects: 2 } },
      { name: 'odd "name"\\', status: { state: 'retrying', reason: 'ENOENT', nextAttemptAt: 1, attempt: 3 }, counters: { readings: 0, rejects: {}, reconnects: 0 } },
    ],
    limits: { maxQueueBytes: 1_048_576, maxStoreBytes: 65_536, policy: 'stop-accepting', minFreeBytes: 67_108_864 },
    chain: { head: 17 },
  });
  assert.deepEqual(body, JSON.parse(JSON.stringify(nodeStatus(src))));
  assert.equal((await fetch(`${url}/api/v0/status?x=1`, { headers: AUTH })).status, 200, 'a query string does not change the path');
  assert.equal((await fetch(`${url}/api/v0/statusx`, { headers: AUTH })).status, 418, 'other paths are left to the next handler');
  assert.equal((await fetch(`${url}/metricsx`, { headers: AUTH })).status, 418);
});

test('GET /metrics renders a known status in the Prometheus text format', async (t) => {
  const { src } = sources();
  const url = await serve(t, src);
  const res = await fetch(`${url}/metrics`, { headers: AUTH });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  const m = parsePrometheusText(text);
  const counters = {
    ingested: 1200, rejected_invalid: 2, rejected_full: 30, commits: 90, backlog_waits: 1, sealed: 11, stored: 10,
    dropped_segments: 3, dropped_readings: 300, seal_errors: 4, store_errors: 5, alarms: 6,
  };
  for (const [name, value] of Object.entries(counters)) {
    assert.equal(m.types.get(`datagate_pipeline_${name}_total`), 'counter', name);
    assert.equal(sampleValue(m, `datagate_pipeline_${name}_total`), value, name);
  }
  const gauges = { queue_bytes: 7000, queued_readings: 70, store_bytes: 60_000, open_segments: 2, awaiting_seal: 1, awaiting_store: 1, full: 1, failed: 0, max_queue_bytes: 1_048_576, max_store_bytes: 65_536, free_bytes: 90_000_000, min_free_bytes: 67_108_864 };
  for (const [name, value] of Object.entries(gauges)) {
    assert.equal(m.types.get(`datagate_pipeline_${name}`), 'gauge', name);
    assert.equal(sampleValue(m, `datagate_pipeline_${name}`), value, name);
  }
  assert.equal(sampleValue(m, 'datagate_pipeline_alarm', { bound: 'queue' }), 0);
  assert.equal(sampleValue(m, 'datagate_pipeline_alarm', { bound: 'store' }), 1);
  assert.equal(sampleValue(m, 'datagate_pipeline_alarm', { bound: 'disk' }), 0);
  assert.equal(sampleValue(m, 'datagate_pipeline_policy', { policy: 'stop-accepting' }), 1);
  assert.equal(sampleValue(m, 'datagate_chain_head'), 17);
  assert.equal(sampleValue(m, 'datagate_sensor_readings_total', { driver: 'barn' }), 500);
  assert.equal(sampleValue(m, 'datagate_sensor_rejects_total', { driver: 'barn', reason: 'bad-json' }), 3);
  assert.equal(sampleValue(m, 'datagate_sensor_rejects_total', { driver: 'barn', reason: 'checksum' }), 1);
  assert.equal(sampleValue(m, 'datagate_sensor_reconnects_total', { driver: 'barn' }), 2);
  assert.equal(sampleValue(m, 'datagate_sensor_connected', { driver: 'barn' }), 1);
  assert.equal(sampleValue(m, 'datagate_sensor_connected', { driver: 'odd "name"\\' }), 0);
  assert.match(text, /^datagate_sensor_connected\{driver="odd \\"name\\"\\\\"\} 0$/m, 'label values escaped');
  assert.match(text, /^# TYPE datagate_sensor_rejects_total counter$/m);
  assert.ok(m.samples.every((s) => s.name.startsWith('datagate_')));
  assert.equal(m.helps.size, m.types.size, 'every family has its HELP');
});

test('both paths need the token (401), take GET only (405) and no request body (413)', async (t) => {
  const { src } = sources();
  const url = await serve(t, src);
  const wrong = { authorization: `Bearer ${'0'.repeat(TOKEN.length)}` };
  for (const path of ['/api/v0/status', '/metrics']) {
    for (const headers of [{}, wrong, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }]) {
      const res = await fetch(`${url}${path}`, { headers });
      assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
      const body = (await res.json()) as { code: string };
      assert.equal(body.code, 'UNAUTHORIZED');
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${url}${path}`, { method, headers: AUTH });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), 'GET');
      assert.equal(((await res.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
    }
    // fetch sends no body with GET: a raw request does.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${url}${path}`, { method: 'GET', headers: { ...AUTH, 'content-length': '5' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('hello');
    });
    assert.equal(status, 413, path);
  }
});

test('a status that cannot be read answers 500 with the error', async (t) => {
  const { src } = sources();
  const url = await serve(t, { ...src, pipeline: { status: () => { throw new Error('boom'); } } });
  const res = await fetch(`${url}/metrics`, { headers: AUTH });
  assert.equal(res.status, 500);
  assert.match(((await res.json()) as { error: string }).error, /boom/);
});

test('datagate status: 0 when fine, 1 on an alarm or failure (one line on stderr), 2 when no status can be had, 3 while a source retries or has failed', async (t) => {
  const dataDir = tempDir(t);
  const cli = async (args: string[] = []) => {
    let out = '';
    let err = '';
    const code = await runCli(['status', '--data-dir', dataDir, ...args], [statusCommand], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
    return { code, out, err };
  };
  const none = await cli();
  assert.equal(none.code, 2);
  assert.match(none.err, /\[NODE_NOT_RUNNING\]/);
  assert.match(none.err, /api\.json/);
  assert.equal(none.out, '');

  const { state, src } = sources();
  const retryingOdd = state.odd;
  state.odd = { state: 'connected', since: 1 };
  const url = await serve(t, src);
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ url, token: TOKEN }), { mode: 0o600 });
  const alarm = await cli();
  assert.equal(alarm.code, 1);
  assert.deepEqual(JSON.parse(alarm.out), JSON.parse(JSON.stringify(nodeStatus(src))), 'the JSON is printed whatever the exit code');
  assert.equal(alarm.out, JSON.stringify(nodeStatus(src), null, 2) + '\n', 'indented');
  assert.equal(alarm.err, 'datagate status: pipeline alarm on: store 60000 of 65536 bytes, policy stop-accepting; readings are being rejected\n');

  state.pipeline = { ...PIPELINE, alarmOn: ['disk'] };
  const disk = await cli();
  assert.equal(disk.code, 1);
  assert.match(disk.err, /pipeline alarm on: disk 90000000 bytes free, reserve \d+,/, 'a disk alarm is named as one, not as the store');

  state.pipeline = PIPELINE;
  state.odd = retryingOdd;
  assert.equal((await cli()).code, 1, 'the pipeline alarm outweighs a source retrying');
  state.pipeline = { ...PIPELINE, alarm: false, alarmOn: [], full: false };
  const retrying = await cli();
  assert.equal(retrying.code, 3, 'a source retrying');
  assert.match(retrying.err, /'odd "name"\\'/, 'naming the source');
  state.odd = { state: 'failed', reason: 'port settings refused' };
  assert.equal((await cli()).code, 3, 'a source failed');
  state.odd = { state: 'starting' };
  const fine = await cli();
  assert.equal(fine.code, 0);
  assert.equal(fine.err, '');
  assert.equal((JSON.parse(fine.out) as { sensors: { name: string }[] }).sensors[0]!.name, 'barn');

  state.pipeline = { ...PIPELINE, alarm: false, alarmOn: [], full: false, failed: 'IO error: disk\nfull' };
  const failed = await cli();
  assert.equal(failed.code, 1);
  assert.equal(failed.err, 'datagate status: the pipeline has failed and takes no readings: IO error: disk full\n');

  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ url, token: 'c'.repeat(64) }), { mode: 0o600 });
  const refused = await cli();
  assert.equal(refused.code, 2);
  assert.match(refused.err, /\[NODE_API_REFUSED\]/);

  // api.json left from a node that is gone: nobody answers at its URL.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, token: TOKEN }), { mode: 0o600 });
  const stale = await cli();
  assert.equal(stale.code, 2);
  assert.match(stale.err, /\[NODE_API_UNREACHABLE\]/);
  assert.match(stale.err, /ECONNREFUSED/);

  writeFileSync(join(dataDir, 'api.json'), 'not json');
  const garbled = await cli();
  assert.equal(garbled.code, 2);
  assert.match(garbled.err, /\[NODE_NOT_RUNNING\]/);
});
