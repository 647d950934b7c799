// Builders for ledger tests: a small chain spec with funded ethers wallets and a solo validator.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import type { ChainSpec } from '../../chain/index.ts';
import { Ledger, TxPool, validatorKeyOf } from '../../chain/index.ts';
import { SoloSealer } from './solo-sealer.ts';
import { MemorySigner } from '../../device/index.ts';

export const CHAIN_ID = 1337n;
export const BASE_FEE = 1_000_000_000n;
export const ETH = 10n ** 18n;

export const alice = new Wallet('0x' + '01'.repeat(32));
export const bob = new Wallet('0x' + '02'.repeat(32));
export const validator = new MemorySigner(new Uint8Array(32).fill(3));

export function testSpec(overrides: Partial<ChainSpec> = {}): ChainSpec {
  return {
    chainId: CHAIN_ID,
    baseFee: BASE_FEE,
    gasLimit: 30_000_000n,
    committee: [validatorKeyOf(validator)],
    periodMs: 1000,
    timeoutMs: 3000,
    proposers: [validator.address],
    genesisTimestamp: 0,
    alloc: new Map([
      [alice.address.toLowerCase(), 100n * ETH],
      [bob.address.toLowerCase(), 100n * ETH],
    ]),
    ...overrides,
  };
}

/**
 * A temporary directory removed after the test. node:test runs `after` hooks in the order they were
 * registered, so register the cleanup of whatever writes into the directory (ledgers, nodes) through
 * the returned `cleanup` list: those run first, then the directory goes.
 */
export function tempDir(t: { after(fn: () => void | Promise<void>): void }, cleanup: (() => Promise<unknown> | unknown)[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-test-'));
  t.after(async () => {
    for (const fn of cleanup.reverse()) await fn();
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A ledger with a pool and a solo sealer driven by hand (no timers). */
export async function openChain(path: string, spec = testSpec()) {
  const ledger = await Ledger.open(path, spec);
  const pool = new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit });
  let now = 1_700_000_000_000;
  const sealer = new SoloSealer({
    ledger,
    pool,
    signer: validator,
    periodMs: 1000,
    timers: { now: () => (now += 1000), setTimeout: () => null, clearTimeout: () => {} },
  });
  return { ledger, pool, sealer };
}

/** A signed EIP-1559 transfer of `value` wei from `from` to `to`. */
export function transfer(from: Wallet, to: string, value: bigint, nonce: number, extra: Record<string, unknown> = {}): Promise<string> {
  return from.signTransaction({
    type: 2,
    chainId: CHAIN_ID,
    nonce,
    to,
    value,
    gasLimit: 21_000n,
    maxFeePerGas: 2n * BASE_FEE,
    maxPriorityFeePerGas: 0n,
    ...extra,
  });
}
