// The node API of a gateway (docs/architecture.md "Composition"): JSON-RPC over HTTP and WebSocket with the
// `eth_` and `lbft_` methods, and on the same port the HTTP APIs (IPFS trustless gateway, segments, status with
// /metrics, content admin) when the node runs a data plane. It also keeps the chain log: impeachments as they
// happen, and one summary of the chain (and the pipeline) a minute.
import type { CommittedBlock, EthSyncProgress, LbftInfo, Ledger, Logger, RpcServer, SignedTx, TxPool } from '../../chain/index.ts';
import { SubscriptionHub, createEthApi, createLbftApi, createRpcServer, formatHeader, formatLogs } from '../../chain/index.ts';
import { createContentApiHandler, loadOrCreateApiToken, removeApiAccess, writeApiAccess } from '../api/content-api.ts';
import { createSegmentsApiHandler } from '../api/segments-api.ts';
import { createStatusApiHandler } from '../api/status-api.ts';
import { createTrustlessGatewayHandler } from '../api/trustless-gateway.ts';
import type { RpcConfig } from '../config/dev-config.ts';
import { VERSION } from '../version.ts';
import type { DataPlane } from './data-plane.ts';
import type { Lifecycle } from './lifecycle.ts';

/** Every empty block is a debug line; at info, one summary of the chain and the pipeline per period. */
const SUMMARY_MS = 60_000;

export interface NodeApiOptions {
  readonly dataDir: string;
  readonly rpc: RpcConfig;
  /** The ledger and pool JSON-RPC serves. */
  readonly ledger: Ledger;
  readonly pool: TxPool;
  /** A transaction entered `pool`: pass it on (to the proposers, through the transport). */
  readonly onTransaction: (tx: SignedTx) => void;
  /** What the lbft_* methods and the datagate_lbft_* metrics read (syncTarget: the metrics only). */
  /** Peers connected now (net_peerCount) and the block sync under way (eth_syncing). */
  readonly peerCount: () => number;
  readonly syncing: () => false | EthSyncProgress;
  readonly consensus: Omit<LbftInfo, 'ledger'> & { syncTarget(): bigint | null };
  readonly dataPlane: DataPlane | null;
  readonly logger: Logger;
}

export interface NodeApi {
  readonly rpcUrl: string;
  readonly wsUrl: string;
}

/** Start the node API on `life`: serving once this resolves, its URL and token in the data dir's api.json. */
export async function startNodeApi(life: Lifecycle, opts: NodeApiOptions): Promise<NodeApi> {
  const { dataDir, ledger, dataPlane, logger } = opts;
  const hub = new SubscriptionHub({ logger: logger.child({ module: 'subscriptions' }) });
  watchChain(life, ledger, hub, dataPlane, logger);
  life.checkStop();
  const token = await loadOrCreateApiToken(dataDir);
  const apiLog = logger.child({ module: 'api' });
  // The segments and status APIs come before the content API, which answers every other /api/v0/ path.
  const chainHead = () => ledger.head.header.number;
  const status = (data?: Parameters<typeof createStatusApiHandler>[0]['data']) => createStatusApiHandler({ ...(data !== undefined ? { data } : {}), consensus: opts.consensus, token, logger: apiLog });
  const httpHandlers =
    dataPlane === null
      ? [status()]
      : [
          createTrustlessGatewayHandler({ blocks: dataPlane.content.blocks, logger: logger.child({ module: 'ipfs-gateway' }) }),
          createSegmentsApiHandler({ pipeline: dataPlane.pipeline, contentStore: dataPlane.content, token, logger: apiLog }),
          status({ pipeline: dataPlane.pipeline, drivers: dataPlane.sensors.drivers, limits: dataPlane.limits, chainHead }),
          createContentApiHandler({ store: dataPlane.content, token, logger: apiLog }),
        ];
  const rpc: RpcServer = createRpcServer({
    httpHandlers,
    host: opts.rpc.host,
    port: opts.rpc.port,
    maxRequestBytes: opts.rpc.maxRequestBytes,
    maxBatch: opts.rpc.maxBatch,
    subscriptions: hub,
    logger: logger.child({ module: 'rpc' }),
    methods: {
      ...createEthApi({ ledger, pool: opts.pool, onTransaction: opts.onTransaction, peerCount: opts.peerCount, syncing: opts.syncing, clientVersion: `datagate/v${VERSION}/node-${process.version}`, maxLogRange: opts.rpc.maxLogRange }),
      ...createLbftApi({ ledger, recorder: opts.consensus.recorder, status: opts.consensus.status, peers: opts.consensus.peers }),
    },
  });
  const bound = await life.open('JSON-RPC server', () => rpc.listen(), () => rpc.close());
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  const rpcUrl = `http://${host}:${bound.port}`;
  await writeApiAccess(dataDir, rpcUrl, token);
  // Registered after the server: removed before it closes, so no client reads a URL that no longer answers.
  life.defer('api.json', () => removeApiAccess(dataDir));
  return { rpcUrl, wsUrl: `ws://${host}:${bound.port}` };
}

/** Publish heads and logs to subscribers; log impeachments, and a chain and pipeline summary per minute. */
function watchChain(life: Lifecycle, ledger: Ledger, hub: SubscriptionHub, dataPlane: DataPlane | null, logger: Logger): void {
  const blockLog = logger.child({ module: 'chain' });
  const pipelineLog = logger.child({ module: 'pipeline' });
  const committed = { blocks: 0, txs: 0, impeachments: 0 };
  const onBlock = ({ block, receipts }: CommittedBlock): void => {
    hub.publishNewHead(formatHeader(block));
    hub.publishLogs(formatLogs(block, receipts));
    const fields = { number: block.header.number, txs: block.txs.length, proposer: block.header.proposer };
    committed.blocks++;
    committed.txs += block.txs.length;
    // An impeachment is news; an ordinary block (86,400 a day at the default period) is not.
    if (block.header.seal.length === 0) {
      committed.impeachments++;
      blockLog.info('impeachment block committed', fields);
    } else {
      blockLog.debug('block committed', fields);
    }
  };
  ledger.on('block', onBlock);
  const summary = setInterval(() => {
    blockLog.info('chain', { head: ledger.head.header.number, ...committed, periodSeconds: SUMMARY_MS / 1000 });
    committed.blocks = committed.txs = committed.impeachments = 0;
    if (dataPlane === null) return;
    const st = dataPlane.pipeline.status();
    pipelineLog.info('pipeline', { ingested: st.ingested, sealed: st.sealed, stored: st.stored, queueBytes: st.queueBytes, freeBytes: st.freeBytes, alarm: st.alarm });
  }, SUMMARY_MS);
  summary.unref();
  life.defer('chain log', () => {
    clearInterval(summary);
    ledger.off('block', onBlock);
  });
}
