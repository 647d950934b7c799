// The status of a real `datagate dev` from outside: GET /api/v0/status shows the simulator connected and the
// pipeline's counters growing, GET /metrics is well-formed Prometheus text with datagate_lbft_height growing,
// both need the token of api.json, and `datagate status` prints the JSON (exit 0), then exit 2 once the node
// has stopped. With a 64 KiB store bound and a fast simulator under stop-accepting, the store alarm goes on:
// `datagate status` exits 1 saying so, and datagate_pipeline_alarm{bound="store"} is 1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { NodeStatus } from '../../gateway/api/status-api.ts';
import { startDev } from '../helpers/dev-process.ts';
import { SAMPLE_LINE, parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The API of the node on `dataDir` and a GET on it with its token. */
function apiOf(dataDir: string) {
  const api = JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string; token: string };
  const get = (path: string, token: string | null = api.token) => fetch(`${api.url}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const status = async () => {
    const res = await get('/api/v0/status');
    assert.equal(res.status, 200);
    return (await res.json()) as NodeStatus;
  };
  return { api, get, status };
}

/** Poll `probe` every 250 ms until it returns a value (not undefined), for at most `ms`. */
async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>, output: () => string): Promise<T> {
  for (const deadline = Date.now() + ms; ; await sleep(250)) {
    const v = await probe();
    if (v !== undefined) return v;
    assert.ok(Date.now() < deadline, `${what} within ${ms} ms:\n${output()}`);
  }
}

test('a running node shows its status and metrics; datagate status prints them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-status-'));
  const dataDir = join(dir, 'node');
  const node = await startDev(['--data-dir', dataDir, '--block-period', '300']);
  t.after(async () => {
    await node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const { get, status } = apiOf(dataDir);

  const first = await until('the simulator connected and readings ingested', 15_000, async () => {
    const s = await status();
    return s.sensors.some((d) => d.name === 'simulator' && d.status.state === 'connected') && s.pipeline.ingested > 0 ? s : undefined;
  }, node.output);
  assert.deepEqual(first.limits, { maxQueueBytes: 256 * 1024 * 1024, maxStoreBytes: 4 * 1024 * 1024 * 1024, policy: 'stop-accepting', minFreeBytes: 64 * 1024 * 1024 });
  assert.equal(first.pipeline.alarm, false);
  const second = await until('more readings ingested and a block committed', 10_000, async () => {
    const s = await status();
    return s.pipeline.ingested > first.pipeline.ingested && s.pipeline.commits > first.pipeline.commits && s.chain.head >= 1 ? s : undefined;
  }, node.output);
  const sim = (s: NodeStatus) => s.sensors.find((d) => d.name === 'simulator')!;
  assert.ok(sim(second).counters.readings > sim(first).counters.readings);

  const res = await get('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const line of text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) assert.match(line, SAMPLE_LINE);
  const m = parsePrometheusText(text);
  assert.ok(sampleValue(m, 'datagate_pipeline_ingested_total') >= second.pipeline.ingested);
  assert.equal(sampleValue(m, 'datagate_sensor_connected', { driver: 'simulator' }), 1);
  assert.ok(sampleValue(m, 'datagate_sensor_readings_total', { driver: 'simulator' }) > 0);
  assert.equal(sampleValue(m, 'datagate_pipeline_alarm', { bound: 'store' }), 0);
  assert.ok(sampleValue(m, 'datagate_chain_head') >= second.chain.head);
  // Consensus: the height the committee decides grows from one scrape to a later one.
  const height = sampleValue(m, 'datagate_lbft_height');
  assert.ok(height >= 1);
  assert.equal(sampleValue(m, 'datagate_lbft_peers', { state: 'down' }), 0);
  const later = await until('datagate_lbft_height to grow', 10_000, async () => {
    const n = parsePrometheusText(await (await get('/metrics')).text());
    return sampleValue(n, 'datagate_lbft_height') > height ? n : undefined;
  }, node.output);
  assert.ok(sampleValue(later, 'datagate_lbft_rounds_per_height_count') >= 1);
  assert.equal(sampleValue(later, 'datagate_lbft_rounds_per_height_bucket', { le: '+Inf' }), sampleValue(later, 'datagate_lbft_rounds_per_height_count'));

  for (const path of ['/metrics', '/api/v0/status']) {
    assert.equal((await get(path, null)).status, 401, path);
    assert.equal((await get(path, 'f'.repeat(64))).status, 401, path);
  }

  const cli = await run(['status', '--data-dir', dataDir]);
  assert.equal(cli.code, 0, cli.stderr);
  const printed = JSON.parse(cli.stdout) as NodeStatus;
  assert.ok(printed.pipeline.ingested >= second.pipeline.ingested);
  assert.equal(sim(printed).status.state, 'connected');

  const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
  assert.equal(statSync(join(dataDir, 'api-token')).mode & 0o777, 0o600);
  assert.equal(apiOf(dataDir).api.token, token, 'api.json carries the token of api-token');
  assert.equal(await node.stop(), 0);
  const stopped = await run(['status', '--data-dir', dataDir]);
  assert.equal(stopped.code, 2, stopped.stderr);
  assert.match(stopped.stderr, /\[NODE_NOT_RUNNING\]/);

  // The token outlives a restart (a scraper's credentials file stays valid); a token file open to others is refused.
  const again = await startDev(['--data-dir', dataDir, '--block-period', '300']);
  assert.equal(apiOf(dataDir).api.token, token);
  assert.equal((await apiOf(dataDir).get('/metrics')).status, 200);
  assert.equal(await again.stop(), 0);
  chmodSync(join(dataDir, 'api-token'), 0o644);
  await assert.rejects(startDev(['--data-dir', dataDir]), /api-token may be read by others \(mode 644\); chmod 600 it[\s\S]*API_TOKEN_INVALID/);
});

test('near the store bound the alarm shows: datagate status exits 1 and the alarm metric is 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-status-alarm-'));
  const dataDir = join(dir, 'node');
  const config = join(dir, 'gateway.json');
  writeFileSync(config, JSON.stringify({
    pipeline: { segmentSeconds: 1, maxQueueBytes: 1_048_576, maxStoreBytes: 65_536, policy: 'stop-accepting' },
    sensors: { sources: [{ kind: 'simulator', name: 'fast', streams: [{ stream: 'fast/sine', shape: 'sine', rateHz: 2000, min: 0, max: 1 }] }] },
  }));
  // At error level: the readings refused once the store is full are logged one by one at warn.
  const node = await startDev(['--config', config, '--data-dir', dataDir, '--solo', '--log-level', 'error']);
  t.after(async () => {
    await node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const { get, status } = apiOf(dataDir);

  const alarmed = await until('the store alarm', 20_000, async () => {
    const s = await status();
    return s.pipeline.alarmOn.includes('store') ? s : undefined;
  }, node.output);
  assert.equal(alarmed.pipeline.alarm, true);
  assert.ok(alarmed.pipeline.alarms >= 1);
  assert.deepEqual(alarmed.limits, { maxQueueBytes: 1_048_576, maxStoreBytes: 65_536, policy: 'stop-accepting', minFreeBytes: 64 * 1024 * 1024 });

  const cli = await run(['status', '--data-dir', dataDir]);
  assert.equal(cli.code, 1, cli.stdout + cli.stderr);
  assert.match(cli.stderr, /^datagate status: pipeline alarm on: store \d+ of 65536 bytes, policy stop-accepting/);
  assert.equal(cli.stderr.trim().split('\n').length, 1, 'one line');
  assert.ok((JSON.parse(cli.stdout) as NodeStatus).pipeline.alarmOn.includes('store'));

  const m = parsePrometheusText(await (await get('/metrics')).text());
  assert.equal(sampleValue(m, 'datagate_pipeline_alarm', { bound: 'store' }), 1);
  assert.equal(sampleValue(m, 'datagate_pipeline_max_store_bytes'), 65_536);
  assert.equal(sampleValue(m, 'datagate_pipeline_min_free_bytes'), 64 * 1024 * 1024);
  assert.ok(sampleValue(m, 'datagate_pipeline_free_bytes') > 0);
  assert.ok(sampleValue(m, 'datagate_pipeline_alarms_total') >= 1);
});
