// Runs `datagate dev` as a real child process, the way an operator would, and reads its RPC URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));

export interface DevProcess {
  readonly child: ChildProcess;
  readonly rpcUrl: string;
  readonly wsUrl: string;
  output(): string;
  /** Send `signal` and wait for the exit; resolves to the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Start `datagate dev` with `args`; resolves once it printed its JSON-RPC URL. */
export function startDev(args: readonly string[], timeoutMs = 30_000): Promise<DevProcess> {
  const nodeArgs = process.env.DATAGATE_DEV_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'dev', '--rpc-port', '0', '--log-format', 'json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`datagate dev did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /JSON-RPC: (http:\/\/\S+) \(WebSocket (ws:\/\/\S+)\)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({
          child,
          rpcUrl: m[1]!,
          wsUrl: m[2]!,
          output: () => out,
          async stop(signal: NodeJS.Signals = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`datagate dev exited with ${code} before starting:\n${out}`));
    });
  });
}

/** One raw JSON-RPC call; returns the whole response object. */
export async function rpcCall(url: string, method: string, params: unknown[] = []): Promise<{ result?: unknown; error?: { code: number; message: string; data?: { code?: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  return (await res.json()) as never;
}
