// Composition root of `datagate start`: one gateway of a committee on its own box (docs/architecture.md
// "Composition", "Peers"). It checks the data directory against the genesis file, opens every key by its URI and
// refuses a dev key off the dev chain, then opens on one Lifecycle: the chain node with the libp2p peer transport
// (its sync source is the node's own ledger), the data plane when the config names a device key, and the node API.
import type { Address, LbftNode, Logger, PeerInfo, Signer } from '../../chain/index.ts';
import { DatagateError, LbftRecorder, createLibp2pTransport, ledgerVerifier } from '../../chain/index.ts';
import { openKey } from '../../device/index.ts';
import type { Genesis } from '../config/genesis-file.ts';
import { loadGenesisFile } from '../config/genesis-file.ts';
import type { NodeConfig } from '../config/node-config.ts';
import { loadOrCreatePeerKey } from '../peer-key.ts';
import { checkDataDirGenesis, checkStartKey } from '../start-checks.ts';
import type { ChainNode, ChainRole } from './chain-node.ts';
import { FOLLOWER_ADDRESS, openChainNode } from './chain-node.ts';
import type { DataPlane } from './data-plane.ts';
import { openDataPlane } from './data-plane.ts';
import type { Lifecycle } from './lifecycle.ts';
import { startInDataDir } from './lifecycle.ts';
import { startNodeApi } from './node-api.ts';

/** A key that does not fit the genesis or the role (START_KEY_MISMATCH). */
export class StartError extends DatagateError<'START_KEY_MISMATCH'> {}

export interface StartOptions {
  /** Hears of an error that stopped consensus. */
  readonly onFatal?: (err: unknown) => void;
  /** Aborted by a stop signal: start-up closes what it opened and throws NODE_START_STOPPED. */
  readonly signal?: AbortSignal;
  /** The process environment keys are read from (passphrase, PIN); default process.env. */
  readonly environment?: NodeJS.ProcessEnv;
}

export interface RunningNode {
  readonly dataDir: string;
  readonly role: ChainRole;
  readonly address: Address | null;
  readonly genesis: Genesis;
  readonly peerId: string;
  /** Where peers reach this node, each ending in /p2p/<peer id>. */
  readonly listen: readonly string[];
  readonly rpcUrl: string;
  readonly wsUrl: string;
  readonly chain: ChainNode;
  readonly dataPlane: DataPlane | null;
  peers(): PeerInfo[];
  /** Stop the node API, the data plane, consensus, the transport and the stores, in that order. */
  stop(): Promise<void>;
}

/** Start the node `config` describes. Throws the start checks' errors, DATA_DIR_UNUSABLE, DISK_FULL, NODE_START_STOPPED. */
export async function startNode(config: NodeConfig, logger: Logger, opts: StartOptions = {}): Promise<RunningNode> {
  return startInDataDir(config.dataDir, logger, opts.signal, (life, dataDir) => startIn(life, dataDir, config, logger, opts));
}

