// An in-process LBFT cluster over real ledgers: n validators and m proposers, each with its own LevelDB,
// talking through an in-memory transport. For integration tests of the driver and the ledger together.
import { join } from 'node:path';
import { Wallet } from 'ethers';
import type { ChainSpec, SignedTx, Signer } from '../../chain/index.ts';
import { Ledger, TxPool, validatorKeyOf } from '../../chain/index.ts';
import { LbftNode } from '../../chain/lbft/driver.ts';
import type { EngineBlock } from '../../chain/lbft/codec.ts';
import { MemoryTransport } from '../../chain/lbft/memory-transport.ts';
import type { Message } from '../../chain/lbft/types.ts';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import { LbftRecorder } from '../../chain/lbft/metrics.ts';

export const ETH = 10n ** 18n;
export const user = new Wallet('0x' + '42'.repeat(32));

export interface ClusterNode {
  readonly name: string;
  readonly ledger: Ledger;
  readonly node: LbftNode;
  readonly signer: Signer;
  readonly pool: TxPool;
  readonly metrics: LbftRecorder;
  /** When set, this node neither sends nor receives. */
  down: boolean;
  readonly address: string;
  deliver(message: Message<EngineBlock>): void;
  receiveTransactions(txs: readonly SignedTx[]): void;
}

export async function startCluster(
  dir: string,
  opts: {
    validators?: number;
    proposers?: number;
    periodMs?: number;
    timeoutMs?: number;
    p256Validators?: number;
    validatorSigners?: readonly Signer[];
    /** Gas limit the pools admit up to (default the block gas limit); above it, a pool holds what no block can. */
    poolGasLimit?: bigint;
  } = {},
) {
  // The first `p256Validators` validators hold P-256 keys, as TPMs and secure elements do; the first
  // validators can also be given as signers (e.g. keys on a PKCS#11 token).
  const validators: Signer[] = Array.from(
    { length: opts.validators ?? 4 },
    (_, i) =>
      opts.validatorSigners?.[i] ??
      (i < (opts.p256Validators ?? 0) ? new MemoryP256Signer(new Uint8Array(32).fill(0x10 + i)) : new MemorySigner(new Uint8Array(32).fill(0x10 + i))),
  );
  const proposers = Array.from({ length: opts.proposers ?? 2 }, (_, i) => new MemorySigner(new Uint8Array(32).fill(0x40 + i)));
  const spec: ChainSpec = {
    chainId: 1337n,
    baseFee: 1_000_000_000n,
    gasLimit: 30_000_000n,
    committee: validators.map(validatorKeyOf),
    proposers: proposers.map((p) => p.address),
    periodMs: opts.periodMs ?? 100,
    timeoutMs: opts.timeoutMs ?? 300,
    genesisTimestamp: 0,
    alloc: new Map([[user.address.toLowerCase(), 1000n * ETH]]),
  };
  const transport = new MemoryTransport(validators.map((v) => v.address));
  const verifyCache = new Map<string, boolean>();
  const nodes: ClusterNode[] = [];
  for (const [name, signer] of [...validators.map((v, i) => [`v${i}`, v] as const), ...proposers.map((p, i) => [`p${i}`, p] as const)]) {
    const ledger = await Ledger.open(join(dir, name), spec);
    const pool = new TxPool({ nonceOf: (a) => ledger.state.account(a).nonce, minFee: spec.baseFee, blockGasLimit: opts.poolGasLimit ?? spec.gasLimit });
    const metrics = new LbftRecorder();
    const node = new LbftNode({ ledger, signer, transport, wal: null, pool, verifyCache, metrics });
    const entry: ClusterNode = { name, ledger, node, signer, pool, metrics, down: false, address: signer.address, deliver: (m) => node.deliver(m), receiveTransactions: (txs) => node.receiveTransactions(txs) };
    transport.add(entry);
    nodes.push(entry);
  }
  for (const n of nodes) await n.node.start();
  return {
    spec,
    nodes,
    transport,
    async stop() {
      for (const n of nodes) await n.node.stop();
      for (const n of nodes) await n.ledger.close();
    },
  };
}

/** Resolves when every node that is up has committed `height`, or rejects after `timeoutMs`. */
export async function waitForHeight(nodes: readonly ClusterNode[], height: bigint, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (nodes.some((n) => !n.down && n.ledger.head.header.number < height)) {
    if (Date.now() > deadline) throw new Error(`heights after ${timeoutMs} ms: ${nodes.map((n) => `${n.name}=${n.ledger.head.header.number}`).join(' ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
