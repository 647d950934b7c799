// The segments admin API (gateway/pipeline/segments-api.ts) on a real HTTP server: list, key and the live verify
// against a pipeline on LevelDB with an in-memory content store; the token, method, id, body and busy checks;
// keys zeroed after they leave and never logged. verifyPipeline's view of a moving pipeline (in flight, dropped).
// The CLI's way to a node that holds its databases: no api.json, or one nobody answers at.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Signer } from '../../chain/index.ts';
import { bytesToHex } from '../../chain/index.ts';
import { MemorySigner } from '../../device/index.ts';
import { runCli } from '../../gateway/cli/args.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import type { SegmentRecord } from '../../gateway/pipeline/pipeline.ts';
import { PipelineRuntimeError } from '../../gateway/pipeline/pipeline-errors.ts';
import type { SegmentsApiOptions } from '../../gateway/api/segments-api.ts';
import { MAX_BODY_BYTES, createSegmentsApiHandler, segmentLine } from '../../gateway/api/segments-api.ts';
import { verifyPipeline } from '../../gateway/pipeline/verify-store.ts';
import { segmentsCommand } from '../../gateway/cli/segments-commands.ts';
import { tempDir } from '../helpers/chain.ts';
import { MemoryContentStore, allSegments, fakeClock, recordingLogger, simReading } from '../helpers/pipeline-fixtures.ts';

const TOKEN = 'a'.repeat(64);
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Serve the handler on a free port (418 for paths it leaves alone); returns the base URL. */
async function serve(t: { after(fn: () => Promise<void>): void }, opts: Omit<SegmentsApiOptions, 'token'>): Promise<string> {
  const handler = createSegmentsApiHandler({ ...opts, token: TOKEN });
  const server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(418).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function openPipeline(t: { after(fn: () => Promise<void>): void }) {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const clock = fakeClock();
  const content = new MemoryContentStore();
  const p = await Pipeline.open({
    dir: join(dir, 'pipeline'), masterKeyPath: join(dir, 'master.key'), contentStore: content, signer: new MemorySigner(new Uint8Array(32).fill(7)) as Signer,
    now: clock.now, windowMs: 1000, limits: { maxQueueBytes: 64 << 20, maxStoreBytes: 64 << 20, policy: 'stop-accepting' },
  });
  cleanup.push(() => p.close());
  const dataDir = dir;
  const ingest = (stream: string, from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => p.ingest(simReading(stream, from + i, clock.now() + i))));
  return { p, content, clock, ingest, dataDir };
}

test('the segments API lists, hands out keys and verifies a running pipeline', async (t) => {
  const { p, content, ingest } = await openPipeline(t);
  await ingest('farm/temp', 0, 5);
  await ingest('farm/hum', 0, 3);
  await p.flush();
  await ingest('farm/temp', 5, 9);
  await p.flush();
  content.failAdds = 1_000; // the next segment is sealed, but cannot reach the content store: in flight
  await ingest('farm/hum', 3, 6);
  await assert.rejects(p.flush());
  const segs = await allSegments(p);
  assert.deepEqual(segs.map((s) => s.state), ['stored', 'stored', 'stored', 'sealed']);
  const log = recordingLogger();
  const url = await serve(t, { pipeline: p, contentStore: content, logger: log });

  const listed = await fetch(`${url}/api/v0/segments`, { headers: AUTH });
  assert.equal(listed.status, 200);
  assert.equal(listed.headers.get('content-type'), 'application/x-ndjson');
  assert.equal(await listed.text(), segs.map((s) => segmentLine(s) + '\n').join(''));
  const hum = await (await fetch(`${url}/api/v0/segments?stream=farm%2Fhum`, { headers: AUTH })).text();
  assert.deepEqual(hum.trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id), segs.filter((s) => s.stream === 'farm/hum').map((s) => s.id));

  const keyRes = await fetch(`${url}/api/v0/segments/1/key`, { method: 'POST', headers: AUTH });
  assert.equal(keyRes.status, 200);
  assert.equal(keyRes.headers.get('cache-control'), 'no-store');
  const key = new Uint8Array(await keyRes.arrayBuffer());
  assert.deepEqual(key, await p.segmentKey(1));
  assert.ok(!JSON.stringify(log.lines).includes(bytesToHex(key).slice(2)), 'the key is never logged');

  const verified = await fetch(`${url}/api/v0/segments/verify`, { method: 'POST', headers: AUTH });
  assert.equal(verified.status, 200);
  const report = (await verified.json()) as Record<string, unknown>;
  assert.deepEqual(
    { segments: report.segments, readings: report.readings, inFlight: report.inFlight, gaps: report.gaps, duplicates: report.duplicates, corrupt: report.corrupt, dropped: report.dropped },
    { segments: 3, readings: 12, inFlight: 1, gaps: 0, duplicates: 0, corrupt: 0, dropped: 0 },
  );

  const unknown = await fetch(`${url}/api/v0/segments/99/key`, { method: 'POST', headers: AUTH });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { code: string }).code, 'PIPELINE_SEGMENT_NOT_FOUND');
});

