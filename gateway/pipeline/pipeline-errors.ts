// Typed errors of the durable pipeline (ingest queue, segment state machine, store verification), with
// stable codes. They live beside errors.ts (the segment format's codes) because that file belongs to the
// segment format; invalid arguments still use PipelineError PIPELINE_INVALID_INPUT from errors.ts.
import { DatagateError } from '../../chain/index.ts';

/** Stable error codes of the pipeline runtime. Never renumber or reuse a code for another meaning. */
export type PipelineRuntimeErrorCode =
  /** A disk bound (limits.maxQueueBytes, or maxStoreBytes under 'stop-accepting') is reached: the reading
   * was not taken. Do not acknowledge it upstream; retry later. `fields.bound` says which bound. */
  | 'PIPELINE_FULL'
  /** ingest()/flush() after close(). */
  | 'PIPELINE_CLOSED'
  /** A LevelDB write of the pipeline failed (disk full, I/O error): nothing more is accepted. Fix the disk and
   * restart; the database resumes where it stopped. */
  | 'PIPELINE_FAILED'
  /** Another process holds the pipeline database open. */
  | 'PIPELINE_LOCKED'
  /** The pipeline database was written by another schema version. */
  | 'PIPELINE_SCHEMA_MISMATCH'
  /** A record of the pipeline database cannot be decoded: the database is damaged. */
  | 'PIPELINE_STATE_CORRUPT'
  /** No segment with that id in this pipeline. */
  | 'PIPELINE_SEGMENT_NOT_FOUND'
  /** The segment was dropped by the 'drop-oldest-unsold' policy: its key and data are gone. */
  | 'PIPELINE_SEGMENT_DROPPED'
  /** verifyStore was pointed at a master key file that does not exist (it never creates one). */
  | 'MASTER_KEY_MISSING';

/** Error raised by the pipeline runtime (pipeline.ts, verify-store.ts). */
export class PipelineRuntimeError extends DatagateError<PipelineRuntimeErrorCode> {
  constructor(code: PipelineRuntimeErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'PipelineRuntimeError';
  }
}
