// JSON-RPC 2.0 errors of the RPC server: the numeric codes wallets and libraries (ethers, viem) switch on,
// an RpcError carrying one, and the mapping from whatever a method handler threw to what goes on the wire.
// Numbers follow the JSON-RPC 2.0 spec and geth, because clients classify errors by them (ethers turns
// -32000 "nonce too low" into NONCE_EXPIRED, code 3 into CALL_EXCEPTION with the revert data).

import { ChainError, DatagateError } from '../errors.ts';

/** Numeric JSON-RPC error codes used by this server. */
export const RpcCode = {
  /** The request was not valid JSON. */
  ParseError: -32700,
  /** Valid JSON but not a JSON-RPC 2.0 request object (or an empty batch). */
  InvalidRequest: -32600,
  /** No such method, or not available on this transport. */
  MethodNotFound: -32601,
  /** Wrong number, type or shape of params. */
  InvalidParams: -32602,
  /** The server failed; details are in its log, never in the response. */
  InternalError: -32603,
  /** Generic server error; geth uses it for rejected transactions ("nonce too low"). */
  ServerError: -32000,
  /** A server limit was hit (batch size, subscriptions per connection). */
  LimitExceeded: -32005,
  /** EVM execution reverted; `data` holds the 0x revert bytes. */
  ExecutionReverted: 3,
} as const;

/** Stable DatagateError codes of RpcError, one per numeric code (tests and logs match on these). */
export type RpcErrorCode =
  | 'RPC_PARSE_ERROR'
  | 'RPC_INVALID_REQUEST'
  | 'RPC_METHOD_NOT_FOUND'
  | 'RPC_INVALID_PARAMS'
  | 'RPC_INTERNAL_ERROR'
  | 'RPC_SERVER_ERROR'
  | 'RPC_LIMIT_EXCEEDED'
  | 'RPC_EXECUTION_REVERTED'
  | 'RPC_ERROR';

const codeNames = new Map<number, RpcErrorCode>([
  [RpcCode.ParseError, 'RPC_PARSE_ERROR'],
  [RpcCode.InvalidRequest, 'RPC_INVALID_REQUEST'],
  [RpcCode.MethodNotFound, 'RPC_METHOD_NOT_FOUND'],
  [RpcCode.InvalidParams, 'RPC_INVALID_PARAMS'],
  [RpcCode.InternalError, 'RPC_INTERNAL_ERROR'],
  [RpcCode.ServerError, 'RPC_SERVER_ERROR'],
  [RpcCode.LimitExceeded, 'RPC_LIMIT_EXCEEDED'],
  [RpcCode.ExecutionReverted, 'RPC_EXECUTION_REVERTED'],
]);

/** The `error` member of a JSON-RPC response. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * An error a method handler throws to choose exactly what the client sees: `rpcCode` and `message` go on the
 * wire as they are, `data` too when set (it must be JSON-ready: no bigint). The DatagateError `code` is derived
 * from `rpcCode` ('RPC_ERROR' for codes outside RpcCode).
 */
export class RpcError extends DatagateError<RpcErrorCode> {
  readonly rpcCode: number;
  readonly data: unknown;

  constructor(rpcCode: number, message: string, data?: unknown, options?: { cause?: unknown }) {
    super(codeNames.get(rpcCode) ?? 'RPC_ERROR', message, { rpcCode }, options);
    this.name = 'RpcError';
    this.rpcCode = rpcCode;
    this.data = data;
  }

  /** The JSON-RPC `error` object; `data` is omitted when undefined. */
  toJSON(): JsonRpcErrorObject {
    return this.data === undefined
      ? { code: this.rpcCode, message: this.message }
      : { code: this.rpcCode, message: this.message, data: this.data };
  }
}

/** Method names are echoed in messages; a client sending a megabyte-long name gets a short one back. */
function shortName(name: string): string {
  return name.length > 64 ? `${name.slice(0, 64)}...` : name;
}

/** -32700: the payload is not JSON (or not UTF-8). */
export function parseError(detail = 'invalid JSON'): RpcError {
  return new RpcError(RpcCode.ParseError, `parse error: ${detail}`);
}

/** -32600: not a JSON-RPC 2.0 request; `detail` says which member is wrong. */
export function invalidRequest(detail: string): RpcError {
  return new RpcError(RpcCode.InvalidRequest, `invalid request: ${detail}`);
}

/** -32601 with geth's wording, which some clients match on. */
export function methodNotFound(method: string): RpcError {
  return new RpcError(RpcCode.MethodNotFound, `the method ${shortName(method)} does not exist/is not available`);
}

/** -32602: `detail` names the bad argument, e.g. "params[0]: expected a 0x-prefixed address". */
export function invalidParams(detail: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, `invalid params: ${detail}`);
}

/** -32603 with a fixed message: what failed is logged server-side, never sent. */
export function internalError(): RpcError {
  return new RpcError(RpcCode.InternalError, 'internal error');
}

/** -32000: a request the node refuses, e.g. a transaction rejected by the pool. */
export function serverError(message: string, data?: unknown): RpcError {
  return new RpcError(RpcCode.ServerError, message, data);
}

/** -32005: `message` should name the limit so the client can adapt (e.g. split its batch). */
export function limitExceeded(message: string): RpcError {
  return new RpcError(RpcCode.LimitExceeded, message);
}

/**
 * 3: execution reverted, as geth reports it: message "execution reverted" (plus ": reason" when the revert
 * data decodes to a reason string) and `data` the 0x-prefixed revert bytes, which ethers decodes itself.
 */
export function executionReverted(revertData: string, reason?: string): RpcError {
  const message = reason === undefined ? 'execution reverted' : `execution reverted: ${reason}`;
  return new RpcError(RpcCode.ExecutionReverted, message, revertData);
}

/**
 * Map anything a handler threw to the RpcError sent to the client: an RpcError as it is; a ChainError to -32000
 * with its message and `data: { code }` (its stable code, for clients that want more than the text); anything
 * else to a bare -32603 so no internal detail or stack leaves the process. `isInternal` tells the caller to log.
 */
export function toRpcError(err: unknown): { error: RpcError; isInternal: boolean } {
  if (err instanceof RpcError) return { error: err, isInternal: false };
  if (err instanceof ChainError) return { error: serverError(err.message, { code: err.code }), isInternal: false };
  return { error: internalError(), isInternal: true };
}
