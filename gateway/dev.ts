// Composition root of `datagate dev`: a development chain on one machine. It runs an LBFT committee in one
// process (by default 4 validators and 2 proposers, each with its own ledger, consensus WAL and guarded
// key, over an in-memory transport) plus a follower node that serves JSON-RPC, prefunds the well-known dev
// accounts, and tears everything down in order on stop. `solo` runs one node that validates and proposes.
// The data directory is checked and made private first; a stop signal during start-up closes what was
// opened so far, and a start that fails on a full disk says DISK_FULL, not that a store is corrupt.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Address, ChainSpec, Logger, RpcServer, SignedTx, Signer } from '../chain/index.ts';
import { DatagateError } from '../chain/index.ts';
import { Ledger, SubscriptionHub, TxPool, createEthApi, createRpcServer, formatHeader, formatLogs, validatorKeyOf } from '../chain/index.ts';
import { LbftNode, LbftRecorder, MemoryTransport, Wal, createLbftApi } from '../chain/index.ts';
import { GuardedSigner, MemorySigner, signedOnChain } from '../device/index.ts';
import { prepareDataDir } from './config.ts';
import type { DevConfig } from './dev-config.ts';
import { diskFullOr } from './disk-space.ts';
import type { DevAccount } from './dev-accounts.ts';
import { DEV_MNEMONIC, deriveAccounts } from './dev-accounts.ts';
import { createContentApiHandler, loadOrCreateApiToken, removeApiAccess, writeApiAccess } from './content/admin-api.ts';
import { createTrustlessGatewayHandler } from './content/trustless-gateway.ts';
import { UnixFsContentStore } from './content/unixfs-store.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import { createSegmentsApiHandler } from './pipeline/segments-api.ts';
import { DEFAULT_SIMULATOR, pumpInto, startSensors } from './sensors.ts';
import { createStatusApiHandler } from './status-api.ts';
import { checkValidatorKey } from './validator-record.ts';
import { VERSION } from './version.ts';

/** A dev chain that cannot start as configured (DEV_KEY_UNSUITABLE), was stopped while starting
 * (DEV_START_STOPPED), or did not stop within the deadline (DEV_STOP_TIMEOUT). */
export class DevError extends DatagateError<'DEV_KEY_UNSUITABLE' | 'DEV_START_STOPPED' | 'DEV_STOP_TIMEOUT'> {}

/** Balance of each prefunded dev account: 10,000 ether. */
export const DEV_BALANCE = 10_000n * 10n ** 18n;
/** The fixed base fee of the dev chain: 1 gwei. */
export const DEV_BASE_FEE = 1_000_000_000n;
const DEV_ACCOUNTS = 10;
/** Consensus WAL files rotate at this size; the driver keeps the last two. */
const CONSENSUS_WAL_FILE_BYTES = 16 * 1024 * 1024;
/** Identity of the RPC follower: it holds no key. */
const FOLLOWER: Address = '0x' + 'f0'.repeat(20);
/** Every empty block is a debug line; at info, one summary of the chain and the pipeline per period. */
const SUMMARY_MS = 60_000;

export interface DevStartOptions {
  /** Hears of errors that stopped a node. */
  readonly onFatal?: (err: unknown) => void;
  /** Replaces the derived key of validator 0 (e.g. a key on a PKCS#11 token opened from `uri`). */
  readonly validatorKey?: { readonly signer: Signer; readonly uri: string };
  /** Aborted by a stop signal: start-up closes what it opened and throws DEV_START_STOPPED. */
  readonly signal?: AbortSignal;
}

export interface DevNodeInfo {
  readonly name: string;
  readonly address: Address;
  readonly role: 'validator' | 'proposer' | 'validator+proposer' | 'follower';
  readonly ledger: Ledger;
  readonly node: LbftNode;
  readonly pool: TxPool | null;
  down: boolean;
}

