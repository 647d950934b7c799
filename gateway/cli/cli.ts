// The `datagate` command line: the commands, and the deadline that bounds every stop (stopDeadlineMs,
// armStopDeadline), so no state (start-up, a store that never opens, a shutdown that hangs) keeps the process
// alive once it was told to stop.
import type { Command } from './args.ts';
import { runCli } from './args.ts';
import { devCommand } from './dev-command.ts';
import { startCommand } from './start-command.ts';
import { testnetCommand } from './testnet-command.ts';
import { ipfsCommand } from './ipfs-commands.ts';
import { genesisCommand, initCommand } from './provision-commands.ts';
import { keyCommand } from './key-commands.ts';
import { segmentsCommand } from './segments-commands.ts';
import { sensorsCommand } from './sensors-commands.ts';
import { statusCommand } from './status-command.ts';

export { STOP_DEADLINE_MS, stopDeadlineMs } from './serve.ts';

export const commands: readonly Command[] = [devCommand, startCommand, initCommand, genesisCommand, testnetCommand, statusCommand, keyCommand, sensorsCommand, ipfsCommand, segmentsCommand];

/**
 * Unless the process ended by itself within `ms` of `why` (a signal, or the command's end with handles still
 * open), say so on `stderr` and kill it. SIGKILL and not exit(): exit() waits for libuv's worker threads, and
 * one blocked in the kernel (a read of a stalled mount or of a FIFO) would hold it forever. The shell sees
 * status 137. The timer does not keep the process alive.
 */
export function armStopDeadline(ms: number, why: string, stderr: { write(s: string): unknown }): void {
  setTimeout(() => {
    stderr.write(`datagate: still running ${ms} ms after ${why}; killing the process without a clean shutdown (the stores resume from their last durable state) [STOP_DEADLINE]\n`);
    process.kill(process.pid, 'SIGKILL');
  }, ms).unref();
}

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export function main(argv: readonly string[], signal: AbortSignal): Promise<number> {
  return runCli(argv, commands, { signal });
}
