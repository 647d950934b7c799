#!/usr/bin/env node
// Run before `npm start` and `npm test`: on a fresh clone (no node_modules/.package-lock.json) installs the
// locked dependencies with `npm ci`, pointing node-gyp at the system Node headers when they are there (it
// cannot download them on the gateway). When dependencies are present it only checks one file and exits.

import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  const env = { ...process.env };
  if (env.npm_config_nodedir === undefined && existsSync('/usr/include/node')) env.npm_config_nodedir = '/usr';
  // Inside an npm script, npm_execpath is the npm that is running us; outside, whatever `npm` is on PATH.
  const npmCli = process.env.npm_execpath;
  const [cmd, args] = npmCli && /\.[cm]?js$/.test(npmCli) ? [process.execPath, [npmCli, 'ci']] : ['npm', ['ci']];
  console.error(`ensure-deps: node_modules is missing or incomplete; running npm ci in ${root}`);
  const result = spawnSync(cmd, args, { cwd: root, env, stdio: 'inherit' });
  if (result.error) {
    console.error(`ensure-deps: could not run npm: ${result.error.message}`);
    process.exit(1);
  }
  if (result.status !== 0) process.exit(result.status ?? 1);
}
