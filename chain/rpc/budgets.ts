// Server-wide budgets of the RPC transport, shared by HTTP and WebSocket: the bytes of request bodies in flight
// over all connections, and the number of open connections. Per-request limits cannot bound these: sixty
// clients each within maxRequestBytes still hold sixty bodies at once.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { limitExceeded, type RpcError } from './errors.ts';

/** Bodies up to this size are not counted, so a burst of large uploads never starves ordinary calls. */
export const SMALL_BODY_BYTES = 64 * 1024;
/** A connection beyond the limit that sends no request within this is cut. */
const REFUSED_CONNECTION_IDLE_MS = 2_000;

/** Bytes of request bodies being received or handled; a body is admitted only while the total stays within max. */
export class BodyBudget {
  private used = 0;

  constructor(readonly max: number) {}

  /** The part of a `size`-byte body that counts against the budget: 0 for small bodies. */
  static counted(size: number): number {
    return size > SMALL_BODY_BYTES ? size : 0;
  }

  /** Take `bytes`; false (nothing taken) when the budget would be exceeded. */
  reserve(bytes: number): boolean {
    if (this.used + bytes > this.max) return false;
    this.used += bytes;
    return true;
  }

  /** Give back `bytes` taken by reserve(). */
  release(bytes: number): void {
    this.used -= bytes;
  }

  /** The error a body refused for lack of budget gets: -32005, retry later. */
  busyError(): RpcError {
    return limitExceeded(`server busy: request bodies in flight would exceed ${this.max} bytes; retry shortly`);
  }
}

/**
 * Count `server`'s open connections; those accepted beyond `max` are marked so that their first request or
 * upgrade can be answered 503, and cut if they send nothing. Returns the test for a marked socket.
 */
export function limitConnections(server: Server, max: number): (socket: Socket) => boolean {
  let open = 0;
  const overLimit = new WeakSet<Socket>();
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      overLimit.add(socket);
      const cut = setTimeout(() => socket.destroy(), REFUSED_CONNECTION_IDLE_MS);
      cut.unref();
      socket.once('close', () => clearTimeout(cut));
      return;
    }
    open++;
    socket.once('close', () => open--);
  });
  return (socket) => overLimit.has(socket);
}
