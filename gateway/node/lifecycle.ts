// One start order and one undo stack for everything a node opens (docs/architecture.md "Composition"). Each
// part registers how to close what it opened right after opening it; a failed or interrupted start, and a
// stop, close everything opened so far in reverse order, once. A close that fails is logged and the rest still
// close, so one stuck store never keeps the others open.
import type { Logger } from '../../chain/index.ts';
import { DatagateError } from '../../chain/index.ts';
import { prepareDataDir } from '../config/config.ts';
import { diskFullOr } from '../disk-space.ts';

/** A start that a stop signal interrupted (NODE_START_STOPPED): what was opened is closed again. */
export class LifecycleError extends DatagateError<'NODE_START_STOPPED'> {}

interface Undo {
  readonly name: string;
  readonly close: () => unknown;
}

export class Lifecycle {
  private readonly undo: Undo[] = [];
  private closing: Promise<void> | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly signal?: AbortSignal,
  ) {}

  /** Throws NODE_START_STOPPED once the stop signal has fired: call between steps of a start. */
  checkStop(): void {
    if (this.signal?.aborted === true) throw new LifecycleError('NODE_START_STOPPED', 'stopped by a signal during start-up; what was opened is closed again');
  }

  /** Register `close` to run at stop, before everything registered earlier. */
  defer(name: string, close: () => unknown): void {
    if (this.closing !== null) throw new Error(`lifecycle: "${name}" registered after the stop began`);
    this.undo.push({ name, close });
  }

  /** Check the stop signal, open a part, and register its close. */
  async open<T>(name: string, opener: () => Promise<T>, close: (part: T) => unknown): Promise<T> {
    this.checkStop();
    const part = await opener();
    this.defer(name, () => close(part));
    return part;
  }

  /** Run `start` with this lifecycle; if it throws, close what it opened and rethrow. */
  async starting<T>(start: () => Promise<T>): Promise<T> {
    try {
      return await start();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Close everything in reverse order of opening; later calls wait for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (let u = this.undo.pop(); u !== undefined; u = this.undo.pop()) {
        try {
          await u.close();
        } catch (err) {
          this.logger.error('closing failed; closing the rest', { part: u.name, error: err });
        }
      }
    })();
    return this.closing;
  }
}

/**
 * Make `dir` a usable data directory (0700) and run `start` on a new Lifecycle there: a start that fails closes
 * what it opened, and one that failed on a full disk says DISK_FULL rather than what broke first.
 */
export async function startInDataDir<T>(dir: string, logger: Logger, signal: AbortSignal | undefined, start: (life: Lifecycle, dataDir: string) => Promise<T>): Promise<T> {
  const dataDir = await prepareDataDir(dir);
  const life = new Lifecycle(logger, signal);
  try {
    return await life.starting(() => start(life, dataDir));
  } catch (err) {
    throw await diskFullOr(err, dataDir);
  }
}
