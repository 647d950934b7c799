// Restarts a real `datagate dev --data-dir D --block-period 50` many times on one data directory, stopping
// it with Ctrl-C (SIGINT) and with kill -9 under a load of transfers, at varied moments: every start must
// come back and keep committing blocks. A proposer stopped between signing its block's seal and
// recording the block once left a directory that failed every later start with SIGN_CONFLICT.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider, Wallet } from 'ethers';
import { DEV_MNEMONIC, deriveAccounts, hexKey } from '../../gateway/dev-accounts.ts';
import { rpcCall, startDev, type DevProcess } from '../helpers/dev-process.ts';

const accounts = deriveAccounts(DEV_MNEMONIC, 3);
const dir = mkdtempSync(join(tmpdir(), 'datagate-dev-restart-'));
let running: DevProcess | null = null;

after(async () => {
  await running?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function blockNumber(url: string): Promise<bigint> {
  const res = await rpcCall(url, 'eth_blockNumber');
  if (typeof res.result !== 'string') throw new Error(`eth_blockNumber failed: ${JSON.stringify(res.error)}`);
  return BigInt(res.result);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Transfers from one dev account until `stop` resolves (errors such as a lost pool after a kill are expected). */
async function load(url: string, until: { stopped: boolean }): Promise<number> {
  const provider = new JsonRpcProvider(url, 1337, { staticNetwork: true, cacheTimeout: -1 });
  const wallet = new Wallet(hexKey(accounts[1]!), provider);
  let sent = 0;
  try {
    let nonce = await provider.getTransactionCount(wallet.address, 'pending');
    while (!until.stopped) {
      try {
        await wallet.sendTransaction({ to: accounts[2]!.address, value: 1n, nonce, gasLimit: 21_000n });
        nonce++;
        sent++;
      } catch {
        if (until.stopped) break;
        nonce = await provider.getTransactionCount(wallet.address, 'pending').catch(() => nonce);
      }
      await sleep(5);
    }
  } finally {
    provider.destroy();
  }
  return sent;
}

test('datagate dev survives 24 restarts (Ctrl-C, and kill -9 under load) on one data directory', { timeout: 600_000 }, async () => {
  // Stop moments (ms after the restarted node committed its second block): spread over a block period and
  // beyond, so some stops land between a proposer's seal and its next record.
  const delays = [0, 7, 13, 20, 26, 33, 41, 55, 70, 90, 130, 200];
  let loaded = 0;
  for (let i = 0; i < 24; i++) {
    const kill = i % 2 === 1;
    const dev = await startDev(['--data-dir', dir, '--block-period', '50'], 60_000);
    running = dev;
    const gate = { stopped: false };
    // A kill may cut the loader's own requests short: what it managed to send is all that counts.
    const loader = kill ? load(dev.rpcUrl, gate).catch(() => 0) : Promise.resolve(0);
    const alive = () => assert.ok(dev.child.exitCode === null, `start ${i} exited with ${dev.child.exitCode}:\n${dev.output().slice(-3000)}`);
    const from = await blockNumber(dev.rpcUrl).catch(async (err: unknown) => {
      // The RPC is gone when the node died on its own: give it a moment to exit and show why.
      await Promise.race([once(dev.child, 'exit'), sleep(3000)]);
      alive();
      throw err;
    });
    const deadline = Date.now() + 30_000;
    while ((await blockNumber(dev.rpcUrl).catch(() => from)) < from + 2n) {
      alive();
      assert.ok(Date.now() < deadline, `start ${i} committed no block past ${from} within 30 s:\n${dev.output().slice(-3000)}`);
      await sleep(10);
    }
    await sleep(delays[i % delays.length]!);
    const code = await dev.stop(kill ? 'SIGKILL' : 'SIGINT');
    gate.stopped = true;
    loaded += await loader;
    running = null;
    assert.doesNotMatch(dev.output(), /consensus driver failed/, `start ${i}`);
    if (!kill) assert.equal(code, 0, `start ${i} (Ctrl-C) exit code; output:\n${dev.output().slice(-3000)}`);
  }
  assert.ok(loaded > 0, 'the kill -9 runs sent no transfer');
});
