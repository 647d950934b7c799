// A full disk told apart from a damaged store: LevelDB, the WAL and the stores wrap the ENOSPC of a failed
// open or write in their own errors (STORE_CORRUPT, CONTENT_STORE_FAILED, ...), which would send an operator
// to delete a database that is intact. diskFullOr() finds the ENOSPC in the chain of causes and says DISK_FULL.
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DatagateError } from '../chain/index.ts';

/** The disk is full: nothing is damaged; free space and start again. */
export class DiskFullError extends DatagateError<'DISK_FULL'> {}

const ENOSPC_TEXT = /ENOSPC|No space left on device/;

/** Whether `err` or one of its causes is an ENOSPC. */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC' || ENOSPC_TEXT.test(e.message)) return true;
  }
  return false;
}

/** Free bytes of the filesystem holding `path`, or its nearest existing parent (null when none can be read). */
export async function freeBytesOf(path: string): Promise<number | null> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = await statfs(p);
      return st.bavail * st.bsize;
    } catch {
      if (dirname(p) === p) return null;
    }
  }
}

/** DISK_FULL (with `err` as its cause) when `err` comes from a full disk under `dir`, else `err` itself. */
export async function diskFullOr(err: unknown, dir: string): Promise<unknown> {
  if (err instanceof DiskFullError || !isDiskFull(err)) return err;
  const freeBytes = await freeBytesOf(dir);
  const detail = err instanceof Error ? `: ${err.message}` : '';
  return new DiskFullError(
    'DISK_FULL',
    `the disk holding ${dir} is full (${freeBytes ?? 'unknown'} bytes free)${detail}. The stores are not damaged: free disk space (or move the data directory to a larger disk) and start again`,
    { dir, freeBytes },
    { cause: err },
  );
}
