// The fault-injecting TCP proxy (test/helpers/fault-proxy.ts) against a real echo server on 127.0.0.1.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { test } from 'node:test';
import type { FaultProxy } from '../helpers/fault-proxy.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';

const TIMEOUT = { timeout: 30_000 };

async function echoServer(t: { after(fn: () => unknown): void }): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Hooks run in registration order, before the proxy's: close() alone would wait for connections it holds.
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return server;
}

async function proxyTo(t: { after(fn: () => unknown): void }, server: Server, maxBufferBytes?: number): Promise<FaultProxy> {
  const { port } = server.address() as AddressInfo;
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port }, listenHost: '127.0.0.1', ...(maxBufferBytes !== undefined ? { maxBufferBytes } : {}) });
  t.after(() => proxy.close());
  return proxy;
}

/** A connected client that collects what it receives. */
async function client(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed };
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function connectError(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

const turns = (n: number) => new Promise<void>((resolve) => {
  let left = n;
  const next = () => (--left <= 0 ? resolve() : setImmediate(next));
  setImmediate(next);
});

test('bytes pass both ways unchanged and are counted', TIMEOUT, async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const c = await client(proxy.port);
  const data = randomBytes(200_000);
  c.socket.write(data);
  await until('the echo', () => c.received().length === data.length);
  assert.ok(c.received().equals(data));
  const s = proxy.stats();
  assert.equal(s.accepted, 1);
  assert.equal(s.bytesUp, data.length);
  assert.equal(s.bytesDown, data.length);
  c.socket.end();
  await c.closed;
  await until('the connection to be forgotten', () => proxy.stats().open === 0);
});

test('a delay holds each chunk back at least that long, in order', TIMEOUT, async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const c = await client(proxy.port);
  proxy.setDelay(150, 50);
  const started = Date.now();
  const parts = ['one,', 'two,', 'three,', 'four'];
  for (const p of parts) {
    c.socket.write(p);
    await turns(3);
  }
  await until('the echo', () => c.received().length === parts.join('').length);
  // Up and down each wait >= 150 ms; only the lower bound is asserted, generously.
  assert.ok(Date.now() - started >= 200, `echo after ${Date.now() - started} ms`);
  assert.equal(c.received().toString(), parts.join(''));
});

test('hold buffers without forwarding; release flushes in order', TIMEOUT, async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const c = await client(proxy.port);
  proxy.hold('up');
  const parts = Array.from({ length: 20 }, (_, i) => `chunk-${i};`);
  for (const p of parts) {
    c.socket.write(p);
    await turns(2);
  }
  const total = parts.join('').length;
  await until('the held bytes', () => proxy.stats().bufferedUp === total);
  assert.equal(proxy.stats().bytesUp, 0);
  assert.equal(c.received().length, 0);

  // The answer is held on the way back this time.
  proxy.hold('down');
  proxy.release('up');
  await until('the echo to be held', () => proxy.stats().bufferedDown === total);
  assert.equal(c.received().length, 0);
  proxy.release('both');
  await until('the echo', () => c.received().length === total);
  assert.equal(c.received().toString(), parts.join(''));
});

test('a held direction pauses its source at the buffer bound and loses nothing', TIMEOUT, async (t) => {
  const bound = 64 * 1024;
  const proxy = await proxyTo(t, await echoServer(t), bound);
  const c = await client(proxy.port);
  proxy.hold('up');
  const data = randomBytes(4 * 1024 * 1024);
  c.socket.write(data);
  await until('the source to be paused', () => proxy.stats().pauses >= 1);
  await turns(20);
  // At most the bound plus one read's worth (a socket read is up to 64 KiB).
  assert.ok(proxy.stats().bufferedUp <= bound + 64 * 1024, `buffered ${proxy.stats().bufferedUp}`);
  proxy.release('up');
  await until('the echo', () => c.received().length === data.length, 20_000);
  assert.ok(c.received().equals(data));
});

test('partition drops connections and refuses new ones; heal accepts again', TIMEOUT, async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const c = await client(proxy.port);
  await proxy.partition();
  await c.closed;
  assert.equal(proxy.stats().partitioned, 1);
  assert.equal(await connectError(proxy.port), 'ECONNREFUSED');

  await proxy.heal();
  const again = await client(proxy.port);
  again.socket.write('after heal');
  await until('the echo', () => again.received().toString() === 'after heal');
  again.socket.destroy();
});

test('resetRandomly(1) resets a connection on its first chunk', TIMEOUT, async (t) => {
  const proxy = await proxyTo(t, await echoServer(t));
  const c = await client(proxy.port);
  const error = new Promise<string | undefined>((resolve) => c.socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
  proxy.resetRandomly(1);
  c.socket.write('boom');
  await c.closed;
  assert.equal(await Promise.race([error, Promise.resolve('no error')]), 'ECONNRESET');
  assert.equal(proxy.stats().resets, 1);
  proxy.resetRandomly(0);
  const ok = await client(proxy.port);
  ok.socket.write('fine');
  await until('the echo', () => ok.received().toString() === 'fine');
  ok.socket.destroy();
});

test('close ends every connection and leaves no handle open', TIMEOUT, async (t) => {
  const server = await echoServer(t);
  const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'Timeout');
  const before = handles().length;
  const { port } = server.address() as AddressInfo;
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port }, listenHost: '127.0.0.1' });
  t.after(() => proxy.close());
  const held = await client(proxy.port);
  const delayed = await client(proxy.port);
  proxy.hold('down');
  held.socket.write('held');
  await until('the held bytes', () => proxy.stats().bufferedDown === 4);
  proxy.setDelay(60_000);
  delayed.socket.write('delayed for a minute');
  await until('the delayed bytes', () => proxy.stats().bufferedUp > 0);
  await proxy.close();
  await Promise.all([held.closed, delayed.closed]);
  let serverOpen = -1;
  await until('the echo server to see its connections close', () => {
    // The count arrives on a later tick; the next poll reads it.
    server.getConnections((_, n) => (serverOpen = n));
    return serverOpen === 0;
  });
  await turns(5);
  // Not equal: sockets of the tests before may still have been closing when `before` was counted.
  assert.ok(handles().length <= before, `handles before ${before}, now: ${handles().join(',')}`);
  assert.equal(await connectError(proxy.port), 'ECONNREFUSED');
});

test('the proxy listens on loopback only', TIMEOUT, async () => {
  await assert.rejects(startFaultProxy({ target: { host: '127.0.0.1', port: 1 }, listenHost: '0.0.0.0' }), RangeError);
});
