// Real serial ports for integration tests, without hardware: a socat PTY pair whose two ends appear as
// symlinks in a directory of the test's choosing. Code under test opens `devPath` as if it were
// /dev/ttyUSB0; the test plays the device on `simPath` (write() and onData()).
//
//   const pty = await startPtyPair(dir);      // socat -d -d pty,raw,echo=0,link=<dir>/dev pty,raw,echo=0,link=<dir>/sim
//   t.after(() => pty.stop());
//   await pty.write('{"t":21.5}\n');          // bytes as given: add '\n' or '\r\n' yourself
//   pty.onData((b) => ...);                   // bytes the code under test wrote to devPath (e.g. Modbus requests)
//   await pty.stop();                         // "unplug": socat exits, both links vanish, readers of devPath get a disconnect
//   await pty.restart();                      // "replug": a new socat on the same link paths
//
// Skipping: ptySkipReason() is PTY_SKIP when socat is missing, unless DATAGATE_REQUIRE_SYSTEM=1 (CI), when it
// throws instead, so CI cannot pass by skipping. The sim end is opened with serialport (a dependency anyway).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';

export const PTY_SKIP = 'skipped: install socat (apt-get install socat)';

/** false when socat is on PATH, else PTY_SKIP; throws instead when DATAGATE_REQUIRE_SYSTEM=1. */
export function ptySkipReason(): string | false {
  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).error === undefined) return false;
  if (process.env['DATAGATE_REQUIRE_SYSTEM'] === '1') throw new Error('DATAGATE_REQUIRE_SYSTEM=1 but socat is not on PATH; apt-get install socat');
  return PTY_SKIP;
}

export interface PtyPair {
  /** The end the code under test opens (stands for the device node, e.g. /dev/ttyUSB0). */
  readonly devPath: string;
  /** The end the test drives (the simulated device). */
  readonly simPath: string;
  /** Writes exactly these bytes to the sim end and waits until they are handed to the PTY. Throws while stopped. */
  write(data: string | Uint8Array): Promise<void>;
  /** Calls `listener` with the bytes the code under test writes to devPath; kept across restart(). */
  onData(listener: (chunk: Buffer) => void): void;
  /** Unplug: closes the sim end and ends socat; both links disappear. Idempotent. */
  stop(): Promise<void>;
  /** Replug: starts socat again on the same link paths (stopping it first if it runs). */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 5000;
/** Child processes to end if the test process exits without stop(). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Starts a socat PTY pair with links `<dir>/dev` and `<dir>/sim` (dir must exist); resolves when both are usable. */
export async function startPtyPair(dir: string): Promise<PtyPair> {
  const devPath = join(dir, 'dev');
  const simPath = join(dir, 'sim');
  const listeners: ((chunk: Buffer) => void)[] = [];
  let socat: ChildProcess | null = null;
  let sim: SerialPort | null = null;

  const start = async (): Promise<void> => {
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${devPath}`, `pty,raw,echo=0,link=${simPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    socat = child;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => fail(`socat did not start within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      const onLog = (b: Buffer): void => {
        log += b.toString();
        if (log.includes('starting data transfer loop')) done();
      };
      const onExit = (code: number | null): void => fail(`socat exited (${code})`);
      const onError = (err: Error): void => fail(`socat could not run: ${err.message}`);
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stderr?.off('data', onLog);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      function done(): void {
        cleanup();
        child.stderr?.resume(); // keep draining its log so socat never blocks on a full pipe
        resolve();
      }
      function fail(why: string): void {
        cleanup();
        child.kill('SIGKILL');
        reject(new Error(`${why}: ${log.trim()}`));
      }
      child.stderr?.on('data', onLog);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    if (!existsSync(devPath) || !existsSync(simPath)) throw new Error(`socat started but ${devPath} / ${simPath} are missing`);
    const port = new SerialPort({ path: simPath, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => {
      for (const l of listeners) l(chunk);
    });
    port.on('error', () => {}); // a write racing stop(): the caller's write() rejects instead
    sim = port;
  };

  const stop = async (): Promise<void> => {
    const port = sim;
    sim = null;
    if (port?.isOpen === true) await new Promise<void>((resolve) => port.close(() => resolve()));
    const child = socat;
    socat = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
  };

  await start();
  return {
    devPath,
    simPath,
    async write(data) {
      const port = sim;
      if (port === null) throw new Error('PTY pair is stopped: restart() it first');
      await new Promise<void>((resolve, reject) => {
        port.write(typeof data === 'string' ? Buffer.from(data) : Buffer.from(data), (err) => {
          if (err) reject(err);
          else port.drain((e) => (e ? reject(e) : resolve()));
        });
      });
    },
    onData(listener) {
      listeners.push(listener);
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}
