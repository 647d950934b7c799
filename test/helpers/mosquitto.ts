// A real mosquitto broker for integration tests: started on a free loopback port with a temporary config
// (`listener PORT 127.0.0.1`, `allow_anonymous true`, persistence on or off), restartable on the same port
// (a graceful SIGTERM stop, so with persistence it saves its sessions and queues to disk first). Run as
// root (containers), it is told to stay root: see the comment on 'user root' below.
//
// Missing mosquitto makes mosquittoSkipReason() return MOSQUITTO_SKIP (tests skip with it) unless
// DATAGATE_REQUIRE_SYSTEM=1, when it throws instead, so CI cannot pass by skipping.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO_SKIP = 'skipped: install mosquitto (apt-get install mosquitto)';

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto'];

/** Path of the mosquitto binary, or null. */
export function mosquittoPath(): string | null {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found !== undefined) return found;
  const r = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' });
  return r.error === undefined ? 'mosquitto' : null;
}

/** false when mosquitto is installed, else MOSQUITTO_SKIP. Throws instead when DATAGATE_REQUIRE_SYSTEM=1. */
export function mosquittoSkipReason(): string | false {
  if (mosquittoPath() !== null) return false;
  if (process.env['DATAGATE_REQUIRE_SYSTEM'] === '1') {
    throw new Error('DATAGATE_REQUIRE_SYSTEM=1 but mosquitto is not installed; apt-get install mosquitto');
  }
  return MOSQUITTO_SKIP;
}

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  /** Temp directory with mosquitto.conf, the log and (with persistence) mosquitto.db. */
  readonly dir: string;
  /** Graceful stop (SIGTERM; with persistence the database is written). Keeps the directory for restart(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it if running and deletes the directory. */
  cleanup(): Promise<void>;
  /** The broker's log so far, plus a note if it exited by itself (for assertion messages). */
  log(): string;
}

export interface MosquittoOptions {
  /** Write sessions and queued messages to disk (persistence true, persistence_location <dir>/). Default false. */
  readonly persistence?: boolean;
  /** Extra config lines. */
  readonly extra?: readonly string[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Starts mosquitto on a free loopback port; throws if it is missing or does not come up within 10 s. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = mosquittoPath();
  if (bin === null) throw new Error('mosquitto is not installed; apt-get install mosquitto');
  const dir = mkdtempSync(join(tmpdir(), 'datagate-mosquitto-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const logFile = join(dir, 'mosquitto.log');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    opts.persistence === true ? 'persistence true' : 'persistence false',
    ...(opts.persistence === true ? [`persistence_location ${dir}/`] : []),
    // Started as root, mosquitto switches to the 'mosquitto' user, which cannot write this root-owned 0700
    // directory: no log, and no persistence database (sessions silently lost across restarts).
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    `log_dest file ${logFile}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(opts.extra ?? []),
  ];
  writeFileSync(conf, lines.join('\n') + '\n');
  let proc: ChildProcess | null = null;
  let stopping = false;
  let unexpectedExit = '';

  const start = async (): Promise<void> => {
    if (proc !== null) return;
    const p = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    let exited = false;
    p.once('exit', (code, signal) => {
      exited = true;
      if (proc === p) proc = null;
      if (!stopping) unexpectedExit += `\n[mosquitto exited unexpectedly: code ${code} signal ${signal}] ${stderr.trim()}`;
    });
    proc = p;
    // A test process that dies without cleanup() must not leave a broker behind.
    const killOnExit = (): void => void p.kill('SIGKILL');
    process.once('exit', killOnExit);
    p.once('exit', () => process.off('exit', killOnExit));
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (exited || Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`mosquitto did not start on port ${port}: ${stderr.trim()} ${readLog()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    if (p === null) return;
    stopping = true;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    stopping = false;
    proc = null;
  };
  const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') + unexpectedExit;

  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    cleanup: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: readLog,
  };
}
