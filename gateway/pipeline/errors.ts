// Typed errors of the segment pipeline (segment format, sealing and opening, key wrapping), with stable codes.
// Callers and tests match on `code`, never on the message; `fields` name the argument or check at fault and
// never hold key material.
import { DatagateError } from '../../chain/index.ts';

/** Stable error codes of gateway/pipeline. Never renumber or reuse a code for another meaning. */
export type PipelineErrorCode =
  /** Bytes that are not a well-formed segment envelope, manifest or readings encoding, or readings that do
   * not match their manifest (count, seq, ts, stream, schema). The stored object is damaged or not a segment. */
  | 'SEGMENT_CORRUPT'
  /** A segment envelope of a format version this build does not know: upgrade datagate. */
  | 'SEGMENT_UNSUPPORTED_VERSION'
  /** The key is not the one the manifest commits to (keccak256(key) != keyCommitment), or not 32 bytes. */
  | 'SEGMENT_WRONG_KEY'
  /** The key matches its commitment but the AEAD tag does not verify: ciphertext, nonce or manifest altered. */
  | 'SEGMENT_TAMPERED'
  /** The decrypted readings do not hash to the manifest's Merkle root. */
  | 'SEGMENT_MERKLE_MISMATCH'
  /** The manifest's device signature does not verify, or the device address does not belong to its key. */
  | 'SEGMENT_BAD_SIGNATURE'
  /** A caller passed something that cannot be sealed or used (readings, key, signer); fields name it. */
  | 'PIPELINE_INVALID_INPUT'
  /** A wrapped segment key does not open: wrong master key, wrong segment id, or altered/truncated bytes. */
  | 'KEY_UNWRAP_FAILED'
  /** The master key file can be read or written by group or others. */
  | 'MASTER_KEY_INSECURE'
  /** The master key file is not a regular file of exactly 32 bytes. */
  | 'MASTER_KEY_CORRUPT';

/** Error raised by gateway/pipeline. */
export class PipelineError extends DatagateError<PipelineErrorCode> {
  constructor(code: PipelineErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'PipelineError';
  }
}
