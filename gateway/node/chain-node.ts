// The node part of a gateway (docs/architecture.md "Composition"): its ledger, consensus WAL, guarded key,
// transaction pool and LBFT driver in one directory, opened in that order on a Lifecycle. `datagate dev` opens
// several in one process over an in-memory transport; `datagate start` opens one over the peer transport.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Address, ChainSpec, LbftNodeOptions, LbftTransport, Logger, Signer } from '../../chain/index.ts';
import { LbftNode, Ledger, TxPool, Wal } from '../../chain/index.ts';
import { GuardedSigner, signedOnChain } from '../../device/index.ts';
import type { Lifecycle } from './lifecycle.ts';

/** Consensus WAL files rotate at this size; the driver keeps the last two. */
const CONSENSUS_WAL_FILE_BYTES = 16 * 1024 * 1024;
/** Identity of a node that holds no key (a follower serving JSON-RPC). */
export const FOLLOWER_ADDRESS: Address = '0x' + 'f0'.repeat(20);

export type ChainRole = 'validator' | 'proposer' | 'validator+proposer' | 'follower';

export interface TxPoolLimits {
  readonly maxTotal: number;
  readonly maxPerSender: number;
}

export interface ChainNodeOptions {
  /** Directory of this node's stores (created when missing). */
  readonly dir: string;
  readonly name: string;
  readonly role: ChainRole;
  readonly spec: ChainSpec;
  /** The node's consensus key before the guard wraps it; null for a follower. */
  readonly key: Signer | null;
  /** The transport, or a function that builds it once the ledger is open (a peer transport serves sync from it). */
  readonly transport: LbftTransport | ((ledger: Ledger) => LbftTransport | Promise<LbftTransport>);
  readonly txpool: TxPoolLimits;
  /** Keep a transaction pool (default: every role but validator). A node serving JSON-RPC needs one. */
  readonly withPool?: boolean;
  readonly logger: Logger;
  readonly metrics?: LbftNodeOptions['metrics'];
  readonly verifyCache?: Map<string, boolean>;
  readonly onFatal?: (err: unknown) => void;
}

export interface ChainNode {
  readonly name: string;
  readonly address: Address;
  readonly role: ChainRole;
  readonly ledger: Ledger;
  readonly pool: TxPool | null;
  readonly node: LbftNode;
  readonly transport: LbftTransport;
}

/**
 * Open a node's stores and driver on `life` (ledger, WAL, guard, pool, driver; not started). The guard refuses to
 * start on a state file missing or older than what this chain shows the key signed. Closing the stores is
 * registered here; stopping the driver is the caller's (several drivers of one process must all stop before any
 * ledger closes, since they read each other's ledgers).
 */
export async function openChainNode(life: Lifecycle, opts: ChainNodeOptions): Promise<ChainNode> {
  const { dir, name, role, spec, key, logger } = opts;
  await mkdir(dir, { recursive: true });
  const ledger = await life.open(`ledger of ${name}`, () => Ledger.open(join(dir, 'chain'), spec, logger.child({ module: 'ledger', node: name })), (l) => l.close());
  const wal = await life.open(`consensus WAL of ${name}`, () => Wal.open(join(dir, 'wal'), { maxFileBytes: CONSENSUS_WAL_FILE_BYTES }), (w) => w.close());
  life.checkStop();
  const signer = key === null ? null : await GuardedSigner.open({ inner: key, stateFile: join(dir, 'sign-state.json'), signedOnChain: await signedOnChain(ledger, key.address) });
  const pool =
    !(opts.withPool ?? role !== 'validator')
      ? null
      : new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit, maxTotal: opts.txpool.maxTotal, maxPerSender: opts.txpool.maxPerSender });
  const transport = typeof opts.transport === 'function' ? await opts.transport(ledger) : opts.transport;
  const address = signer?.address ?? FOLLOWER_ADDRESS;
  const node = new LbftNode({
    ledger,
    signer,
    address,
    transport,
    wal,
    ...(pool !== null ? { pool } : {}),
    logger: logger.child({ module: 'lbft', node: name }),
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    ...(opts.verifyCache !== undefined ? { verifyCache: opts.verifyCache } : {}),
    ...(opts.onFatal !== undefined ? { onFatal: opts.onFatal } : {}),
  });
  return { name, address, role, ledger, pool, node, transport };
}