export interface DevNode {
  readonly rpcUrl: string;
  readonly wsUrl: string;
  readonly dataDir: string;
  readonly accounts: readonly DevAccount[];
  readonly nodes: readonly DevNodeInfo[];
  /** The ledger and pool behind JSON-RPC. */
  readonly ledger: Ledger;
  readonly pool: TxPool;
  /** Stop proposer `index` (it neither sends nor receives): its heights get impeached. */
  killProposer(index: number): DevNodeInfo;
  /** Stop RPC, consensus and the stores, in that order. */
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
 * must then be secp256k1. Throws DATA_DIR_UNUSABLE, DISK_FULL, DEV_START_STOPPED and the stores' errors.
 */
export async function startDevNode(config: DevConfig, logger: Logger, opts: DevStartOptions = {}): Promise<DevNode> {
  const dataDir = await prepareDataDir(config.dataDir);
  try {
    return await startIn(dataDir, config, logger, opts);
  } catch (err) {
    throw await diskFullOr(err, dataDir);
  }
}

async function startIn(dataDir: string, config: DevConfig, logger: Logger, opts: DevStartOptions): Promise<DevNode> {
  const { onFatal, signal } = opts;
  const validatorKey = opts.validatorKey?.signer;
  const checkStop = (): void => {
    if (signal?.aborted === true) throw new DevError('DEV_START_STOPPED', 'stopped by a signal during start-up; what was opened is closed again');
  };
  const accounts = deriveAccounts(DEV_MNEMONIC, DEV_ACCOUNTS);
  const solo = config.lbft.solo;
  // Consensus keys come from the same mnemonic on other account paths (1' validators, 2' proposers), so a
  // data dir can be reopened by any `datagate dev` and nobody mistakes them for funded user accounts.
  const validatorKeys = deriveAccounts(DEV_MNEMONIC, solo ? 1 : config.lbft.validators, 1);
  const proposerKeys = solo ? validatorKeys : deriveAccounts(DEV_MNEMONIC, config.lbft.proposers, 2);
  const validators: Signer[] = validatorKeys.map((k, i) => (i === 0 && validatorKey !== undefined ? validatorKey : new MemorySigner(k.privateKey)));
  if (solo && validators[0]!.keyType !== 'secp256k1') {
    throw new DevError('DEV_KEY_UNSUITABLE', `--solo makes validator 0 the proposer too, which seals blocks with a secp256k1 key; ${validators[0]!.address} is ${validators[0]!.keyType}`);
  }
  await checkValidatorKey(dataDir, { address: validators[0]!.address, uri: opts.validatorKey?.uri ?? null });
  const proposers: Signer[] = solo ? [validators[0]!] : proposerKeys.map((k) => new MemorySigner(k.privateKey));
  const spec = devChainSpec(config, accounts, validators, proposers.map((p) => p.address));

  const roles: { name: string; inner: Signer | null; role: DevNodeInfo['role'] }[] = solo
    ? [{ name: 'solo', inner: validators[0]!, role: 'validator+proposer' }]
    : [
        ...validators.map((inner, i) => ({ name: `validator-${i}`, inner, role: 'validator' as const })),
        ...proposers.map((inner, i) => ({ name: `proposer-${i}`, inner, role: 'proposer' as const })),
        { name: 'rpc', inner: null, role: 'follower' as const },
      ];
  const transport = new MemoryTransport(spec.committee.map((m) => m.address));
  const recorder = new LbftRecorder();
  const verifyCache = new Map<string, boolean>();
  const nodes: DevNodeInfo[] = [];
  const opened: { ledger: Ledger; wal: Wal }[] = [];
  try {
    for (const r of roles) {
      checkStop();
      const dir = join(dataDir, 'nodes', r.name);
      await mkdir(dir, { recursive: true });
      const ledger = await Ledger.open(join(dir, 'chain'), spec, logger.child({ module: 'ledger', node: r.name }));
      const wal = await Wal.open(join(dir, 'wal'), { maxFileBytes: CONSENSUS_WAL_FILE_BYTES }).catch(async (err: unknown) => {
        await ledger.close();
        throw err;
      });
      opened.push({ ledger, wal });
      // The guard refuses to start on a state file missing or older than what this chain shows the key signed.
      const signer = r.inner === null ? null : await GuardedSigner.open({ inner: r.inner, stateFile: join(dir, 'sign-state.json'), signedOnChain: await signedOnChain(ledger, r.inner.address) });
      const pool = r.role === 'validator' ? null : new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit, maxTotal: config.txpool.maxTotal, maxPerSender: config.txpool.maxPerSender });
      const info: DevNodeInfo = {
        name: r.name,
        address: signer?.address ?? FOLLOWER,
        role: r.role,
        ledger,
        pool,
        down: false,
        node: new LbftNode({
          ledger,
          signer,
          address: signer?.address ?? FOLLOWER,
          transport,
          wal,
          ...(pool !== null ? { pool } : {}),
          logger: logger.child({ module: 'lbft', node: r.name }),
          ...(r.name === 'validator-0' || solo ? { metrics: recorder } : {}),
          verifyCache,
          ...(onFatal !== undefined ? { onFatal } : {}),
        }),
      };
      transport.add({ address: info.address, ledger, deliver: (m) => info.node.deliver(m), receiveTransactions: (txs) => info.node.receiveTransactions(txs), get down() { return info.down; }, set down(v) { info.down = v; } });
      nodes.push(info);
    }
    checkStop();
    for (const n of nodes) await n.node.start();
  } catch (err) {
    for (const n of nodes) await n.node.stop();
    for (const o of opened) await o.wal.close().catch(() => {});
    for (const o of opened) await o.ledger.close();
    throw err;
  }

  const front = nodes.find((n) => n.role === 'follower' || n.role === 'validator+proposer')!;
  const hub = new SubscriptionHub({ logger: logger.child({ module: 'subscriptions' }) });
  const blockLog = logger.child({ module: 'chain' });
  const committed = { blocks: 0, txs: 0, impeachments: 0 };
  front.ledger.on('block', ({ block, receipts }) => {
    hub.publishNewHead(formatHeader(block));
    hub.publishLogs(formatLogs(block, receipts));
    const impeached = block.header.seal.length === 0;
    const fields = { number: block.header.number, txs: block.txs.length, proposer: block.header.proposer };
    committed.blocks++;
    committed.txs += block.txs.length;
    // An impeachment is news; an ordinary block (86,400 a day at the default period) is not.
    if (impeached) {
      committed.impeachments++;
      blockLog.info('impeachment block committed', fields);
    } else {
      blockLog.debug('block committed', fields);
    }
  });
  // A transaction accepted by the RPC node goes through its node and the transport to the proposers' pools.
  const forward = (tx: SignedTx) => front.node.submitTransactions([tx]);
  let content: UnixFsContentStore;
  try {
    checkStop();
    content = await UnixFsContentStore.open(join(dataDir, 'content'));
  } catch (err) {
    for (const n of nodes) await n.node.stop();
    for (const o of opened) await o.wal.close().catch(() => {});
    for (const o of opened) await o.ledger.close();
    throw err;
  }
  // Sensors: the configured sources, or the simulator, through the durable pipeline into the content store.
  // Segment manifests are signed by the gateway's device key (derived from the dev mnemonic at m/44'/60'/3'/0/0).
  let sensors;
  let pipeline: Pipeline | undefined;
  const limits = { maxQueueBytes: config.pipeline.maxQueueBytes, maxStoreBytes: config.pipeline.maxStoreBytes, policy: config.pipeline.policy, minFreeBytes: config.pipeline.minFreeBytes };
  try {
    checkStop();
    pipeline = await Pipeline.open({
      dir: join(dataDir, 'pipeline'),
      contentStore: content,
      signer: new MemorySigner(deriveAccounts(DEV_MNEMONIC, 1, 3)[0]!.privateKey),
      masterKeyPath: join(dataDir, 'master.key'),
      windowMs: config.pipeline.segmentSeconds * 1000,
      maxSegmentBytes: config.pipeline.maxSegmentBytes,
      limits,
      logger: logger.child({ module: 'pipeline' }),
    });
    const feed = pipeline;
    const feedLog = logger.child({ module: 'pipeline' });
    checkStop();
    sensors = await startSensors(config.sensors, logger, { fallback: DEFAULT_SIMULATOR, durable: true, deliveries: feed, consume: (d) => pumpInto(d, feed, feedLog) });
  } catch (err) {
    await pipeline?.close();
    await content.close();
    for (const n of nodes) await n.node.stop();
    for (const o of opened) await o.wal.close().catch(() => {});
    for (const o of opened) await o.ledger.close();
    throw err;
  }
  const pipelineLog = logger.child({ module: 'pipeline' });
  const pumps = sensors.consumers;
  const summary = setInterval(() => {
    blockLog.info('chain', { head: front.ledger.head.header.number, ...committed, periodSeconds: SUMMARY_MS / 1000 });
    committed.blocks = committed.txs = committed.impeachments = 0;
    const st = pipeline.status();
    pipelineLog.info('pipeline', { ingested: st.ingested, sealed: st.sealed, stored: st.stored, queueBytes: st.queueBytes, freeBytes: st.freeBytes, alarm: st.alarm });
  }, SUMMARY_MS);
  summary.unref();
  const stopAll = async () => {
    clearInterval(summary);
    await removeApiAccess(dataDir).catch(() => {});
    await sensors.stop();
    await Promise.allSettled(pumps);
    // A clean stop seals what is queued, so the data of the last window is in segments too.
    await pipeline.flush().catch((err: unknown) => pipelineLog.error('sealing at shutdown failed; the readings stay queued', { error: err }));
    await pipeline.close();
    await content.close();
    for (const n of nodes) await n.node.stop();
    for (const o of opened) await o.wal.close();
    for (const o of opened) await o.ledger.close();
  };
  let apiToken: string;
  try {
    checkStop();
    apiToken = await loadOrCreateApiToken(dataDir);
  } catch (err) {
    await stopAll();
    throw err;
  }
  // The content store with its trustless gateway and admin API share the RPC port; the segments and status
  // APIs (before the content API, which answers every other /api/v0/ path) read the running pipeline, the
  // status API (with /metrics) the sensor drivers and the chain head too.
  let rpc: RpcServer;
  let bound: { host: string; port: number };
  try {
    rpc = createRpcServer({
      httpHandlers: [
        createTrustlessGatewayHandler({ blocks: content.blocks, logger: logger.child({ module: 'ipfs-gateway' }) }),
        createSegmentsApiHandler({ pipeline, contentStore: content, token: apiToken, logger: logger.child({ module: 'api' }) }),
        createStatusApiHandler({
          pipeline,
          drivers: sensors.drivers,
          limits,
          chainHead: () => front.ledger.head.header.number,
          token: apiToken,
          logger: logger.child({ module: 'api' }),
        }),
        createContentApiHandler({ store: content, token: apiToken, logger: logger.child({ module: 'api' }) }),
      ],
      host: config.rpc.host,
      port: config.rpc.port,
      maxRequestBytes: config.rpc.maxRequestBytes,
      maxBatch: config.rpc.maxBatch,
      subscriptions: hub,
      logger: logger.child({ module: 'rpc' }),
      methods: {
        ...createEthApi({ ledger: front.ledger, pool: front.pool!, onTransaction: forward, clientVersion: `datagate/v${VERSION}/node-${process.version}`, maxLogRange: config.rpc.maxLogRange }),
        ...createLbftApi({
          ledger: front.ledger,
          recorder,
          status: () => (nodes.find((n) => n.role !== 'proposer' && n.role !== 'follower') ?? front).node.status(),
          peers: () => nodes.map((n) => ({ address: n.address, role: n.role === 'validator+proposer' ? 'validator' : n.role, head: n.ledger.head.header.number, up: !n.down })),
        }),
      },
    });
    checkStop();
    bound = await rpc.listen();
  } catch (err) {
    await stopAll();
    throw err;
  }
  const hostForUrl = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  await writeApiAccess(dataDir, `http://${hostForUrl}:${bound.port}`, apiToken);
  return {
    rpcUrl: `http://${hostForUrl}:${bound.port}`,
    wsUrl: `ws://${hostForUrl}:${bound.port}`,
    dataDir,
    accounts,
    nodes,
    ledger: front.ledger,
    pool: front.pool!,
    killProposer(index: number) {
      const p = nodes.filter((n) => n.role === 'proposer')[index];
      if (p === undefined) throw new RangeError(`there is no proposer ${index} (proposers: ${nodes.filter((n) => n.role === 'proposer').length})`);
      p.down = true;
      void p.node.stop();
      return p;
    },
    async stop() {
      await rpc.close();
      await stopAll();
    },
  };
}
