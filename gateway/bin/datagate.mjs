#!/usr/bin/env -S node --max-semi-space-size=8 --max-old-space-size=256
// Entry point of the `datagate` command: runs the compiled code in dist/ when it was built from the current
// sources (`npm run build`; `npm start` builds it), otherwise the TypeScript sources through tsx; wires
// SIGINT and SIGTERM to a clean shutdown (a second signal exits at once), and exits with the command's code.
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
const { main } = await import(compiled ? '../../dist/gateway/cli.js' : '../cli.ts');
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
}
process.exitCode = await main(process.argv.slice(2), controller.signal);
