// Composition root of `datagate dev`: a development chain on one machine (docs/architecture.md "Composition").
// It runs an LBFT committee in one process (by default 4 validators and 2 proposers, each a chain node with its
// own ledger, consensus WAL and guarded key, over an in-memory transport) plus a follower node that serves the
// node API, prefunds the well-known dev accounts, and runs the data plane with the device key derived from the
// dev mnemonic. Everything opens on one Lifecycle, so a failed or interrupted start and a stop close it in
// reverse order. `solo` runs one node that validates and proposes.
import { join } from 'node:path';
import type { Address, ChainSpec, Logger, Signer } from '../../chain/index.ts';
import { DatagateError, LbftRecorder, MemoryTransport, validatorKeyOf } from '../../chain/index.ts';
import { MemorySigner } from '../../device/index.ts';
import type { DevConfig } from '../config/dev-config.ts';
import type { DevAccount } from '../dev-accounts.ts';
import { DEV_MNEMONIC, deriveAccounts } from '../dev-accounts.ts';
import { checkValidatorKey } from '../validator-record.ts';
import type { ChainNode, ChainRole } from './chain-node.ts';
import { openChainNode } from './chain-node.ts';
import { openDataPlane } from './data-plane.ts';
import type { Lifecycle } from './lifecycle.ts';
import { startInDataDir } from './lifecycle.ts';
import { startNodeApi } from './node-api.ts';

/** A dev chain that cannot start as configured (DEV_KEY_UNSUITABLE). */
export class DevError extends DatagateError<'DEV_KEY_UNSUITABLE'> {}

/** Balance of each prefunded dev account: 10,000 ether. */
export const DEV_BALANCE = 10_000n * 10n ** 18n;
/** The fixed base fee of the dev chain: 1 gwei. */
export const DEV_BASE_FEE = 1_000_000_000n;
const DEV_ACCOUNTS = 10;

export interface DevStartOptions {
  /** Hears of errors that stopped a node. */
  readonly onFatal?: (err: unknown) => void;
  /** Replaces the derived key of validator 0 (e.g. a key on a PKCS#11 token opened from `uri`). */
  readonly validatorKey?: { readonly signer: Signer; readonly uri: string };
  /** Aborted by a stop signal: start-up closes what it opened and throws NODE_START_STOPPED. */
  readonly signal?: AbortSignal;
}

export interface DevNodeInfo extends ChainNode {
  down: boolean;
}

export interface DevNode {
  readonly rpcUrl: string;
  readonly wsUrl: string;
  readonly dataDir: string;
  readonly accounts: readonly DevAccount[];
  readonly nodes: readonly DevNodeInfo[];
  /** Stop proposer `index` (it neither sends nor receives): its heights get impeached. */
  killProposer(index: number): DevNodeInfo;
  /** Stop the node API, the data plane, consensus and the stores, in that order. */
  stop(): Promise<void>;
}

/** The dev chain's parameters: dev accounts prefunded, the committee and proposers given. */
export function devChainSpec(config: DevConfig, accounts: readonly DevAccount[], validators: readonly Signer[], proposers: readonly Address[]): ChainSpec {
  return {
    chainId: BigInt(config.chainId),
    baseFee: DEV_BASE_FEE,
    gasLimit: BigInt(config.block.gasLimit),
    committee: validators.map(validatorKeyOf),
    proposers,
    periodMs: config.block.periodMs,
    timeoutMs: config.block.timeoutMs,
    genesisTimestamp: 0,
    alloc: new Map(accounts.map((a) => [a.address, DEV_BALANCE])),
  };
}

/**
 * Start a dev chain in config.dataDir (created 0700 when missing). A `validatorKey` must be the one the data
 * directory was first started with (VALIDATOR_KEY_CHANGED otherwise); in solo mode it also proposes, so it
 * must then be secp256k1. Throws DATA_DIR_UNUSABLE, DISK_FULL, NODE_START_STOPPED and the stores' errors.
 */
export async function startDevNode(config: DevConfig, logger: Logger, opts: DevStartOptions = {}): Promise<DevNode> {
  return startInDataDir(config.dataDir, logger, opts.signal, (life, dataDir) => startIn(life, dataDir, config, logger, opts));
}

