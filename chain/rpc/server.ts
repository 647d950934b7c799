// The JSON-RPC 2.0 transport of the node: HTTP POST and WebSocket on one port, single requests and batches,
// eth_subscribe / eth_unsubscribe over WebSocket. It knows no eth_* semantics: those are the `methods` handed
// in. Everything a client sends is untrusted; no input may crash the process or grow memory without bound,
// so connections, bodies (each and all in flight together), batches, WebSocket messages, in-flight requests,
// subscriptions and send buffers (each and all together) are all limited.
// Turning a message into calls and responses is dispatch.ts; this file is transport, limits and lifecycle.
//
// CORS: every response carries Access-Control-Allow-Origin: * so browser dapps can call the node. The node holds
// no accounts or keys behind RPC, so there is nothing a foreign origin could do that curl could not; restrict
// the origin here if that ever changes. WebSocket upgrades are likewise accepted from any Origin.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { DatagateError } from '../errors.ts';
import { nopLogger, type Logger } from '../logger.ts';
import { createDispatch, encodeError, type RpcContext, type RpcHandler, type SubscriptionSession } from './dispatch.ts';
import { BodyBudget, SMALL_BODY_BYTES, limitConnections } from './budgets.ts';
import { RpcCode, RpcError, invalidParams, invalidRequest, limitExceeded } from './errors.ts';
import { parseSubscribeParams, type SubscriptionHub } from './subscriptions.ts';

export type { RpcContext, RpcHandler } from './dispatch.ts';

export interface RpcServerOptions {
  /** Interface to bind; default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; 0 picks a free one (listen() reports it). Default 8545. */
  port?: number;
  /** Handlers by method name. eth_subscribe and eth_unsubscribe are the server's own and must not appear. */
  methods: Record<string, RpcHandler>;
  subscriptions: SubscriptionHub;
  /** Largest HTTP body or WebSocket message accepted; larger bodies get HTTP 413. Default 5 MiB. */
  maxRequestBytes?: number;
  /**
   * Bytes of request bodies being received or handled at once, over all connections (HTTP bodies and WebSocket
   * messages larger than 64 KiB; smaller ones, every ordinary call, are bounded by maxConnections instead). A
   * body that would pass it gets HTTP 503 (-32005 over WebSocket) and is not read. Default 4 x maxRequestBytes.
   */
  maxInFlightBodyBytes?: number;
  /**
   * Open TCP connections (HTTP keep-alive and WebSocket together); a request on a connection beyond it gets
   * HTTP 503 and the connection is closed. Default 512.
   */
  maxConnections?: number;
  /** Most requests in one batch. Default 100 (ethers batches up to 100). */
  maxBatch?: number;
  /** Most concurrent WebSocket connections; further upgrades get HTTP 503. Default 256. */
  maxWsConnections?: number;
  /** A WebSocket whose unsent data exceeds this is closed with 1008 instead of buffering more. Default 16 MiB. */
  maxWsBufferedBytes?: number;
  /**
   * Unsent data of all WebSockets together: past it, the connections with the most unsent data (consumers
   * that stopped reading) are closed with 1008 until the rest fits. Default 32 MiB.
   */
  maxWsBufferedTotalBytes?: number;
  logger?: Logger;
  /**
   * Handlers for other HTTP paths on the same port, tried in order before JSON-RPC; each returns true when it
   * took the request (e.g. /ipfs/... for the trustless gateway).
   */
  httpHandlers?: readonly ((req: IncomingMessage, res: ServerResponse) => boolean)[];
}

export interface RpcServer {
  /** Bind and start serving; resolves to the bound address. Rejects with code RPC_LISTEN_FAILED. */
  listen(): Promise<{ host: string; port: number }>;
  /** Stop accepting, close WebSockets (1001), let in-flight HTTP requests finish briefly, then cut the rest. */
  close(): Promise<void>;
  /** The bound address, or null before listen() / after close(). */
  readonly address: { host: string; port: number } | null;
}

const MiB = 1024 * 1024;
/** Longer than the idle timeout of common clients (Node's agent: 5 s) so the server never closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** A whole request (headers and body) must arrive within this; slow-loris bodies are cut. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Messages one WebSocket may have in progress before the server stops reading from it. */
const MAX_WS_IN_FLIGHT = 16;
/**
 * Unsent bytes past which the server stops reading a WebSocket's requests until its client takes them: a
 * client that does not read cannot make the node compute (and hold) answers without end.
 */
