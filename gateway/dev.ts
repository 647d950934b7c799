// Composition root of `datagate dev`: a single-machine development chain. It builds the concrete objects
// (block store, ledger, pool, solo sealer, JSON-RPC server) from a DevConfig, prefunds the well-known dev
// accounts, and tears everything down in order on stop.
import { resolve } from 'node:path';
import type { ChainSpec, Logger, ValidatorKey } from '../chain/index.ts';
import {
  Ledger,
  SoloSealer,
  SubscriptionHub,
  TxPool,
  createEthApi,
  createRpcServer,
  formatHeader,
  formatLogs,
  validatorKeyOf,
} from '../chain/index.ts';
import { MemorySigner } from '../device/index.ts';
import type { DevConfig } from './dev-config.ts';
import type { DevAccount } from './dev-accounts.ts';
import { DEV_MNEMONIC, deriveAccounts } from './dev-accounts.ts';
import { VERSION } from './version.ts';

/** Balance of each prefunded dev account: 10,000 ether. */
export const DEV_BALANCE = 10_000n * 10n ** 18n;
/** The fixed base fee of the dev chain: 1 gwei. */
export const DEV_BASE_FEE = 1_000_000_000n;
const DEV_ACCOUNTS = 10;

export interface DevNode {
  readonly rpcUrl: string;
  readonly wsUrl: string;
  readonly dataDir: string;
  readonly accounts: readonly DevAccount[];
  readonly ledger: Ledger;
  readonly pool: TxPool;
  /** Stop RPC, block production and the store, in that order. */
  stop(): Promise<void>;
}

/** The dev chain's parameters: dev accounts prefunded, one validator that also proposes. */
export function devChainSpec(config: DevConfig, accounts: readonly DevAccount[], validator: ValidatorKey): ChainSpec {
  return {
    chainId: BigInt(config.chainId),
    baseFee: DEV_BASE_FEE,
    gasLimit: BigInt(config.block.gasLimit),
    committee: [validator],
    periodMs: config.block.periodMs,
    timeoutMs: 3 * config.block.periodMs,
    proposers: [validator.address],
    genesisTimestamp: 0,
    alloc: new Map(accounts.map((a) => [a.address, DEV_BALANCE])),
  };
}

/** Start a dev node; `onFatal` hears of errors that stopped block production. */
export async function startDevNode(config: DevConfig, logger: Logger, onFatal?: (err: unknown) => void): Promise<DevNode> {
  const dataDir = resolve(config.dataDir);
  const accounts = deriveAccounts(DEV_MNEMONIC, DEV_ACCOUNTS);
  // The dev validator's key comes from the same mnemonic on another account path, so a data dir can be
  // reopened by any `datagate dev` and nobody mistakes it for a funded user account.
  const validatorKey = deriveAccounts(DEV_MNEMONIC, 1, 1)[0]!;
  const signer = new MemorySigner(validatorKey.privateKey);
  const spec = devChainSpec(config, accounts, validatorKeyOf(signer));

  const ledger = await Ledger.open(resolve(dataDir, 'chain'), spec, logger.child({ module: 'ledger' }));
  const pool = new TxPool({
    nonceOf: (a) => ledger.state.account(a).nonce,
    minFee: spec.baseFee,
    maxTotal: config.txpool.maxTotal,
    maxPerSender: config.txpool.maxPerSender,
  });
  const sealer = new SoloSealer({
    ledger,
    pool,
    signer,
    periodMs: config.block.periodMs,
    logger: logger.child({ module: 'sealer' }),
    ...(onFatal !== undefined ? { onFatal } : {}),
  });
  const hub = new SubscriptionHub({ logger: logger.child({ module: 'subscriptions' }) });
  ledger.on('block', ({ block, receipts }) => {
    hub.publishNewHead(formatHeader(block));
    hub.publishLogs(formatLogs(block, receipts));
  });
  const rpc = createRpcServer({
    host: config.rpc.host,
    port: config.rpc.port,
    maxRequestBytes: config.rpc.maxRequestBytes,
    maxBatch: config.rpc.maxBatch,
    subscriptions: hub,
    logger: logger.child({ module: 'rpc' }),
    methods: createEthApi({
      ledger,
      pool,
      onTransaction: () => sealer.notify(),
      clientVersion: `datagate/v${VERSION}/node-${process.version}`,
      maxLogRange: config.rpc.maxLogRange,
    }),
  });
  let bound: { host: string; port: number };
  try {
    bound = await rpc.listen();
  } catch (err) {
    await ledger.close();
    throw err;
  }
  sealer.start();
  const hostForUrl = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  return {
    rpcUrl: `http://${hostForUrl}:${bound.port}`,
    wsUrl: `ws://${hostForUrl}:${bound.port}`,
    dataDir,
    accounts,
    ledger,
    pool,
    async stop() {
      await rpc.close();
      await sealer.stop();
      await ledger.close();
    },
  };
}
