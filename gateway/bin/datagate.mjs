#!/usr/bin/env -S node --max-semi-space-size=8 --max-old-space-size=256
// Entry point of the `datagate` command: runs the compiled code in dist/ when it was built from the current
// sources (`npm run build`; `npm start` builds it, and refresh-dist.mjs recompiles the few sources edited
// since), otherwise the TypeScript sources through tsx; wires SIGINT and SIGTERM to a clean shutdown (a second
// signal exits at once, and a stop that takes longer than DATAGATE_STOP_DEADLINE_MS is killed, saying so), and
// exits with the command's code. `--version` and the help texts (help-cache.mjs) answer without loading the node.
// The shebang passes the gateway's V8 heap settings (node-flags.mjs); `node datagate.mjs` runs without them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const root = fileURLToPath(new URL('../..', import.meta.url));
if (argv.length === 1 && argv[0] === '--version') {
  process.stdout.write(`${JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).version}\n`);
  process.exit(0);
}

const { builtState, distIsFresh } = await import('./build-state.mjs');
const { cachedHelp, helpKey, renderHelp, writeHelp } = await import('./help-cache.mjs');
const fromSource = process.env.DATAGATE_FROM_SOURCE === '1';
const compiled = !fromSource && (distIsFresh(root) || (await import('./refresh-dist.mjs')).refreshDist(root));
const stamp = compiled ? builtState(root) : null;
const key = helpKey(argv);
const help = stamp !== null && key !== null ? cachedHelp(root, key, stamp) : null;
if (help !== null) {
  process.stdout.write(help);
  process.exit(0);
}
if (!compiled) {
  const { register } = await import('tsx/esm/api');
  register();
}
// A reader that goes away (`datagate segments list | head`) is not an error of ours.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { commands, main, armStopDeadline, stopDeadlineMs } = await import(compiled ? '../../dist/gateway/cli/cli.js' : '../cli/cli.ts');
let deadlineMs;
try {
  deadlineMs = stopDeadlineMs(process.env);
} catch (err) {
  process.stderr.write(`error: ${err.message} [${err.code}]\n`);
  process.exit(2);
}
if (stamp !== null && cachedHelp(root, '--help', stamp) === null) {
  try {
    const { runCli } = await import('../../dist/gateway/cli/args.js');
    writeHelp(root, stamp, await renderHelp(commands, runCli));
  } catch {
    // A dist/ this user cannot write to only costs the fast help.
  }
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
process.exitCode = await main(argv, controller.signal);
// Handles left open would keep the process after the command ended: bounded too.
armStopDeadline(deadlineMs, 'the command ended', process.stderr);
