// Runs `datagate dev` as a real child process, the way an operator would, and reads its RPC URL. No child
// outlives its test: stop() sends SIGKILL when SIGTERM did not end it within a grace period, a test context
// passed to startDev stops the child when that test ends (passed, failed or timed out), and whatever is left
// is stopped when the test file's tests are done and killed when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

/** After SIGTERM a child gets this long (past its own stop deadline, 20 s by default) before SIGKILL. */
export const STOP_GRACE_MS = 30_000;

export interface DevProcess {
  readonly child: ChildProcess;
  readonly rpcUrl: string;
  readonly wsUrl: string;
  output(): string;
  /** Send `signal` and wait for the exit (SIGKILL after STOP_GRACE_MS); resolves to the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** The part of node:test's TestContext used here. */
type TestContext = { after(fn: () => unknown): void };

export interface SpawnedDatagate {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves to the exit code (or the signal name) once the child exited. */
  readonly exited: Promise<number | string>;
  /** Send `signal` (SIGKILL after STOP_GRACE_MS) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const live = new Set<SpawnedDatagate>();
after(() => Promise.all([...live].map((p) => p.stop())));
process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/** Spawn `datagate <args>` with output captured; stopped when `t` ends (if given) and at the end of the file. */
export function spawnDatagate(args: readonly string[], opts: { t?: TestContext; env?: NodeJS.ProcessEnv } = {}): SpawnedDatagate {
  const nodeArgs = process.env.DATAGATE_DEV_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const running = () => child.exitCode === null && child.signalCode === null;
  const spawned: SpawnedDatagate = {
    child,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (running()) child.kill(signal);
      const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(grace);
      }
    },
  };
  live.add(spawned);
  void exited.then(() => live.delete(spawned));
  opts.t?.after(() => spawned.stop());
  return spawned;
}

/**
 * Start `datagate dev` with `args`; resolves once it printed its JSON-RPC URL. Pass the test context as `t`
 * so the child is stopped when that test ends; without it, when the file's tests are done.
 */
export function startDev(args: readonly string[], opts: number | { timeoutMs?: number; t?: TestContext; env?: NodeJS.ProcessEnv } = {}): Promise<DevProcess> {
  const { timeoutMs = 90_000, ...rest } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const p = spawnDatagate(['dev', '--rpc-port', '0', '--log-format', 'json', ...args], rest);
  const { child } = p;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`datagate dev did not start within ${timeoutMs} ms:\n${p.output()}`));
    }, timeoutMs);
    const onData = () => {
      const m = /JSON-RPC: (http:\/\/\S+) \(WebSocket (ws:\/\/\S+)\)/.exec(p.output());
      if (m === null) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      resolve({ child, rpcUrl: m[1]!, wsUrl: m[2]!, output: p.output, stop: p.stop });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`datagate dev exited with ${code} before starting:\n${p.output()}`));
    });
  });
}

/** One raw JSON-RPC call; returns the whole response object. */
export async function rpcCall(url: string, method: string, params: unknown[] = []): Promise<{ result?: unknown; error?: { code: number; message: string; data?: { code?: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  return (await res.json()) as never;
}
