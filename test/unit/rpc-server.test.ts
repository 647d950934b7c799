// Unit tests of the JSON-RPC transport: a real server on 127.0.0.1 port 0, spoken to with fetch, node:http,
// the ws client and ethers. The handlers are stubs; eth_* semantics are tested elsewhere.

import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ethers } from 'ethers';
import { WebSocket } from 'ws';
import { ChainError } from '../../chain/errors.ts';
import type { LogFields, Logger } from '../../chain/logger.ts';
import { RpcCode, RpcError, executionReverted, toRpcError } from '../../chain/rpc/errors.ts';
import { createRpcServer, type RpcHandler, type RpcServer, type RpcServerOptions } from '../../chain/rpc/server.ts';
import { SubscriptionHub, matchesLogFilter, parseLogFilter, type JsonLog } from '../../chain/rpc/subscriptions.ts';

const ADDR_A = '0x' + 'aa'.repeat(20);
const ADDR_B = '0x' + 'bb'.repeat(20);
const T1 = '0x' + '11'.repeat(32);
const T2 = '0x' + '22'.repeat(32);
const T3 = '0x' + '33'.repeat(32);

function makeLog(address: string, topics: string[], logIndex = '0x0'): JsonLog {
  return {
    address,
    topics,
    data: '0x',
    blockNumber: '0x1',
    transactionHash: '0x' + '01'.repeat(32),
    transactionIndex: '0x0',
    blockHash: '0x' + '02'.repeat(32),
    logIndex,
    removed: false,
  };
}

function recordingLogger(): Logger & { lines: { level: string; msg: string; fields: LogFields }[] } {
  const lines: { level: string; msg: string; fields: LogFields }[] = [];
  const make = (base: LogFields): Logger => ({
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields: { ...base, ...fields } }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields: { ...base, ...fields } }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields: { ...base, ...fields } }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields: { ...base, ...fields } }),
    child: (fields) => make({ ...base, ...fields }),
  });
  return Object.assign(make({}), { lines });
}

const notified: unknown[] = [];
/** `gate` resolves when the test calls openGate(): lets a test hold a batch open while it publishes. */
let openGate: () => void = () => {};
const methods: Record<string, RpcHandler> = {
  eth_chainId: () => '0x539',
  eth_blockNumber: () => '0x5',
  echo: (params) => params,
  slow: async () => {
    await new Promise((r) => setTimeout(r, 20));
    return 'slow';
  },
  nothing: () => undefined,
  gate: () => new Promise<string>((resolve) => (openGate = () => resolve('open'))),
  note: (params) => {
    notified.push(params[0]);
  },
  ctx: (_params, ctx) => ctx,
  nonceTooLow: () => {
    throw new ChainError('TX_NONCE_TOO_LOW', 'nonce too low: next nonce 3, tx nonce 1');
  },
  boom: () => {
    throw new Error('secret internal detail');
  },
  asyncBoom: async () => {
    throw new TypeError('async secret');
  },
  bigint: () => 5n,
  revert: () => {
    throw executionReverted('0x08c379a0', 'nope');
  },
};

interface Started {
  server: RpcServer;
  hub: SubscriptionHub;
  url: string;
  wsUrl: string;
  logger: ReturnType<typeof recordingLogger>;
}

async function start(extra: Partial<RpcServerOptions> = {}): Promise<Started> {
  const hub = new SubscriptionHub();
  const logger = recordingLogger();
  const server = createRpcServer({ host: '127.0.0.1', port: 0, methods, subscriptions: hub, logger, ...extra });
  const { port } = await server.listen();
  return { server, hub, logger, url: `http://127.0.0.1:${port}/`, wsUrl: `ws://127.0.0.1:${port}/` };
}

async function post(url: string, body: string): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  return { status: res.status, text, json: text === '' ? undefined : JSON.parse(text) };
}

async function openWs(url: string): Promise<WebSocket & { next(pred?: (m: any) => boolean): Promise<any> }> {
  const ws = new WebSocket(url);
  const inbox: any[] = [];
  const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    const i = waiters.findIndex((w) => w.pred(msg));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg);
    else inbox.push(msg);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return Object.assign(ws, {
    next(pred: (m: any) => boolean = () => true): Promise<any> {
      const i = inbox.findIndex(pred);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  });
}

