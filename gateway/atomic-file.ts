// Files a node writes once and must never find half-written: the peer key, a genesis file, the data
// directory's genesis record. Written to a temporary file beside the target, fsync'd, then moved into place
// (rename to replace, hard link to refuse an existing file) and the directory fsync'd, so after a crash the
// target is either absent, the old file or the whole new one.
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o600). */
  readonly mode?: number;
  /** Refuse (EEXIST) when the target exists instead of replacing it. */
  readonly exclusive?: boolean;
}

/** Write `data` to `path` atomically (see the file comment). Throws the fs error (EEXIST when exclusive). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', options.mode ?? 0o600);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.exclusive === true) {
      await link(tmp, path);
      await unlink(tmp);
    } else {
      await rename(tmp, path);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