const WS_PAUSE_BUFFERED_BYTES = 1024 * 1024;
/** Ping period; a connection that has not answered the previous ping is dropped (dead NAT mappings). */
const WS_PING_INTERVAL_MS = 30_000;
/** How long close() waits for in-flight HTTP requests and WebSocket close handshakes. */
const CLOSE_GRACE_MS = 1_000;
/** A dropped slow consumer gets this long to take its close frame; then its socket and buffers are freed. */
const SLOW_CONSUMER_GRACE_MS = 1_000;
const JSON_HEADERS = { 'content-type': 'application/json' } as const;

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new DatagateError('RPC_BAD_OPTION', `createRpcServer: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Build the server; nothing is bound until listen(). Throws RPC_BAD_OPTION on invalid options. */
export function createRpcServer(options: RpcServerOptions): RpcServer {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8545;
  const methods = options.methods;
  const hub = options.subscriptions;
  const maxRequestBytes = positiveInt('maxRequestBytes', options.maxRequestBytes ?? 5 * MiB);
  const maxBatch = positiveInt('maxBatch', options.maxBatch ?? 100);
  const maxWsConnections = positiveInt('maxWsConnections', options.maxWsConnections ?? 256);
  const maxWsBufferedBytes = positiveInt('maxWsBufferedBytes', options.maxWsBufferedBytes ?? 16 * MiB);
  const maxWsBufferedTotalBytes = positiveInt('maxWsBufferedTotalBytes', options.maxWsBufferedTotalBytes ?? 32 * MiB);
  const maxInFlightBodyBytes = positiveInt('maxInFlightBodyBytes', options.maxInFlightBodyBytes ?? 4 * maxRequestBytes);
  const maxConnections = positiveInt('maxConnections', options.maxConnections ?? 512);
  const logger = options.logger ?? nopLogger;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new DatagateError('RPC_BAD_OPTION', `createRpcServer: port must be 0..65535, got ${port}`);
  }
  if (maxInFlightBodyBytes < maxRequestBytes) {
    const msg = `createRpcServer: maxInFlightBodyBytes (${maxInFlightBodyBytes}) must be at least maxRequestBytes (${maxRequestBytes})`;
    throw new DatagateError('RPC_BAD_OPTION', msg);
  }
  for (const reserved of ['eth_subscribe', 'eth_unsubscribe']) {
    if (Object.hasOwn(methods, reserved)) {
      const msg = `createRpcServer: ${reserved} is handled by the server; remove it from methods`;
      throw new DatagateError('RPC_BAD_OPTION', msg);
    }
  }
  const httpContext: RpcContext = { transport: 'http', connectionId: null };

  const handlePayload = createDispatch({ methods, maxBatch, logger });

  // ---- HTTP ----

  function sendHttp(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  }

  /** Answer without reading the body: 413 when it is too large, 503 when the server has no room for it now. */
  function refuseBody(req: IncomingMessage, res: ServerResponse, status: 413 | 503): void {
    // Stop reading: the rest of the body is never pulled off the socket, which closes once the answer is written.
    req.pause();
    req.removeAllListeners('data');
    const err = status === 413 ? invalidRequest(`request body too large: limit is ${maxRequestBytes} bytes`) : bodies.busyError();
    // connection: close makes Node destroy the socket once the response is flushed.
    sendHttp(res, status, encodeError(null, err), status === 503 ? { connection: 'close', 'retry-after': '1' } : { connection: 'close' });
  }

  const bodies = new BodyBudget(maxInFlightBodyBytes);

  function refuseConnection(req: IncomingMessage, res: ServerResponse): void {
    req.pause();
    const err = limitExceeded(`too many connections: limit is ${maxConnections}; retry shortly`);
    sendHttp(res, 503, encodeError(null, err), { connection: 'close', 'retry-after': '1' });
  }

  function onHttpRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    if (isOverLimit(req.socket)) {
      refuseConnection(req, res);
      return;
    }
    // Other services on the same port (the IPFS trustless gateway, the node's admin API) claim their paths first.
    for (const handler of options.httpHandlers ?? []) if (handler(req, res)) return;
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
        'access-control-max-age': '86400',
        'content-length': '0',
      });
      res.end();
      return;
    }
    if (req.method !== 'POST') {
      const err = invalidRequest(`HTTP method ${req.method ?? '?'} not allowed; send JSON-RPC requests with POST`);
      sendHttp(res, 405, encodeError(null, err), { allow: 'POST, OPTIONS' });
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxRequestBytes) {
      refuseBody(req, res, 413);
      return;
    }
    // The body's share of the in-flight budget, returned when the response is done or the client went away.
    let reserved = 0;
    res.once('close', () => {
      bodies.release(reserved);
      reserved = 0;
    });
    if (declared > SMALL_BODY_BYTES) {
      if (!bodies.reserve(declared)) {
        refuseBody(req, res, 503);
        return;
      }
      reserved = declared;
    }
    if (expectsContinue) res.writeContinue();
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Chunked bodies declare no length: count as they come and stop at the limits.
      const counted = BodyBudget.counted(size);
      const status = size > maxRequestBytes ? 413 : counted > reserved && !bodies.reserve(counted - reserved) ? 503 : null;
      if (status !== null) {
        refused = true;
        chunks.length = 0;
        refuseBody(req, res, status);
        return;
      }
      reserved = Math.max(reserved, counted);
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      void handlePayload(Buffer.concat(chunks, size), httpContext).then((out) => {
        if (out !== null) sendHttp(res, 200, out);
        else if (!res.headersSent && !res.destroyed) res.writeHead(204).end();
      });
    });
    req.on('error', (err) => logger.debug('http request stream failed', { error: String(err) }));
  }

  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.on('request', (req, res) => onHttpRequest(req, res, false));
  // Without this listener Node answers "100 Continue" by itself and the client would upload an oversize body.
  server.on('checkContinue', (req, res) => onHttpRequest(req, res, true));
  const isOverLimit = limitConnections(server, maxConnections);
  server.on('clientError', (err, socket) => {
    logger.debug('http client error', { error: String(err) });
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  // ---- WebSocket ----

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxRequestBytes, perMessageDeflate: false });
  /** Open WebSockets; `drop` closes one as a slow consumer (1008) and frees its buffers shortly after. */
  const sockets = new Map<string, { ws: WebSocket; alive: boolean; drop(reason: string): void; dropping: boolean }>();
  let upgrading = 0;
  let nextConnection = 1;
  let pingTimer: NodeJS.Timeout | undefined;

  function rejectUpgrade(socket: Duplex, status: string, message: string): void {
    const body = encodeError(null, limitExceeded(message));
    socket.on('error', () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isOverLimit(socket as Socket)) {
      rejectUpgrade(socket, '503 Service Unavailable', `too many connections: limit is ${maxConnections}`);
      return;
    }
    if (sockets.size + upgrading >= maxWsConnections) {
      rejectUpgrade(socket, '503 Service Unavailable', `too many WebSocket connections: limit is ${maxWsConnections}`);
      return;
    }
    upgrading++;
    // handleUpgrade answers a bad handshake itself (400) and never calls back; the socket's close settles that case.
    let settled = false;
    const settle = (): void => {
      if (!settled) upgrading--;
      settled = true;
    };
    socket.once('close', settle);
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle();
      onWsConnection(ws);
    });
  });

  /**
   * Keeps the unsent data of all WebSockets within maxWsBufferedTotalBytes by dropping the connections holding
   * the most. Only called when a send left data queued, so connections that keep up cost nothing here.
   */
  function enforceWsBufferBudget(): void {
    let total = 0;
    const live = [...sockets.values()].filter((st) => !st.dropping);
    for (const st of live) total += st.ws.bufferedAmount;
    if (total <= maxWsBufferedTotalBytes) return;
    live.sort((a, b) => b.ws.bufferedAmount - a.ws.bufferedAmount);
    for (const st of live) {
      if (total <= maxWsBufferedTotalBytes) break;
      total -= st.ws.bufferedAmount;
      st.drop('slow consumer: server send buffers full');
    }
  }

  function onWsConnection(ws: WebSocket): void {
    const connectionId = `ws-${nextConnection++}`;
    const ctx: RpcContext = { transport: 'ws', connectionId };
    const state = {
      ws,
      alive: true,
      dropping: false,
      drop(reason: string) {
        if (state.dropping) return;
        state.dropping = true;
        log.warn('closing slow WebSocket consumer', { reason, bufferedBytes: ws.bufferedAmount });
        shutdown(1008, reason);
        // A client that stopped reading never takes the close frame: free its socket and buffers anyway.
        setTimeout(() => ws.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
      },
    };
    sockets.set(connectionId, state);
    // Subscriptions created by a message stay quiet until that message's response (with their id) is sent.
    const held = new Map<string, string[]>();
    let heldBytes = 0;
    let inFlight = 0;
    let closed = false;
    const log = logger.child({ connection: connectionId });

    function shutdown(code: number, reason: string): void {
      if (closed) return;
      closed = true;
      hub.dropOwner(connectionId);
      held.clear();
      ws.close(code, reason);
    }

    // Reading stops while too many messages are in progress or too much output waits for the client.
    let outputBacklog = false;
    const readIfReady = (): void => {
      if (ws.isPaused && inFlight < MAX_WS_IN_FLIGHT && !outputBacklog && !closed) ws.resume();
    };
    const pauseOnBacklog = (): void => {
      if (ws.bufferedAmount <= WS_PAUSE_BUFFERED_BYTES) return;
      outputBacklog = true;
      ws.pause();
    };
    const onSent = (): void => {
      if (outputBacklog && ws.bufferedAmount <= WS_PAUSE_BUFFERED_BYTES) {
        outputBacklog = false;
        readIfReady();
      }
    };

    function send(text: string): void {
      if (closed || ws.readyState !== ws.OPEN) return;
      ws.send(text, onSent);
      const buffered = ws.bufferedAmount;
      if (buffered > maxWsBufferedBytes) state.drop('slow consumer: send buffer limit exceeded');
      else if (buffered > 0) enforceWsBufferBudget();
    }

    function notify(subscription: string, resultJson: string): void {
      // The result arrives serialised once for all subscribers; only the envelope is made per connection.
      const text = `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":${JSON.stringify(subscription)},"result":${resultJson}}}`;
      const queue = held.get(subscription);
      if (queue === undefined) {
        send(text);
        return;
      }
      queue.push(text);
      heldBytes += text.length;
      if (heldBytes > maxWsBufferedBytes) shutdown(1008, 'slow consumer: notification backlog limit exceeded');
    }

    function release(ids: readonly string[]): void {
      for (const id of ids) {
        const queue = held.get(id);
        held.delete(id);
        for (const text of queue ?? []) {
          heldBytes -= text.length;
          send(text);
        }
      }
    }

    async function onMessage(data: RawData): Promise<void> {
      if (closed) return;
      const created: string[] = [];
      const session: SubscriptionSession = {
        subscribe(params) {
          const request = parseSubscribeParams(params);
          // The socket may have closed while this batch ran; a subscription made now would never be dropped.
          if (closed) throw new RpcError(RpcCode.ServerError, 'connection closed');
          const id = hub.subscribe(connectionId, request, notify);
          held.set(id, []);
          created.push(id);
          return id;
        },
        unsubscribe(params) {
          const id = params[0];
          if (typeof id !== 'string') throw invalidParams('params[0]: expected a subscription id string');
          // Unsubscribed in the same batch that subscribed: its held notifications are never sent.
          for (const text of held.get(id) ?? []) heldBytes -= text.length;
          held.delete(id);
          return hub.unsubscribe(connectionId, id);
        },
      };
      const raw = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const out = await handlePayload(raw, ctx, session);
      if (out !== null) send(out);
      release(created);
    }

    ws.on('message', (data) => {
      // Large messages share the in-flight body budget with HTTP bodies; one that does not fit is not handled.
      const size = Buffer.isBuffer(data) ? data.length : Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      const counted = BodyBudget.counted(size);
      if (counted > 0 && !bodies.reserve(counted)) {
        send(encodeError(null, bodies.busyError()));
        return;
      }
      inFlight++;
      // Backpressure: past MAX_WS_IN_FLIGHT unfinished messages, stop reading until some complete.
      if (inFlight >= MAX_WS_IN_FLIGHT) ws.pause();
      pauseOnBacklog();
      void onMessage(data).finally(() => {
        bodies.release(counted);
        inFlight--;
        pauseOnBacklog();
        readIfReady();
      });
    });
    ws.on('pong', () => {
      state.alive = true;
    });
    ws.on('error', (err) => log.debug('websocket error', { error: String(err) }));
    ws.on('close', () => {
      closed = true;
      sockets.delete(connectionId);
      const dropped = hub.dropOwner(connectionId);
      log.debug('websocket closed', { droppedSubscriptions: dropped });
    });
  }

  function pingAll(): void {
    for (const state of sockets.values()) {
      if (!state.alive) {
        state.ws.terminate();
        continue;
      }
      state.alive = false;
      state.ws.ping();
    }
  }

  // ---- lifecycle ----

  let bound: { host: string; port: number } | null = null;

  return {
    get address() {
      return bound;
    },

    listen() {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => {
          const msg = `cannot listen on ${host}:${port}: ${err.message}; pick another host or port`;
          reject(new DatagateError('RPC_LISTEN_FAILED', msg, { host, port }, { cause: err }));
        };
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          server.on('error', (err) => logger.error('rpc server error', { error: String(err) }));
          const info = server.address() as AddressInfo;
          bound = { host: info.address, port: info.port };
          pingTimer = setInterval(pingAll, WS_PING_INTERVAL_MS);
          pingTimer.unref();
          logger.info('rpc server listening', { ...bound });
          resolve(bound);
        });
      });
    },

    async close() {
      clearInterval(pingTimer);
      bound = null;
      const closing = [...sockets.values()].map(
        ({ ws }) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === ws.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1001, 'server shutting down');
          }),
      );
      const httpClosed = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      const grace = setTimeout(() => {
        for (const { ws } of sockets.values()) ws.terminate();
        server.closeAllConnections();
      }, CLOSE_GRACE_MS);
      await Promise.all([...closing, httpClosed]);
      clearTimeout(grace);
      wss.close();
    },
  };
}