async function startIn(life: Lifecycle, dataDir: string, config: DevConfig, logger: Logger, opts: DevStartOptions): Promise<DevNode> {
  const accounts = deriveAccounts(DEV_MNEMONIC, DEV_ACCOUNTS);
  const solo = config.lbft.solo;
  // Consensus keys come from the same mnemonic on other account paths (1' validators, 2' proposers, 3' the
  // device), so a data dir can be reopened by any `datagate dev` and nobody mistakes them for funded accounts.
  const validatorKeys = deriveAccounts(DEV_MNEMONIC, solo ? 1 : config.lbft.validators, 1);
  const proposerKeys = solo ? validatorKeys : deriveAccounts(DEV_MNEMONIC, config.lbft.proposers, 2);
  const validatorKey = opts.validatorKey?.signer;
  const validators: Signer[] = validatorKeys.map((k, i) => (i === 0 && validatorKey !== undefined ? validatorKey : new MemorySigner(k.privateKey)));
  if (solo && validators[0]!.keyType !== 'secp256k1') {
    throw new DevError('DEV_KEY_UNSUITABLE', `--solo makes validator 0 the proposer too, which seals blocks with a secp256k1 key; ${validators[0]!.address} is ${validators[0]!.keyType}`);
  }
  await checkValidatorKey(dataDir, { address: validators[0]!.address, uri: opts.validatorKey?.uri ?? null });
  const proposers: Signer[] = solo ? [validators[0]!] : proposerKeys.map((k) => new MemorySigner(k.privateKey));
  const spec = devChainSpec(config, accounts, validators, proposers.map((p) => p.address));

  const roles: { name: string; key: Signer | null; role: ChainRole }[] = solo
    ? [{ name: 'solo', key: validators[0]!, role: 'validator+proposer' }]
    : [
        ...validators.map((key, i) => ({ name: `validator-${i}`, key, role: 'validator' as const })),
        ...proposers.map((key, i) => ({ name: `proposer-${i}`, key, role: 'proposer' as const })),
        { name: 'rpc', key: null, role: 'follower' as const },
      ];
  const transport = new MemoryTransport(spec.committee.map((m) => m.address));
  const recorder = new LbftRecorder();
  const verifyCache = new Map<string, boolean>();
  const nodes: DevNodeInfo[] = [];
  for (const r of roles) {
    const opened = await openChainNode(life, {
      dir: join(dataDir, 'nodes', r.name),
      name: r.name,
      role: r.role,
      spec,
      key: r.key,
      transport,
      txpool: config.txpool,
      logger,
      ...(r.name === 'validator-0' || solo ? { metrics: recorder } : {}),
      verifyCache,
      ...(opts.onFatal !== undefined ? { onFatal: opts.onFatal } : {}),
    });
    const info: DevNodeInfo = { ...opened, down: false };
    transport.add({ address: info.address, ledger: info.ledger, deliver: (m) => info.node.deliver(m), receiveTransactions: (txs) => info.node.receiveTransactions(txs), get down() { return info.down; }, set down(v) { info.down = v; } });
    nodes.push(info);
  }
  // Every driver stops before any ledger closes: the in-memory transport serves sync from all of them.
  life.defer('consensus', async () => {
    for (const n of nodes) await n.node.stop();
  });
  life.checkStop();
  for (const n of nodes) await n.node.start();

  const front = nodes.find((n) => n.role === 'follower' || n.role === 'validator+proposer')!;
  // The node the recorder listens to (validator-0, or the solo node): status and metrics speak for it.
  const recorded = nodes.find((n) => n.role !== 'proposer' && n.role !== 'follower') ?? front;
  // Segment manifests are signed by the gateway's device key (derived from the dev mnemonic at m/44'/60'/3'/0/0).
  const dataPlane = await openDataPlane(life, {
    dataDir,
    sensors: config.sensors,
    pipeline: config.pipeline,
    deviceKey: new MemorySigner(deriveAccounts(DEV_MNEMONIC, 1, 3)[0]!.privateKey),
    logger,
  });
  const api = await startNodeApi(life, {
    dataDir,
    rpc: config.rpc,
    ledger: front.ledger,
    pool: front.pool!,
    // A transaction accepted by the RPC node goes through its node and the transport to the proposers' pools.
    onTransaction: (tx) => front.node.submitTransactions([tx]),
    // In one process every other node is a peer, connected while it is not stopped.
    peerCount: () => nodes.filter((n) => n !== front && !n.down).length,
    syncing: () => front.node.syncing(),
    consensus: {
      recorder,
      status: () => recorded.node.status(),
      // The recorder's target outlives a sync that a commit overtook: only a height beyond the head counts.
      syncTarget: () => (recorder.syncTarget !== null && recorder.syncTarget > recorded.ledger.head.header.number ? recorder.syncTarget : null),
      peers: () => nodes.map((n) => ({ address: n.address, role: n.role === 'validator+proposer' ? 'validator' : n.role, head: n.ledger.head.header.number, up: !n.down })),
    },
    dataPlane,
    logger,
  });
  return {
    ...api,
    dataDir,
    accounts,
    nodes,
    killProposer(index: number) {
      const p = nodes.filter((n) => n.role === 'proposer')[index];
      if (p === undefined) throw new RangeError(`there is no proposer ${index} (proposers: ${nodes.filter((n) => n.role === 'proposer').length})`);
      p.down = true;
      void p.node.stop();
      return p;
    },
    stop: () => life.close(),
  };
}
