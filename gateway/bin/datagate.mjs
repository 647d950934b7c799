#!/usr/bin/env node
// Entry point of the `datagate` command: loads the TypeScript sources through tsx, wires SIGINT and
// SIGTERM to a clean shutdown (a second signal exits at once), and exits with the command's code.
import { register } from 'tsx/esm/api';

register();
// A reader that goes away (`datagate segments list | head`) is not an error of ours.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { main } = await import('../cli.ts');
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
}
process.exitCode = await main(process.argv.slice(2), controller.signal);
