// How a serving command (`datagate dev`, `datagate start`) waits and stops: until a stop signal or a fatal error,
// then a stop bounded by DATAGATE_STOP_DEADLINE_MS (NODE_STOP_TIMEOUT past it: the stores resume from their
// last durable state).
import type { Logger } from '../../chain/index.ts';
import { DatagateError } from '../../chain/index.ts';
import { UsageError } from './args.ts';

/** A node that did not stop within the deadline. */
export class StopTimeoutError extends DatagateError<'NODE_STOP_TIMEOUT'> {}

export interface ServeOptions {
  stop(): Promise<void>;
  /** The command's stop signal (SIGINT, SIGTERM). */
  readonly signal: AbortSignal;
  /** Fired by the node itself after a fatal error. */
  readonly stopped: AbortSignal;
  readonly logger: Logger;
  /** Runs once the wait ends, before the stop. */
  readonly onStopping?: () => void;
}

/** Default of DATAGATE_STOP_DEADLINE_MS: how long a stop may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 20_000;
/** The stop deadline (ms) from DATAGATE_STOP_DEADLINE_MS, or STOP_DEADLINE_MS; throws CLI_USAGE naming a bad value. */
export function stopDeadlineMs(env: NodeJS.ProcessEnv): number {
  const raw = env.DATAGATE_STOP_DEADLINE_MS;
  if (raw === undefined || raw === '') return STOP_DEADLINE_MS;
  const ms = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(ms) || ms < 1) throw new UsageError(`DATAGATE_STOP_DEADLINE_MS must be a whole number of milliseconds >= 1 (got "${raw}")`);
  return ms;
}

/** Wait for either signal, then stop within the deadline. */
export async function serveUntilStopped(opts: ServeOptions): Promise<void> {
  const { signal, stopped, logger } = opts;
  await new Promise<void>((resolve) => {
    if (signal.aborted || stopped.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    stopped.addEventListener('abort', () => resolve(), { once: true });
  });
  opts.onStopping?.();
  logger.info('stopping');
  // After a signal the entry point's deadline bounds the stop too; after a fatal error nobody sent one.
  const deadline = stopDeadlineMs(process.env);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StopTimeoutError('NODE_STOP_TIMEOUT', `the node did not stop within ${deadline} ms; exiting without a clean shutdown (the stores resume from their last durable state)`)), deadline);
  });
  try {
    await Promise.race([opts.stop(), late]);
  } finally {
    clearTimeout(timer);
  }
}
