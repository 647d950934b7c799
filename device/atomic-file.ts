// The one way the gateway writes a small file that must be whole after a crash (keys, the double-sign
// guard's state, tokens, records): docs/architecture.md "Storage". A unique temp file beside the target is
// created exclusively with the mode, written, fsync'd and closed, then moved into place, then the directory
// is fsync'd so the new name survives a power cut. A reader sees the old file or the new one, never a part.
// On any failure the temp file is removed and the target is left as it was.
import { randomBytes } from 'node:crypto';
import { access, link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface WriteFileAtomicOptions {
  /** Permission bits of the file, set exactly whatever the umask (default 0o600: owner only). */
  readonly mode?: number;
  /**
   * Never replace an existing file: the temp file is hard-linked into place, which fails where `path`
   * exists, and the write rejects with Node's EEXIST error (err.code === 'EEXIST'). On a filesystem without
   * hard links it falls back to check-then-rename, which a concurrent writer could race.
   */
  readonly exclusive?: boolean;
}

/** Codes with which link() says the filesystem has no hard links (FAT, some FUSE and network mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function existsError(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EEXIST: file already exists, link '${path}'`), { code: 'EEXIST', errno: -17, syscall: 'link', path });
}

/** Write `data` to `path` atomically and durably (see the file comment); strings are written as UTF-8. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  // Unique per call, so concurrent writers never share a temp file and each rename moves one whole file.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // open()'s mode is filtered by the umask; chmod is not
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.exclusive === true) await linkNew(tmp, path);
    else await rename(tmp, path);
  } finally {
    // After a rename the temp name is gone and this does nothing; after a link it drops the second name.
    await rm(tmp, { force: true });
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

async function linkNew(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !NO_HARD_LINKS.has(code)) throw err;
    if (await access(path).then(() => true, () => false)) throw existsError(path);
    await rename(tmp, path);
  }
}