function closeWs(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === ws.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.close();
  });
}

const call = (method: string, params: unknown[] = [], id: unknown = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params });

describe('rpc server over HTTP', { timeout: 10_000 }, () => {
  let s: Started;
  before(async () => {
    s = await start({ maxRequestBytes: 64 * 1024, maxBatch: 5 });
  });
  after(() => s.server.close());

  it('answers a single call', async () => {
    const r = await post(s.url, call('echo', ['0x1', true], 'a'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 'a', result: ['0x1', true] });
    assert.deepEqual((await post(s.url, call('nothing'))).json, { jsonrpc: '2.0', id: 1, result: null });
    assert.deepEqual((await post(s.url, call('ctx'))).json, { jsonrpc: '2.0', id: 1, result: { transport: 'http', connectionId: null } });
  });

  it('accepts any path and omitted params', async () => {
    const r = await post(s.url + 'some/path', JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'eth_chainId' }));
    assert.deepEqual(r.json, { jsonrpc: '2.0', id: 7, result: '0x539' });
  });

  it('answers a batch of good, bad and notification entries in order', async () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'slow' },
      { jsonrpc: '2.0', id: 2, method: 'eth_foo' },
      { jsonrpc: '2.0', method: 'note', params: ['n1'] },
      1,
      null,
      { jsonrpc: '1.0', id: 3, method: 'echo' },
      { jsonrpc: '2.0', id: 4, method: 'echo', params: { a: 1 } },
      { jsonrpc: '2.0', id: { x: 1 }, method: 'echo' },
    ];
    const r = await post(s.url, JSON.stringify(batch.slice(0, 5)));
    const all = r.json as any[];
    assert.equal(all.length, 4);
    assert.deepEqual(all[0], { jsonrpc: '2.0', id: 1, result: 'slow' });
    assert.equal(all[1].error.code, RpcCode.MethodNotFound);
    assert.deepEqual(all[2], { jsonrpc: '2.0', id: null, error: all[2].error });
    assert.equal(all[2].error.code, RpcCode.InvalidRequest);
    assert.equal(all[3].error.code, RpcCode.InvalidRequest);
    assert.ok(notified.includes('n1'));

    const r2 = await post(s.url, JSON.stringify(batch.slice(5)));
    const [v1, v4, badId] = r2.json as any[];
    assert.equal(v1.id, 3);
    assert.equal(v1.error.code, RpcCode.InvalidRequest);
    assert.equal(v4.id, 4);
    assert.equal(v4.error.code, RpcCode.InvalidParams);
    assert.equal(badId.id, null);
    assert.equal(badId.error.code, RpcCode.InvalidRequest);
  });

  it('sends 204 with no body for notifications only', async () => {
    const one = await post(s.url, JSON.stringify({ jsonrpc: '2.0', method: 'note', params: ['n2'] }));
    assert.equal(one.status, 204);
    assert.equal(one.text, '');
    const batch = await post(s.url, JSON.stringify([{ jsonrpc: '2.0', method: 'note', params: ['n3'] }, { jsonrpc: '2.0', method: 'eth_foo' }]));
    assert.equal(batch.status, 204);
    assert.ok(notified.includes('n2') && notified.includes('n3'));
  });

  it('answers invalid JSON and invalid UTF-8 with -32700 and id null', async () => {
    for (const body of ['{"jsonrpc":"2.0",', '', 'nul']) {
      const r = await post(s.url, body);
      assert.equal(r.status, 200);
      assert.deepEqual((r.json as any).id, null);
      assert.equal((r.json as any).error.code, RpcCode.ParseError);
    }
    const res = await fetch(s.url, { method: 'POST', body: new Uint8Array([0x22, 0xff, 0xfe, 0x22]) });
    assert.equal(((await res.json()) as any).error.code, RpcCode.ParseError);
  });

  it('refuses an oversize body with 413 and -32600', async () => {
    const big = call('echo', ['x'.repeat(100 * 1024)]);
    const r = await post(s.url, big);
    assert.equal(r.status, 413);
    assert.equal((r.json as any).error.code, RpcCode.InvalidRequest);
    // A chunked body declares no length: the server counts and stops at the limit.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(s.url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('["' + 'y'.repeat(40 * 1024));
      req.write('y'.repeat(40 * 1024));
      req.end('"]');
    });
    assert.equal(status, 413);
    // The server still serves afterwards.
    assert.deepEqual((await post(s.url, call('eth_chainId'))).json, { jsonrpc: '2.0', id: 1, result: '0x539' });
  });

  it('refuses an empty batch and a batch over the limit with one error', async () => {
    const empty = (await post(s.url, '[]')).json as any;
    assert.equal(empty.id, null);
    assert.equal(empty.error.code, RpcCode.InvalidRequest);
    const tooMany = (await post(s.url, JSON.stringify(Array.from({ length: 6 }, (_, i) => JSON.parse(call('echo', [], i)))))).json as any;
    assert.ok(!Array.isArray(tooMany));
    assert.equal(tooMany.error.code, RpcCode.LimitExceeded);
    assert.match(tooMany.error.message, /limit is 5/);
  });

  it('reports an unknown method with geth wording', async () => {
    const r = (await post(s.url, call('eth_foo'))).json as any;
    assert.deepEqual(r.error, { code: -32601, message: 'the method eth_foo does not exist/is not available' });
    // Inherited Object properties are not methods.
    for (const m of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      assert.equal(((await post(s.url, call(m))).json as any).error.code, RpcCode.MethodNotFound);
    }
  });

  it('maps ChainError to -32000 with data.code and keeps RpcError as thrown', async () => {
    const r = (await post(s.url, call('nonceTooLow'))).json as any;
    assert.deepEqual(r.error, { code: -32000, message: 'nonce too low: next nonce 3, tx nonce 1', data: { code: 'TX_NONCE_TOO_LOW' } });
    const rev = (await post(s.url, call('revert'))).json as any;
    assert.deepEqual(rev.error, { code: 3, message: 'execution reverted: nope', data: '0x08c379a0' });
  });

  it('turns other exceptions and unserializable results into -32603 without details, and logs them', async () => {
    for (const m of ['boom', 'asyncBoom', 'bigint']) {
      const r = await post(s.url, call(m));
      assert.deepEqual((r.json as any).error, { code: -32603, message: 'internal error' });
      assert.ok(!r.text.includes('secret') && !r.text.includes('at '), r.text);
    }
    const errors = s.logger.lines.filter((l) => l.level === 'error');
    assert.ok(errors.some((l) => l.fields['method'] === 'boom' && String(l.fields['error']).includes('secret internal detail')));
    assert.ok(errors.some((l) => l.fields['method'] === 'bigint'));
  });

  it('refuses eth_subscribe over HTTP', async () => {
    for (const m of ['eth_subscribe', 'eth_unsubscribe']) {
      const r = (await post(s.url, call(m, ['newHeads']))).json as any;
      assert.equal(r.error.code, RpcCode.MethodNotFound);
      assert.match(r.error.message, /WebSocket/);
    }
  });

  it('answers GET with 405 and CORS preflight with 204', async () => {
    const get = await fetch(s.url);
    assert.equal(get.status, 405);
    assert.equal(((await get.json()) as any).error.code, RpcCode.InvalidRequest);
    const pre = await fetch(s.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://dapp.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    const res = await fetch(s.url, { method: 'POST', body: call('eth_chainId') });
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('content-type'), 'application/json');
  });

  it('keeps connections alive between requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<{ reused: boolean; body: string }>((resolve, reject) => {
        const req = httpRequest(s.url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ reused: req.reusedSocket, body }));
        });
        req.on('error', reject);
        req.end(call('eth_blockNumber'));
      });
    const first = await once();
    const second = await once();
    agent.destroy();
    assert.equal(first.reused, false);
    assert.equal(second.reused, true);
    assert.deepEqual(JSON.parse(second.body), { jsonrpc: '2.0', id: 1, result: '0x5' });
  });

  it('survives malformed input of any kind', async () => {
    const bodies = [
      '['.repeat(30_000) + ']'.repeat(30_000),
      // echo returns the nesting: too deep for JSON.stringify, so the server must answer -32603, not crash.
      `{"jsonrpc":"2.0","id":1,"method":"echo","params":[${'['.repeat(30_000)}${']'.repeat(30_000)}]}`,
      '{"jsonrpc":"2.0","id":1e999,"method":"echo","params":[123456789012345678901234567890]}',
      '[1,"x",[],{}]',
      '"just a string"',
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x'.repeat(10_000) }),
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'echo', params: 'str' }),
    ];
    for (const body of bodies) {
      const r = await post(s.url, body);
      assert.equal(r.status, 200, body.slice(0, 40));
    }
    assert.equal(((await post(s.url, bodies[1]!)).json as any).error.code, RpcCode.InternalError);
    const long = (await post(s.url, bodies[5]!)).json as any;
    assert.ok(long.error.message.length < 200);
    assert.deepEqual((await post(s.url, call('eth_chainId'))).json, { jsonrpc: '2.0', id: 1, result: '0x539' });
  });
});

