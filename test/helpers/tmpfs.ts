// A small real filesystem for tests of a full disk: a tmpfs of a given size mounted on a temp directory and
// unmounted after the test. Mounting needs root (CAP_SYS_ADMIN): without it the test skips with a clear
// reason, unless DATAGATE_REQUIRE_SYSTEM=1, when it fails instead, so CI cannot pass by skipping.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const TMPFS_SKIP = 'skipped: mounting a tmpfs needs root (run the tests as root, or in a container with CAP_SYS_ADMIN)';

/** false when this process may mount a tmpfs, else TMPFS_SKIP. Throws instead when DATAGATE_REQUIRE_SYSTEM=1. */
export function tmpfsSkipReason(): string | false {
  if (process.getuid?.() === 0) return false;
  if (process.env['DATAGATE_REQUIRE_SYSTEM'] === '1') throw new Error('DATAGATE_REQUIRE_SYSTEM=1 but mounting a tmpfs needs root');
  return TMPFS_SKIP;
}

type TestContext = { after(fn: () => unknown): void };

/** Mount a tmpfs of `mib` MiB on a fresh directory, unmounted and removed after `t` (register it before stores opened in it). */
export function mountTmpfs(t: TestContext, mib: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${r.stderr || r.error?.message}`);
  }
  t.after(() => {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Free bytes (for an unprivileged user) of the filesystem holding `path`. */
export function freeBytes(path: string): number {
  const st = statfsSync(path);
  return st.bavail * st.bsize;
}

/** Write `file` until the filesystem holding it has about `leaveBytes` free (all of it when 0: ENOSPC ends it). */
export function fillDisk(file: string, leaveBytes: number): void {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  for (;;) {
    const room = freeBytes(dirname(file)) - leaveBytes;
    if (room <= 0) return;
    try {
      writeFileSync(file, room >= chunk.length ? chunk : chunk.subarray(0, room), { flag: 'a' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw err;
    }
  }
}