async function startIn(life: Lifecycle, dataDir: string, config: NodeConfig, logger: Logger, opts: StartOptions): Promise<RunningNode> {
  const genesis = await loadGenesisFile(config.genesis);
  const { spec } = genesis;
  // A PKCS#11 key holds a session open: closed last, after everything that signs with it (also when a later key fails to open).
  const keys: OpenedKeys = {};
  life.defer('keys', async () => {
    for (const key of Object.values(keys)) await (key as Signer & { close?: () => unknown }).close?.();
  });
  await openKeys(config, spec.chainId, opts.environment ?? process.env, keys);
  const role = config.role as ChainRole;
  const consensusKey = checkRoleKeys(role, keys, spec.committee.map((m) => m.address), spec.proposers);
  // Only a start that passed every check binds a new data directory to its genesis.
  await checkDataDirGenesis(dataDir, genesis.genesisHash);
  const peerKey = await loadOrCreatePeerKey(dataDir);
  const peerId = peerKey.peerId.toString();
  const recorder = new LbftRecorder();
  const verifyCache = new Map<string, boolean>();
  // The transport hands messages to the driver, which is built with the transport: the driver is set below.
  let driver: LbftNode | null = null;
  let transport: Awaited<ReturnType<typeof createLibp2pTransport>> | null = null;
  const chain = await openChainNode(life, {
    dir: dataDir,
    name: role,
    role,
    spec,
    key: consensusKey,
    withPool: true,
    txpool: config.txpool,
    logger,
    metrics: recorder,
    verifyCache,
    ...(opts.onFatal !== undefined ? { onFatal: opts.onFatal } : {}),
    transport: async (ledger) => {
      life.checkStop();
      const t = await createLibp2pTransport({
        privateKey: peerKey.privateKey,
        listen: config.p2p.listen,
        // The genesis lists every enrolled node, this one too: dialling itself would only fail.
        bootstrap: [...new Set([...genesis.bootstrap, ...config.p2p.bootstrap])].filter((a) => !a.endsWith(`/p2p/${peerId}`)),
        chainId: spec.chainId,
        genesisHash: genesis.genesisHash as `0x${string}`,
        committee: spec.committee,
        proposers: spec.proposers,
        signer: consensusKey,
        deliver: (m) => driver?.deliver(m),
        deliverTransactions: (txs) => driver?.receiveTransactions(txs),
        source: ledger,
        verifier: ledgerVerifier(ledger, verifyCache),
        logger: logger.child({ module: 'net' }),
        maxConnections: config.p2p.maxPeers,
      });
      life.defer('peer transport', () => t.stop());
      transport = t;
      return t;
    },
  });
  driver = chain.node;
  life.defer('consensus', () => chain.node.stop());
  life.checkStop();
  await chain.node.start();
  const net = transport!;
  const dataPlane = keys.device === undefined ? null : await openDataPlane(life, { dataDir, sensors: config.sensors, pipeline: config.pipeline, deviceKey: keys.device, logger });
  const peers = (): PeerInfo[] => net.peers();
  const api = await startNodeApi(life, {
    dataDir,
    rpc: config.rpc,
    ledger: chain.ledger,
    pool: chain.pool!,
    onTransaction: (tx) => chain.node.submitTransactions([tx]),
    peerCount: () => peers().filter((p) => p.up).length,
    syncing: () => chain.node.syncing(),
    consensus: {
      recorder,
      status: () => chain.node.status(),
      syncTarget: () => (recorder.syncTarget !== null && recorder.syncTarget > chain.ledger.head.header.number ? recorder.syncTarget : null),
      // A peer's head is not known here; the list says who is connected, as what, under which peer id.
      peers: () => peers().map((p) => ({ address: p.address ?? FOLLOWER_ADDRESS, peerId: p.peerId, role: p.role === 'validator+proposer' ? 'validator' : p.role, head: null, up: p.up })),
    },
    dataPlane,
    logger,
  });
  return {
    dataDir,
    role,
    address: consensusKey?.address ?? null,
    genesis,
    peerId,
    listen: net.multiaddrs(),
    ...api,
    chain,
    dataPlane,
    peers,
    stop: () => life.close(),
  };
}

interface OpenedKeys {
  validator?: Signer;
  proposer?: Signer;
  device?: Signer;
  seller?: Signer;
}

/** Every key the config names, opened by URI; a key derived from the dev mnemonic is refused off the dev chain. */
async function openKeys(config: NodeConfig, chainId: bigint, environment: NodeJS.ProcessEnv, out: OpenedKeys): Promise<void> {
  const secrets = {
    environment,
    ...(config.keys.passphraseFile !== undefined ? { passphraseFile: config.keys.passphraseFile } : {}),
    ...(config.keys.pinFile !== undefined ? { pinFile: config.keys.pinFile } : {}),
    ...(config.keys.pkcs11Module !== undefined ? { modulePath: config.keys.pkcs11Module } : {}),
  };
  for (const name of ['validator', 'proposer', 'device', 'seller'] as const) {
    const uri = config.keys[name];
    if (uri === undefined) continue;
    const key = await openKey(uri, secrets);
    out[name] = key;
    checkStartKey(key.address, chainId, `keys.${name}`);
  }
}

/** The one key the consensus driver signs with, after checking it against the genesis. */
function checkRoleKeys(role: ChainRole, keys: OpenedKeys, committee: readonly Address[], proposers: readonly Address[]): Signer | null {
  const refuse = (message: string, fields: Record<string, unknown>): never => {
    throw new StartError('START_KEY_MISMATCH', message, fields);
  };
  const { validator, proposer } = keys;
  if (validator !== undefined && !committee.includes(validator.address)) {
    refuse(`keys.validator ${validator.address} is not in the genesis committee; enrol it (datagate init) and rebuild the genesis, or name the enrolled key`, { address: validator.address });
  }
  if (proposer !== undefined) {
    if (!proposers.includes(proposer.address)) refuse(`keys.proposer ${proposer.address} is not among the genesis proposers; name the enrolled proposer key`, { address: proposer.address });
    if (proposer.keyType !== 'secp256k1') refuse(`keys.proposer ${proposer.address} is ${proposer.keyType}; a proposer seals blocks with a secp256k1 key`, { address: proposer.address });
  }
  if (role === 'validator+proposer' && validator!.address !== proposer!.address) {
    refuse(`role validator+proposer runs one consensus driver with one key: keys.validator (${validator!.address}) and keys.proposer (${proposer!.address}) must be the same key, in both the committee and the proposers`, {});
  }
  return validator ?? proposer ?? null;
}