describe('rpc server with ethers', { timeout: 10_000 }, () => {
  let s: Started;
  before(async () => {
    s = await start();
  });
  after(() => s.server.close());

  it('serves JsonRpcProvider.getBlockNumber', async () => {
    const port = new URL(s.url).port;
    const provider = new ethers.JsonRpcProvider(`http://127.0.0.1:${port}`, 1337, { staticNetwork: true });
    try {
      assert.equal(await provider.getBlockNumber(), 5);
      // Two calls in the same tick go out as one ethers batch.
      const [chainId, hex] = await Promise.all([provider.send('eth_chainId', []), provider.send('eth_blockNumber', [])]);
      assert.deepEqual([chainId, hex], ['0x539', '0x5']);
      await assert.rejects(provider.send('eth_foo', []), (err: any) => err?.info?.error?.code === -32601);
    } finally {
      provider.destroy();
    }
  });
});

describe('rpc server over WebSocket', { timeout: 10_000 }, () => {
  let s: Started;
  before(async () => {
    s = await start({ maxRequestBytes: 64 * 1024, maxBatch: 5 });
  });
  after(() => s.server.close());

  it('answers requests and batches', async () => {
    const ws = await openWs(s.wsUrl);
    try {
      ws.send(call('eth_chainId', [], 1));
      assert.deepEqual(await ws.next((m) => m.id === 1), { jsonrpc: '2.0', id: 1, result: '0x539' });
      ws.send(call('ctx', [], 2));
      const ctx = (await ws.next((m) => m.id === 2)).result;
      assert.equal(ctx.transport, 'ws');
      assert.match(ctx.connectionId, /^ws-\d+$/);
      ws.send(JSON.stringify([JSON.parse(call('eth_blockNumber', [], 3)), JSON.parse(call('eth_foo', [], 4))]));
      const batch = await ws.next(Array.isArray);
      assert.deepEqual(batch[0], { jsonrpc: '2.0', id: 3, result: '0x5' });
      assert.equal(batch[1].error.code, RpcCode.MethodNotFound);
      ws.send('{oops');
      assert.equal((await ws.next((m) => m.error?.code === RpcCode.ParseError)).id, null);
      // Binary frames are read as UTF-8 JSON; garbage gets a parse error and the connection stays up.
      ws.send(Buffer.from([0xff, 0x00, 0x13]));
      assert.equal((await ws.next((m) => m.error?.code === RpcCode.ParseError)).id, null);
      ws.send(Buffer.from(call('eth_chainId', [], 5)));
      assert.equal((await ws.next((m) => m.id === 5)).result, '0x539');
    } finally {
      await closeWs(ws);
    }
  });

  it('closes the connection (1009) on a message over maxRequestBytes', async () => {
    const ws = await openWs(s.wsUrl);
    const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    ws.on('error', () => {});
    ws.send(call('echo', ['z'.repeat(70 * 1024)]));
    assert.equal(await code, 1009);
  });

  it('delivers newHeads after the subscribe response, with a 16-byte hex id', async () => {
    const ws = await openWs(s.wsUrl);
    try {
      // Publish while the batch is still running (gate comes after eth_subscribe): the head must not overtake the id.
      const before = s.hub.size;
      ws.send(JSON.stringify([JSON.parse(call('eth_subscribe', ['newHeads'], 1)), JSON.parse(call('gate', [], 2))]));
      while (s.hub.size === before) await new Promise((r) => setTimeout(r, 2));
      s.hub.publishNewHead({ number: '0x1' });
      openGate();
      const order: any[] = [];
      order.push(await ws.next());
      order.push(await ws.next());
      assert.ok(Array.isArray(order[0]), 'response first');
      const subId = order[0][0].result;
      assert.match(subId, /^0x[0-9a-f]{32}$/);
      assert.deepEqual(order[1], { jsonrpc: '2.0', method: 'eth_subscription', params: { subscription: subId, result: { number: '0x1' } } });
      s.hub.publishNewHead({ number: '0x2' });
      assert.deepEqual((await ws.next()).params, { subscription: subId, result: { number: '0x2' } });
    } finally {
      await closeWs(ws);
    }
  });

  it('sends only logs that match the subscription filter', async () => {
    const ws = await openWs(s.wsUrl);
    try {
      ws.send(call('eth_subscribe', ['logs', { address: ADDR_A.toUpperCase().replace('0X', '0x'), topics: [T1, null, [T2, T3]] }], 1));
      const subId = (await ws.next((m) => m.id === 1)).result;
      const logs = [
        makeLog(ADDR_A, [T1, T2, T3], '0x0'),
        makeLog(ADDR_B, [T1, T2, T3], '0x1'),
        makeLog(ADDR_A, [T2, T2, T3], '0x2'),
        makeLog(ADDR_A, [T1, T1], '0x3'),
        makeLog(ADDR_A, [T1, T1, T3], '0x4'),
      ];
      s.hub.publishLogs(logs);
      s.hub.publishNewHead({ number: '0x9' });
      const got = [(await ws.next()).params, (await ws.next()).params];
      assert.deepEqual(got, [
        { subscription: subId, result: logs[0] },
        { subscription: subId, result: logs[4] },
      ]);
      ws.send(call('eth_subscribe', ['logs', { address: '0x1234' }], 2));
      const bad = await ws.next((m) => m.id === 2);
      assert.equal(bad.error.code, RpcCode.InvalidParams);
      assert.match(bad.error.message, /params\[1\]\.address/);
      ws.send(call('eth_subscribe', ['newPendingTransactions'], 3));
      assert.equal((await ws.next((m) => m.id === 3)).error.code, RpcCode.InvalidParams);
    } finally {
      await closeWs(ws);
    }
  });

  it('unsubscribes: true once, then false; other connections cannot unsubscribe', async () => {
    const ws = await openWs(s.wsUrl);
    const other = await openWs(s.wsUrl);
    try {
      ws.send(call('eth_subscribe', ['newHeads'], 1));
      const subId = (await ws.next((m) => m.id === 1)).result;
      other.send(call('eth_unsubscribe', [subId], 1));
      assert.equal((await other.next((m) => m.id === 1)).result, false);
      ws.send(call('eth_unsubscribe', [subId], 2));
      assert.equal((await ws.next((m) => m.id === 2)).result, true);
      ws.send(call('eth_unsubscribe', [subId], 3));
      assert.equal((await ws.next((m) => m.id === 3)).result, false);
      ws.send(call('eth_unsubscribe', [42], 4));
      assert.equal((await ws.next((m) => m.id === 4)).error.code, RpcCode.InvalidParams);
      s.hub.publishNewHead({ number: '0x3' });
      ws.send(call('eth_chainId', [], 5));
      assert.equal((await ws.next()).id, 5, 'no notification after unsubscribe');
    } finally {
      await closeWs(ws);
      await closeWs(other);
    }
  });

  it('drops subscriptions when the socket closes', async () => {
    const before = s.hub.size;
    const ws = await openWs(s.wsUrl);
    ws.send(call('eth_subscribe', ['newHeads'], 1));
    ws.send(call('eth_subscribe', ['logs'], 2));
    await ws.next((m) => m.id === 1);
    await ws.next((m) => m.id === 2);
    assert.equal(s.hub.size, before + 2);
    ws.terminate();
    for (let i = 0; i < 100 && s.hub.size !== before; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.hub.size, before);
  });
});