test('the segments API refuses a missing or wrong token, other methods, bad ids, unknown paths and large bodies', async (t) => {
  const pipeline = { segments: async function* () {}, segmentKey: () => Promise.reject(new Error('not reached')), status: () => ({ queuedReadings: 0 }) } as never;
  const url = await serve(t, { pipeline, contentStore: new MemoryContentStore() });
  for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${'b'.repeat(64)}` }, { authorization: 'Bearer short' }, { authorization: TOKEN }]) {
    for (const [method, path] of [['GET', '/api/v0/segments'], ['POST', '/api/v0/segments/0/key'], ['POST', '/api/v0/segments/verify'], ['POST', '/api/v0/segments/abc/key']]) {
      const res = await fetch(`${url}${path}`, { method, headers });
      assert.equal(res.status, 401, `${method} ${path}`);
      const body = await res.text();
      assert.ok(!body.includes(TOKEN) && !body.includes('segment 0'), body);
      assert.equal((JSON.parse(body) as { code: string }).code, 'UNAUTHORIZED');
    }
  }
  for (const [method, path, allow] of [['POST', '/api/v0/segments', 'GET'], ['DELETE', '/api/v0/segments', 'GET'], ['GET', '/api/v0/segments/0/key', 'POST'], ['GET', '/api/v0/segments/verify', 'POST']] as const) {
    const res = await fetch(`${url}${path}`, { method, headers: AUTH });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get('allow'), allow);
  }
  for (const id of ['abc', '-1', '01', '1.5', '1e3', '99999999999999999999', '', '%20']) {
    const res = await fetch(`${url}/api/v0/segments/${id}/key`, { method: 'POST', headers: AUTH });
    assert.equal(res.status, 400, `id ${JSON.stringify(id)}`);
    assert.equal(((await res.json()) as { code: string }).code, 'BAD_SEGMENT_ID');
  }
  assert.equal((await fetch(`${url}/api/v0/segments/0/foo`, { method: 'POST', headers: AUTH })).status, 404);
  assert.equal((await fetch(`${url}/api/v0/segmentsx`, { headers: AUTH })).status, 418, 'other paths are left to the next handler');
  const big = await fetch(`${url}/api/v0/segments/verify`, { method: 'POST', headers: AUTH, body: new Uint8Array(MAX_BODY_BYTES + 1) });
  assert.equal(big.status, 413);
  const small = await fetch(`${url}/api/v0/segments/verify`, { method: 'POST', headers: AUTH, body: '{}' });
  assert.equal(small.status, 200);
});

test('the segments API answers 410 for a dropped segment, zeroes a key once sent, and runs one verify at a time', async (t) => {
  const handedOut: Uint8Array[] = [];
  let release = (): void => {};
  const blocked = new Promise<void>((resolve) => (release = resolve));
  const pipeline = {
    async *segments() {
      await blocked;
      yield* [];
    },
    segmentKey(id: number) {
      if (id === 3) return Promise.reject(new PipelineRuntimeError('PIPELINE_SEGMENT_DROPPED', 'dropped', { id }));
      const k = new Uint8Array(32).fill(9);
      handedOut.push(k);
      return Promise.resolve(k);
    },
    status: () => ({ queuedReadings: 4 }),
  } as never;
  const url = await serve(t, { pipeline, contentStore: new MemoryContentStore() });
  const dropped = await fetch(`${url}/api/v0/segments/3/key`, { method: 'POST', headers: AUTH });
  assert.equal(dropped.status, 410);
  assert.equal(((await dropped.json()) as { code: string }).code, 'PIPELINE_SEGMENT_DROPPED');
  const sent = new Uint8Array(await (await fetch(`${url}/api/v0/segments/0/key`, { method: 'POST', headers: AUTH })).arrayBuffer());
  assert.deepEqual(sent, new Uint8Array(32).fill(9));
  assert.deepEqual(handedOut[0], new Uint8Array(32), 'the key is zeroed once it left');
  const first = fetch(`${url}/api/v0/segments/verify`, { method: 'POST', headers: AUTH });
  await new Promise((r) => setTimeout(r, 50));
  const second = await fetch(`${url}/api/v0/segments/verify`, { method: 'POST', headers: AUTH });
  assert.equal(second.status, 409);
  release();
  const report = (await (await first).json()) as { segments: number; queued: number };
  assert.deepEqual([report.segments, report.queued], [0, 4]);
});

test('verifyPipeline counts a segment dropped while it runs as dropped, and one that went missing as corrupt', async () => {
  const rec = (id: number, firstSeq: number): SegmentRecord => ({
    id, stream: 's', state: 'stored', firstSeq, lastSeq: firstSeq + 1, count: 2, firstTs: 0, lastTs: 1, manifestHash: '0x00', runStart: id === 0, bytes: 1, sealedAt: 0, cid: `mem-${id}`,
  });
  const pipeline = {
    async *segments() {
      yield rec(0, 0);
      yield rec(1, 2);
    },
    segmentKey: (id: number) => (id === 0 ? Promise.reject(new PipelineRuntimeError('PIPELINE_SEGMENT_DROPPED', 'dropped', { id })) : Promise.resolve(new Uint8Array(32))),
    status: () => ({ queuedReadings: 0 }),
  } as never;
  const report = await verifyPipeline({ pipeline, contentStore: new MemoryContentStore() });
  assert.deepEqual([report.dropped, report.corrupt, report.segments, report.gaps], [1, 1, 0, 0]);
  assert.match(report.details[0]!, /segment 1 .*CONTENT_NOT_FOUND/);
  const aborted = new AbortController();
  aborted.abort(new Error('stop'));
  await assert.rejects(verifyPipeline({ pipeline, contentStore: new MemoryContentStore(), signal: aborted.signal }), /stop/);
});

test('segments list on a data dir whose databases a running pipeline holds: through api.json, or NODE_NOT_RUNNING without it', async (t) => {
  const { dataDir } = await openPipeline(t);
  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(['segments', ...args], [segmentsCommand], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
    return { code, out, err };
  };
  const noApi = await cli(['list', '--data-dir', dataDir]);
  // The same error as `datagate status` gives: a node state, not a usage mistake.
  assert.equal(noApi.code, 1);
  assert.match(noApi.err, /\[NODE_NOT_RUNNING\]/);
  assert.match(noApi.err, /api\.json/);
  // api.json left from a node that is gone: nobody answers at its URL.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, token: TOKEN }), { mode: 0o600 });
  const stale = await cli(['verify', '--data-dir', dataDir]);
  assert.equal(stale.code, 1);
  assert.match(stale.err, /\[NODE_API_UNREACHABLE\]/);
});
