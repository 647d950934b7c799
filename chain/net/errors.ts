// Errors of the peer transport (see docs/architecture.md, "Peers").
import { DatagateError } from '../errors.ts';

export type NetErrorCode =
  /** A frame's length prefix exceeds the transport's maximum frame size. */
  | 'NET_FRAME_TOO_LARGE'
  /** A frame does not decode as what its protocol carries. */
  | 'NET_FRAME_MALFORMED'
  /** The peer's authentication proof is missing, malformed or does not verify. */
  | 'NET_AUTH_FAILED'
  /** The peer closed the handshake before it finished (it may be restarting: it is not refused for it). */
  | 'NET_AUTH_INCOMPLETE'
  /** The peer did not finish the authentication handshake in time. */
  | 'NET_AUTH_TIMEOUT'
  /** The transport options cannot work (e.g. a bootstrap address without /p2p/). */
  | 'NET_CONFIG_INVALID';

export class NetError extends DatagateError<NetErrorCode> {
  constructor(code: NetErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'NetError';
  }
}
