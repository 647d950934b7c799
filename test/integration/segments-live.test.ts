// `datagate segments list|key|verify` while `datagate dev` runs: the node holds its databases, so the commands
// go through its admin API (api.json); a key fetched that way opens its segment, the live verify is clean, and
// after the node stops the same segments list identically from the data directory. The API refuses requests
// without the node's token.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startDev } from '../helpers/dev-process.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

type Listed = { id: number; stream: string; state: string; count: number; cid: string | null };
const parse = (ndjson: string): Listed[] => ndjson.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Listed);

test('segments list, key and verify work through the API of a running node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-seglive-'));
  const dataDir = join(dir, 'node');
  const node = await startDev(['--data-dir', dataDir, '--segment-seconds', '1']);
  t.after(async () => {
    await node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  let live: Listed[] = [];
  let liveText = '';
  for (const deadline = Date.now() + 30_000; live.filter((s) => s.state === 'stored').length < 4; ) {
    assert.ok(Date.now() < deadline, `no stored segments within 30 s:\n${liveText}\n${node.output()}`);
    await new Promise((r) => setTimeout(r, 500));
    const listed = await run(['segments', 'list', '--data-dir', dataDir]);
    assert.equal(listed.code, 0, listed.stderr);
    liveText = listed.stdout;
    live = parse(liveText);
  }
  const pressure = await run(['segments', 'list', '--stream', 'pump/pressure', '--data-dir', dataDir]);
  assert.equal(pressure.code, 0, pressure.stderr);
  assert.ok(parse(pressure.stdout).length > 0 && parse(pressure.stdout).every((s) => s.stream === 'pump/pressure'), pressure.stdout);

  const first = live.find((s) => s.state === 'stored')!;
  const keyFile = join(dir, 'segment.key');
  const key = await run(['segments', 'key', String(first.id), '--output', keyFile, '--data-dir', dataDir]);
  assert.equal(key.code, 0, key.stderr);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const again = await run(['segments', 'key', String(first.id), '--output', keyFile, '--data-dir', dataDir]);
  assert.notEqual(again.code, 0, 'an existing key file is not overwritten');
  const opened = await run(['segments', 'open', first.cid!, '--key-file', keyFile, '--data-dir', dataDir]);
  assert.equal(opened.code, 0, opened.stderr);
  assert.equal(opened.stdout.trim().split('\n').length, first.count);
  assert.match(opened.stderr, /Merkle root and signature checked/);
  const missing = await run(['segments', 'key', '999999', '--output', join(dir, 'none.key'), '--data-dir', dataDir]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no segment 999999/);

  const verified = await run(['segments', 'verify', '--data-dir', dataDir]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /^segments: \d+, readings: \d+, gaps: 0, duplicates: 0, corrupt: 0$/m);
  assert.ok(Number(/^segments: (\d+)/m.exec(verified.stdout)![1]) >= live.filter((s) => s.state === 'stored').length);

  // The API itself: the token of api.json or nothing.
  const api = JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string; token: string };
  assert.equal(api.url, node.rpcUrl);
  const wrong = { authorization: `Bearer ${'0'.repeat(api.token.length)}` };
  for (const headers of [{}, wrong]) {
    for (const [method, path] of [['GET', '/api/v0/segments'], ['POST', `/api/v0/segments/${first.id}/key`], ['POST', '/api/v0/segments/verify']]) {
      const res = await fetch(`${api.url}${path}`, { method, headers });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.doesNotMatch(await res.text(), /greenhouse|pump|0x[0-9a-f]{64}/);
    }
  }
  const auth = { authorization: `Bearer ${api.token}` };
  assert.equal((await fetch(`${api.url}/api/v0/segments/999999/key`, { method: 'POST', headers: auth })).status, 404);
  assert.equal((await fetch(`${api.url}/api/v0/segments/x/key`, { method: 'POST', headers: auth })).status, 400);
  assert.equal((await fetch(`${api.url}/api/v0/segments/${first.id}/key`, { headers: auth })).status, 405);
  const raw = await fetch(`${api.url}/api/v0/segments/${first.id}/key`, { method: 'POST', headers: auth });
  assert.equal(`0x${Buffer.from(await raw.arrayBuffer()).toString('hex')}`, readFileSync(keyFile, 'utf8').trim());

  assert.equal(await node.stop(), 0);
  // Stopped: the data directory again, the same lines for the segments that were stored while it ran.
  const offline = await run(['segments', 'list', '--data-dir', dataDir]);
  assert.equal(offline.code, 0, offline.stderr);
  const offlineLines = new Set(offline.stdout.trim().split('\n'));
  for (const line of liveText.trim().split('\n')) if ((JSON.parse(line) as Listed).state === 'stored') assert.ok(offlineLines.has(line), line);
  const verifiedOffline = await run(['segments', 'verify', '--data-dir', dataDir]);
  assert.equal(verifiedOffline.code, 0, verifiedOffline.stdout + verifiedOffline.stderr);
  assert.match(verifiedOffline.stdout, /^segments: \d+, readings: \d+, gaps: 0, duplicates: 0, corrupt: 0$/m);
});
