#!/usr/bin/env -S node --max-semi-space-size=8 --max-old-space-size=256
// Entry point of the `datagate` command: runs the compiled code in dist/ when it was built from the current
// sources (`npm run build`; `npm start` builds it), otherwise the TypeScript sources through tsx; wires
// SIGINT and SIGTERM to a clean shutdown (a second signal exits at once, and a stop that takes longer than
// DATAGATE_STOP_DEADLINE_MS is killed, saying so), and exits with the command's code.
// The shebang passes the gateway's V8 heap settings (node-flags.mjs); `node datagate.mjs` runs without them.
import { fileURLToPath } from 'node:url';
import { distIsFresh } from './build-state.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const compiled = process.env.DATAGATE_FROM_SOURCE !== '1' && distIsFresh(root);
if (!compiled) {
  const { register } = await import('tsx/esm/api');
  register();
}
// A reader that goes away (`datagate segments list | head`) is not an error of ours.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { main, armStopDeadline, stopDeadlineMs } = await import(compiled ? '../../dist/gateway/cli.js' : '../cli.ts');
let deadlineMs;
try {
  deadlineMs = stopDeadlineMs(process.env);
} catch (err) {
  process.stderr.write(`error: ${err.message} [${err.code}]\n`);
  process.exit(2);
}
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // Not exit(): it could wait forever on a worker thread blocked in the kernel (see armStopDeadline).
    if (controller.signal.aborted) process.kill(process.pid, 'SIGKILL');
    controller.abort();
    armStopDeadline(deadlineMs, sig, process.stderr);
  });
}
process.exitCode = await main(process.argv.slice(2), controller.signal);
// Handles left open would keep the process after the command ended: bounded too.
armStopDeadline(deadlineMs, 'the command ended', process.stderr);
