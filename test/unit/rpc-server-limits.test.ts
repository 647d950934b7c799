// The RPC transport's server-wide budgets under attack, on a real server on 127.0.0.1 with real sockets: a
// burst of large bodies, more connections than allowed, WebSocket clients that stop reading. Each
// attack is refused (503 / -32005 / 1008) while other clients keep being answered.

import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { RpcHandler } from '../../chain/rpc/dispatch.ts';
import { createRpcServer, type RpcServer, type RpcServerOptions } from '../../chain/rpc/server.ts';
import { SubscriptionHub } from '../../chain/rpc/subscriptions.ts';

const MiB = 1024 * 1024;
let bigAnswers = 0;
const methods: Record<string, RpcHandler> = {
  eth_blockNumber: () => '0x5',
  echo: (params) => params.length,
  big: () => {
    bigAnswers++;
    return 'x'.repeat(64 * 1024);
  },
};
const call = (method: string, params: unknown[] = [], id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params });

interface Started {
  server: RpcServer;
  hub: SubscriptionHub;
  port: number;
  url: string;
}

async function start(extra: Partial<RpcServerOptions>): Promise<Started> {
  const hub = new SubscriptionHub();
  const server = createRpcServer({ host: '127.0.0.1', port: 0, methods, subscriptions: hub, ...extra });
  const { port } = await server.listen();
  return { server, hub, port, url: `http://127.0.0.1:${port}/` };
}

async function post(url: string, body: string): Promise<{ status: number; json: { result?: unknown; error?: { code: number } } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, json: (await res.json()) as { result?: unknown; error?: { code: number } } };
}

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

/** A WebSocket subscribed to newHeads; `received` counts its notifications. */
async function subscriber(port: number): Promise<{ ws: WebSocket; received: () => number; socket: Socket }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  let received = 0;
  let subscribed: (() => void) | undefined;
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; method?: string };
    if (msg.id === 1) subscribed?.();
    if (msg.method === 'eth_subscription') received++;
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    subscribed = resolve;
    ws.send(call('eth_subscribe', ['newHeads']));
  });
  const socket = (ws as unknown as { _socket: Socket })._socket;
  return { ws, received: () => received, socket };
}

describe('a burst of large request bodies', { timeout: 30_000 }, () => {
  let s: Started;
  const open: ClientRequest[] = [];
  before(async () => {
    s = await start({ maxRequestBytes: MiB, maxInFlightBodyBytes: 2 * MiB });
  });
  after(async () => {
    for (const req of open) req.destroy();
    await s.server.close();
  });

  it('admits bodies up to the in-flight budget, answers the rest 503 / -32005 unread, and keeps serving small calls', async () => {
    const body = call('echo', ['x'.repeat(MiB - 100)]);
    const statuses: number[] = [];
    const admitted: Promise<number>[] = [];
    let refused!: () => void;
    const fourRefused = new Promise<void>((resolve) => (refused = resolve));
    for (let i = 0; i < 6; i++) {
      const req = httpRequest({ host: '127.0.0.1', port: s.port, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
      open.push(req);
      req.on('error', () => {});
      admitted.push(
        new Promise((resolve) =>
          req.on('response', (res) => {
            res.resume();
            statuses.push(res.statusCode!);
            if (statuses.filter((c) => c === 503).length === 4) refused();
            resolve(res.statusCode!);
          }),
        ),
      );
      // Half the body: the request is in flight and holds its share of the budget.
      req.write(body.slice(0, body.length / 2));
    }
    await fourRefused;
    const small = await post(s.url, call('eth_blockNumber'));
    assert.deepEqual([small.status, small.json.result], [200, '0x5']);
    // The two admitted bodies complete and are answered.
    const pending = open.filter((req) => req.writable && !req.destroyed);
    for (const req of pending) req.end(body.slice(body.length / 2));
    const all = await Promise.all(admitted);
    assert.deepEqual(all.sort(), [200, 200, 503, 503, 503, 503]);
    // The budget came back: a large body is admitted again.
    const again = await post(s.url, body);
    assert.deepEqual([again.status, again.json.result], [200, 1]);
  });
});

describe('more connections than maxConnections', { timeout: 30_000 }, () => {
  let s: Started;
  const sockets: Socket[] = [];
  before(async () => {
    s = await start({ maxConnections: 3 });
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await s.server.close();
  });

  it('answers a request or upgrade on a connection over the limit with 503 and serves again once one closes', async () => {
    for (let i = 0; i < 3; i++) {
      const socket = connect(s.port, '127.0.0.1');
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    const over = await post(s.url, call('eth_blockNumber'));
    assert.deepEqual([over.status, over.json.error?.code], [503, -32005]);
    const upgrade = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', () => {});
    });
    assert.equal(upgrade, 503);
    sockets.pop()!.destroy();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await post(s.url, call('eth_blockNumber'))).status;
      if (status !== 200) await tick();
    }
    assert.equal(status, 200);
  });
});

