// Typed errors with stable codes. Callers and tests match on `code`, never on the message;
// messages say what went wrong and, where possible, what to do about it.

/** Stable error codes of the ledger. Never renumber or reuse a code for another meaning. */
export type ChainErrorCode =
  | 'TX_MALFORMED'
  | 'TX_TOO_LARGE'
  | 'TX_WRONG_CHAIN_ID'
  | 'TX_UNPROTECTED'
  | 'TX_BAD_SIGNATURE'
  | 'TX_HIGH_S'
  | 'TX_UNSUPPORTED_TYPE'
  | 'TX_NONCE_TOO_LOW'
  | 'TX_NONCE_TOO_HIGH'
  | 'TX_INSUFFICIENT_FUNDS'
  | 'TX_INTRINSIC_GAS_TOO_LOW'
  | 'TX_GAS_LIMIT_EXCEEDED'
  | 'TX_FEE_TOO_LOW'
  | 'TX_ALREADY_KNOWN'
  | 'TX_REPLACEMENT_UNDERPRICED'
  | 'TXPOOL_FULL'
  | 'TXPOOL_SENDER_LIMIT'
  | 'BLOCK_INVALID'
  | 'CERT_INVALID'
  | 'STORE_CHAIN_MISMATCH'
  | 'STORE_SCHEMA_MISMATCH'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  | 'CRYPTO_INVALID_INPUT'
  | 'WAL_CORRUPT'
  | 'WAL_WRITE_FAILED'
  | 'SIGN_CONFLICT'
  | 'SIGN_STATE_CORRUPT'
  /** The double-sign guard has no state file, but the chain shows its key signed: restore the file. */
  | 'SIGN_STATE_MISSING'
  /** The double-sign guard's state is older than what the chain shows its key signed: restore the newest copy. */
  | 'SIGN_STATE_BEHIND'
  /** GuardedSigner.fence was pointed at an existing state file; it never replaces one. */
  | 'SIGN_STATE_EXISTS';

/** Base class of every datagate error: a stable `code` plus structured fields for logs. */
export class DatagateError<C extends string = string> extends Error {
  readonly code: C;
  readonly fields: Record<string, unknown>;

  constructor(code: C, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatagateError';
    this.code = code;
    this.fields = fields;
  }
}

/** Error raised by the ledger (transactions, blocks, store, crypto). */
export class ChainError extends DatagateError<ChainErrorCode> {
  constructor(code: ChainErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'ChainError';
  }
}

/** True when `err` is a DatagateError carrying `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof DatagateError && err.code === code;
}
