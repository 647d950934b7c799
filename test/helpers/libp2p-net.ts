// Nodes of one chain, each with its own LevelDB, LbftNode and real libp2p transport on 127.0.0.1, for
// integration tests of the peer transport (see docs/architecture.md, "Peers").
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { ChainSpec, Libp2pTransport, Logger, Signer } from '../../chain/index.ts';
import { createLibp2pTransport, Ledger, LbftNode, ledgerVerifier, TxPool, validatorKeyOf } from '../../chain/index.ts';
import type { EngineBlock } from '../../chain/index.ts';
import type { Message } from '../../chain/lbft/types.ts';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import { ETH, user } from './lbft-cluster.ts';

export interface NetNode {
  readonly name: string;
  readonly ledger: Ledger;
  readonly node: LbftNode;
  readonly transport: Libp2pTransport;
  readonly pool: TxPool | null;
}

/** 4 validators (the first with a P-256 key) and 1 proposer, as signers, and the chain spec they run. */
export function netSpec(): { spec: ChainSpec; validators: Signer[]; proposer: Signer } {
  const validators: Signer[] = [new MemoryP256Signer(new Uint8Array(32).fill(0x10)), ...[1, 2, 3].map((i) => new MemorySigner(new Uint8Array(32).fill(0x10 + i)))];
  const proposer = new MemorySigner(new Uint8Array(32).fill(0x40));
  const spec: ChainSpec = {
    chainId: 1337n,
    baseFee: 1_000_000_000n,
    gasLimit: 30_000_000n,
    committee: validators.map(validatorKeyOf),
    proposers: [proposer.address],
    periodMs: 200,
    timeoutMs: 1500,
    genesisTimestamp: 0,
    alloc: new Map([[user.address.toLowerCase(), 1000n * ETH]]),
  };
  return { spec, validators, proposer };
}

/** Open a ledger and start a transport for `signer` (null: a follower), dialing `bootstrap`. The LbftNode is not started. */
/** `deliver`, when given, receives what the transport would hand to the driver instead. */
export async function startNetNode(dir: string, name: string, spec: ChainSpec, signer: Signer | null, bootstrap: readonly string[], deliver?: (m: Message<EngineBlock>) => void): Promise<NetNode> {
  const ledger = await Ledger.open(join(dir, name), spec);
  const genesis = (await ledger.blockByNumber(0n))!;
  const withPool = signer === null || spec.proposers.includes(signer.address);
  const pool = withPool ? new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: spec.gasLimit }) : null;
  let node: LbftNode | null = null;
  const verifyCache = new Map<string, boolean>();
  const transport = await createLibp2pTransport({
    privateKey: await generateKeyPair('Ed25519'),
    bootstrap,
    chainId: spec.chainId,
    genesisHash: genesis.hash,
    committee: spec.committee,
    proposers: spec.proposers,
    signer,
    deliver: deliver ?? ((m) => node?.deliver(m)),
    verifier: ledgerVerifier(ledger, verifyCache),
    deliverTransactions: (txs) => node?.receiveTransactions(txs),
    source: ledger,
    limits: { reconnectBaseMs: 100 },
    ...(process.env.DATAGATE_NET_TRACE === '1' ? { logger: traceLogger(name) } : {}),
  });
  node = new LbftNode({ ledger, signer, ...(signer === null ? { address: '0x' + '00'.repeat(19) + name.length.toString(16).padStart(2, '0') } : {}), transport, wal: null, verifyCache, ...(pool !== null ? { pool } : {}) });
  return { name, ledger, node, transport, pool };
}

/** The address of `t` another node dials (the 127.0.0.1 one, with /p2p/). */
export function dialAddr(t: Libp2pTransport): string {
  return t.multiaddrs().find((a) => a.includes('/ip4/127.0.0.1/'))!;
}

export async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function stopNetNode(n: NetNode): Promise<void> {
  await n.node.stop();
  await n.transport.stop();
  await n.ledger.close();
}

/** Transport logs on stderr, for DATAGATE_NET_TRACE=1 runs. */
function traceLogger(name: string): Logger {
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => console.error(name, level, msg, fields === undefined ? '' : JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Error ? v.message : v)));
  const log: Logger = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error'), child: () => log };
  return log;
}