describe('WebSocket subscribers that stop reading', { timeout: 60_000 }, () => {
  let s: Started;
  const clients: WebSocket[] = [];
  before(async () => {
    // Per connection the limit is high: only the global budget can catch these consumers.
    s = await start({ maxWsBufferedBytes: 256 * MiB, maxWsBufferedTotalBytes: 2 * MiB });
  });
  after(async () => {
    for (const ws of clients) ws.terminate();
    await s.server.close();
  });

  it('serialises each notification once for all subscribers', async () => {
    const subs = await Promise.all([1, 2, 3].map(() => subscriber(s.port)));
    clients.push(...subs.map((x) => x.ws));
    let serialised = 0;
    s.hub.publishNewHead({ number: '0x1', toJSON: () => (serialised++, { number: '0x1' }) });
    for (let i = 0; i < 200 && subs.some((x) => x.received() === 0); i++) await tick();
    assert.deepEqual(subs.map((x) => x.received()), [1, 1, 1]);
    assert.equal(serialised, 1);
    for (const x of subs) x.ws.close();
    for (let i = 0; i < 200 && s.hub.size > 0; i++) await tick();
  });

  it('drops the consumers holding the most unsent data past the global budget and keeps serving the others', async () => {
    const slow = await Promise.all([1, 2, 3, 4, 5, 6].map(() => subscriber(s.port)));
    const healthy = await subscriber(s.port);
    clients.push(healthy.ws, ...slow.map((x) => x.ws));
    for (const x of slow) x.socket.pause();
    const header = { extraData: '0x' + 'ab'.repeat(64 * 1024) };
    // 128 KiB per notification, 100 at most: 12.5 MiB per slow consumer, far below its own limit.
    for (let i = 0; i < 100 && s.hub.size > 1; i++) {
      s.hub.publishNewHead(header);
      // The healthy client reads each notification before the next is published.
      for (let j = 0; j < 500 && healthy.received() <= i; j++) await tick(1);
    }
    assert.equal(s.hub.size, 1, 'only the healthy subscription is left');
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
    const before = healthy.received();
    s.hub.publishNewHead({ number: '0x2' });
    for (let i = 0; i < 200 && healthy.received() === before; i++) await tick();
    assert.equal(healthy.received(), before + 1);
    assert.equal((await post(s.url, call('eth_blockNumber'))).json.result, '0x5');
    // The dropped consumers are closed: once they read again they reach the end of the stream.
    for (const x of slow) x.socket.resume();
    await Promise.all(slow.map((x) => (x.ws.readyState === WebSocket.CLOSED ? undefined : new Promise((r) => x.ws.once('close', r)))));
  });
});

describe('a WebSocket client that sends requests but does not read', { timeout: 60_000 }, () => {
  let s: Started;
  before(async () => {
    // Buffers are allowed to grow far: only the read pause can stop this client.
    s = await start({ maxWsBufferedBytes: 1024 * MiB, maxWsBufferedTotalBytes: 1024 * MiB });
  });
  after(() => s.server.close());

  it('stops reading the requests of a client that does not read its answers', async () => {
    const greedy = await subscriber(s.port);
    greedy.socket.pause();
    // 1,000 requests for 64 KiB answers: 64 MiB if the server computed them all.
    for (let i = 0; i < 1000; i++) greedy.ws.send(call('big', [], 100 + i));
    let seen = -1;
    for (let i = 0; i < 200 && bigAnswers !== seen; i++) {
      seen = bigAnswers;
      await tick(100);
    }
    assert.ok(bigAnswers < 1000, `the server answered ${bigAnswers} of 1000 requests nobody reads`);
    assert.equal((await post(s.url, call('eth_blockNumber'))).json.result, '0x5');
    greedy.ws.terminate();
  });
});