describe('rpc server limits', { timeout: 10_000 }, () => {
  let s: Started;
  before(async () => {
    s = await start({ maxWsConnections: 1, maxWsBufferedBytes: 64 * 1024 });
  });
  after(() => s.server.close());

  it('refuses WebSocket connections over maxWsConnections with 503', async () => {
    const ws = await openWs(s.wsUrl);
    try {
      const status = await new Promise<number>((resolve) => {
        const second = new WebSocket(s.wsUrl);
        second.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          second.terminate();
        });
        second.on('error', () => {});
      });
      assert.equal(status, 503);
    } finally {
      await closeWs(ws);
    }
  });

  it('closes a slow consumer with 1008 instead of buffering without limit', async () => {
    // Wait for the previous connection's slot to free up.
    for (let i = 0; i < 100 && s.hub.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    const ws = await openWs(s.wsUrl);
    ws.send(call('eth_subscribe', ['newHeads'], 1));
    await ws.next((m) => m.id === 1);
    const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    // Stop reading on the client so the server's send buffer fills once the kernel buffers are full.
    const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    const header = { extraData: '0x' + 'ab'.repeat(32 * 1024) };
    for (let i = 0; i < 2000 && s.hub.size > 0; i++) s.hub.publishNewHead(header);
    assert.equal(s.hub.size, 0, 'subscription dropped with the connection');
    socket.resume();
    assert.equal(await code, 1008);
  });
});

