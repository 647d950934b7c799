// JSON-RPC 2.0 message dispatch, independent of the transport: one HTTP body or WebSocket message in (a single
// request or a batch), the response text out. It validates each entry, answers notifications (requests without
// an id) with nothing, invokes the method handlers, routes eth_subscribe / eth_unsubscribe to the connection's
// subscription session, and turns every failure into a JSON-RPC error object; it never throws.

import type { Logger } from '../logger.ts';
import {
  RpcCode,
  RpcError,
  invalidParams,
  invalidRequest,
  limitExceeded,
  methodNotFound,
  parseError,
  toRpcError,
} from './errors.ts';

/** Where a call came from. `connectionId` identifies a WebSocket connection; null over HTTP. */
export type RpcContext =
  | { readonly transport: 'http'; readonly connectionId: null }
  | { readonly transport: 'ws'; readonly connectionId: string };

/**
 * One RPC method. `params` is the request's positional params ([] when omitted), unvalidated: the handler checks
 * them and throws RpcError (e.g. invalidParams) or ChainError. The result must be JSON-ready (quantities as 0x
 * strings, never bigint); undefined is sent as null.
 */
export type RpcHandler = (params: unknown[], ctx: RpcContext) => unknown | Promise<unknown>;

/** A request id as JSON-RPC 2.0 allows it; null for malformed requests. */
export type JsonRpcId = string | number | null;

/** Per-message state for subscription methods; absent over HTTP, where eth_subscribe is refused. */
export interface SubscriptionSession {
  subscribe(params: unknown[]): string;
  unsubscribe(params: unknown[]): boolean;
}

/** The JSON text of an error response to request `id`. */
export function encodeError(id: JsonRpcId, err: RpcError): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: err.toJSON() });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isValidId(value: unknown): value is JsonRpcId {
  return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** What dispatch needs: the handlers by method name, the batch limit and where to log handler failures. */
export interface DispatchOptions {
  readonly methods: Readonly<Record<string, RpcHandler>>;
  /** Most requests in one batch; larger batches are answered with one limit-exceeded error. */
  readonly maxBatch: number;
  readonly logger: Logger;
}

/**
 * Handles one HTTP body or WebSocket message: `raw` bytes in, the response text out, or null when there is
 * nothing to send (only notifications). Never throws.
 */
export type Dispatch = (raw: Buffer, ctx: RpcContext, session?: SubscriptionSession) => Promise<string | null>;

/** Builds the dispatch function over `methods`; options are taken as given (the server validates them). */
export function createDispatch({ methods, maxBatch, logger }: DispatchOptions): Dispatch {
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  /** Runs one validated call: the server's own subscription methods, or the named handler; undefined becomes null. */
  async function call(method: string, params: unknown[], ctx: RpcContext, session?: SubscriptionSession): Promise<unknown> {
    if (method === 'eth_subscribe' || method === 'eth_unsubscribe') {
      if (session === undefined) {
        const msg = `${method} needs a WebSocket connection; subscriptions are not available over HTTP`;
        throw new RpcError(RpcCode.MethodNotFound, msg);
      }
      return method === 'eth_subscribe' ? session.subscribe(params) : session.unsubscribe(params);
    }
    const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (handler === undefined) throw methodNotFound(method);
    const result = await handler(params, ctx);
    return result === undefined ? null : result;
  }

  /** Validates one request object and answers it: the response text, or null for a notification. */
  async function handleEntry(entry: unknown, ctx: RpcContext, session?: SubscriptionSession): Promise<string | null> {
    // Malformed entries are answered with id null even without an id: the spec cannot tell them from notifications.
    if (!isRecord(entry)) return encodeError(null, invalidRequest('expected a request object'));
    const isNotification = !Object.hasOwn(entry, 'id');
    const rawId = entry['id'];
    if (!isNotification && !isValidId(rawId)) {
      return encodeError(null, invalidRequest('id must be a string, number or null'));
    }
    const id: JsonRpcId = isNotification ? null : (rawId as JsonRpcId);
    if (entry['jsonrpc'] !== '2.0') return encodeError(id, invalidRequest('jsonrpc must be "2.0"'));
    const method = entry['method'];
    if (typeof method !== 'string') return encodeError(id, invalidRequest('method must be a string'));
    const rawParams = entry['params'];
    // null is taken as "no params", as geth does; named (object) params are refused because eth methods are positional.
    let params: unknown[];
    if (rawParams === undefined || rawParams === null) params = [];
    else if (Array.isArray(rawParams)) params = rawParams;
    else if (typeof rawParams !== 'object') return encodeError(id, invalidRequest('params must be an array'));
    else if (isNotification) return null;
    else return encodeError(id, invalidParams('params must be an array (positional), not an object'));

    let result: unknown;
    try {
      result = await call(method, params, ctx, session);
    } catch (err) {
      const mapped = toRpcError(err);
      if (mapped.isInternal) {
        const stack = err instanceof Error ? err.stack : undefined;
        logger.error('rpc method failed', { method: method.slice(0, 64), error: String(err), stack });
      }
      return isNotification ? null : encodeError(id, mapped.error);
    }
    if (isNotification) return null;
    try {
      return JSON.stringify({ jsonrpc: '2.0', id, result });
    } catch (err) {
      // bigint, cycles: a handler bug. The client gets -32603, the log says which method.
      logger.error('rpc result not serializable', { method: method.slice(0, 64), error: String(err) });
      return encodeError(id, toRpcError(err).error);
    }
  }

  /** Handle one HTTP body or WebSocket message. Never throws. */
  async function handlePayload(raw: Buffer, ctx: RpcContext, session?: SubscriptionSession): Promise<string | null> {
    let message: unknown;
    try {
      message = JSON.parse(utf8.decode(raw));
    } catch (err) {
      return encodeError(null, parseError(err instanceof TypeError ? 'body is not valid UTF-8' : 'invalid JSON'));
    }
    try {
      if (!Array.isArray(message)) return await handleEntry(message, ctx, session);
      if (message.length === 0) return encodeError(null, invalidRequest('empty batch'));
      if (message.length > maxBatch) {
        return encodeError(null, limitExceeded(`batch too large: ${message.length} requests, limit is ${maxBatch}`));
      }
      // Entries run one after another, like geth: a batch of dependent calls (nonce n, n+1) keeps its order.
      // Every few entries the batch yields to the event loop, so that a big batch of transactions (each a
      // signature recovery) cannot hold up consensus I/O that completed meanwhile.
      const parts: string[] = [];
      for (let i = 0; i < message.length; i++) {
        if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        const part = await handleEntry(message[i], ctx, session);
        if (part !== null) parts.push(part);
      }
      return parts.length === 0 ? null : `[${parts.join(',')}]`;
    } catch (err) {
      logger.error('rpc dispatch failed', { error: String(err), stack: err instanceof Error ? err.stack : undefined });
      return encodeError(null, toRpcError(err).error);
    }
  }

  return handlePayload;
}

/** Batch entries handled between yields to the event loop. */
const YIELD_EVERY = 8;