describe('matchesLogFilter / parseLogFilter', () => {
  const log = makeLog(ADDR_A, [T1, T2]);

  it('matches address case-insensitively, single or list, empty = any', () => {
    assert.ok(matchesLogFilter(log, {}));
    assert.ok(matchesLogFilter(log, { address: ADDR_A.toUpperCase().replace('0X', '0x') }));
    assert.ok(matchesLogFilter(log, { address: [ADDR_B, ADDR_A] }));
    assert.ok(matchesLogFilter(log, { address: [] }));
    assert.ok(matchesLogFilter(log, { address: null, topics: null }));
    assert.ok(!matchesLogFilter(log, { address: ADDR_B }));
    assert.ok(!matchesLogFilter(log, { address: [ADDR_B] }));
  });

  it('matches topics by position with null/[] wildcards and arrays as OR', () => {
    assert.ok(matchesLogFilter(log, { topics: [] }));
    assert.ok(matchesLogFilter(log, { topics: [T1] }));
    assert.ok(matchesLogFilter(log, { topics: [null, T2] }));
    assert.ok(matchesLogFilter(log, { topics: [[], [T3, T2.toUpperCase().replace('0X', '0x')]] }));
    assert.ok(!matchesLogFilter(log, { topics: [T2] }));
    assert.ok(!matchesLogFilter(log, { topics: [null, [T1, T3]] }));
    // More filter positions than the log has topics: no match, even with a wildcard.
    assert.ok(!matchesLogFilter(log, { topics: [T1, T2, null] }));
  });

  it('parses filters to lowercase and refuses bad hex with -32602 naming the member', () => {
    assert.deepEqual(parseLogFilter({ address: ADDR_A.toUpperCase().replace('0X', '0x'), topics: [null, [T1]], fromBlock: '0x1' }), {
      address: [ADDR_A],
      topics: [null, [T1]],
    });
    assert.deepEqual(parseLogFilter(undefined), { address: null, topics: null });
    const bad: [unknown, RegExp][] = [
      [{ address: '0x12' }, /filter\.address/],
      [{ address: [ADDR_A, 7] }, /filter\.address\[1\]/],
      [{ topics: ['0x11'] }, /filter\.topics\[0\]/],
      [{ topics: [[T1, 'zz']] }, /filter\.topics\[0\]\[1\]/],
      [{ topics: 'x' }, /filter\.topics/],
      [{ topics: [null, null, null, null, null] }, /at most 4/],
      ['str', /filter object/],
    ];
    for (const [raw, re] of bad) {
      assert.throws(
        () => parseLogFilter(raw),
        (err: unknown) => err instanceof RpcError && err.rpcCode === RpcCode.InvalidParams && err.code === 'RPC_INVALID_PARAMS' && re.test(err.message),
      );
    }
  });

  it('maps thrown values to RpcErrors', () => {
    assert.equal(toRpcError(new ChainError('TX_INSUFFICIENT_FUNDS', 'insufficient funds for gas * price + value')).error.rpcCode, -32000);
    assert.deepEqual(toRpcError('str'), { error: toRpcError('str').error, isInternal: true });
    assert.equal(toRpcError(new RpcError(-32005, 'x')).error.code, 'RPC_LIMIT_EXCEEDED');
  });
});
