// The in-process LBFT cluster the LBFT benchmark runs: n validators and m proposers, each with its own
// LevelDB ledger, real secp256k1 signatures (MemorySigner on the process-wide backend that DATAGATE_CRYPTO
// chooses), the in-memory transport, optionally a consensus WAL per node, and the timing hooks the benchmark
// reads: when each round-0 PROPOSAL went to its signer, and when each node committed each block. Empty
// blocks only (no pool).
import { join } from 'node:path';
import type { Address, Block, ChainSpec, SignPurpose, Signer } from '../chain/index.ts';
import { Ledger, bytesToHex, keccak256, validatorKeyOf } from '../chain/index.ts';
import type { EngineBlock } from '../chain/lbft/codec.ts';
import { LbftNode } from '../chain/lbft/driver.ts';
import { Wal } from '../chain/lbft/wal.ts';
import { MemoryTransport } from '../chain/lbft/memory-transport.ts';
import { LbftRecorder } from '../chain/lbft/metrics.ts';
import type { Message } from '../chain/lbft/types.ts';
import { MemorySigner } from '../device/index.ts';

/** Wall-clock milliseconds with sub-millisecond resolution, on the same epoch as Date.now(). */
export const clock = (): number => performance.timeOrigin + performance.now();

export interface BenchNode {
  readonly name: string;
  readonly address: Address;
  readonly validator: boolean;
  readonly ledger: Ledger;
  readonly node: LbftNode;
  readonly metrics: LbftRecorder;
  /** When set, this node neither sends nor receives. */
  down: boolean;
  deliver(message: Message<EngineBlock>): void;
}

export interface BenchClusterOptions {
  readonly validators: number;
  readonly proposers: number;
  readonly periodMs: number;
  readonly timeoutMs: number;
  /** Names ('v0'.., 'p0'..) of nodes that are down from the start. */
  readonly down?: readonly string[];
  /** Give every node a consensus WAL (fsync'd for its own votes, rotated at every height), as a real node has. */
  readonly wal?: boolean;
  /** Called when `node` committed `block`, at `at` (see `clock`). */
  readonly onCommit?: (node: BenchNode, block: Block, at: number) => void;
}

export interface BenchCluster {
  readonly spec: ChainSpec;
  readonly nodes: readonly BenchNode[];
  readonly validators: readonly BenchNode[];
  /** When each scheduled proposer asked its signer for its round-0 PROPOSAL signature, by block hash. */
  readonly proposedAt: Map<string, number>;
  stop(): Promise<void>;
}

/** A signer that reports each signing request to `seen` before passing it on. */
class TimedSigner implements Signer {
  readonly keyType: Signer['keyType'];
  readonly publicKey: Uint8Array;
  readonly address: Address;

  constructor(
    private readonly inner: Signer,
    private readonly seen: (purpose: SignPurpose, context: { height: bigint; round: number; hash?: Uint8Array } | undefined) => void,
  ) {
    this.keyType = inner.keyType;
    this.publicKey = inner.publicKey;
    this.address = inner.address;
  }

  sign(digest: Uint8Array, purpose: SignPurpose, context?: { height: bigint; round: number; hash?: Uint8Array }): Promise<Uint8Array> {
    this.seen(purpose, context);
    return this.inner.sign(digest, purpose, context);
  }
}

export const keyOf = (label: string): Uint8Array => keccak256(new TextEncoder().encode(`datagate bench ${label}`));

/** Open a ledger per node under `dir`, start every node, and return the cluster. */
export async function startBenchCluster(dir: string, opts: BenchClusterOptions): Promise<BenchCluster> {
  const validators = Array.from({ length: opts.validators }, (_, i) => new MemorySigner(keyOf(`validator ${i}`)));
  const proposers = Array.from({ length: opts.proposers }, (_, i) => new MemorySigner(keyOf(`proposer ${i}`)));
  const spec: ChainSpec = {
    chainId: 1337n,
    baseFee: 1_000_000_000n,
    gasLimit: 30_000_000n,
    committee: validators.map(validatorKeyOf),
    proposers: proposers.map((p) => p.address),
    periodMs: opts.periodMs,
    timeoutMs: opts.timeoutMs,
    genesisTimestamp: 0,
    alloc: new Map(),
  };
  const proposedAt = new Map<string, number>();
  const timed = (purpose: SignPurpose, context: { round: number; hash?: Uint8Array } | undefined) => {
    if (purpose === 'proposal' && context?.round === 0 && context.hash !== undefined) proposedAt.set(bytesToHex(context.hash), clock());
  };
  const transport = new MemoryTransport(validators.map((v) => v.address));
  const verifyCache = new Map<string, boolean>();
  const members = [...validators.map((s, i) => [`v${i}`, s, true] as const), ...proposers.map((s, i) => [`p${i}`, new TimedSigner(s, timed), false] as const)];
  const nodes: BenchNode[] = [];
  const wals: Wal[] = [];
  for (const [name, signer, validator] of members) {
    const ledger = await Ledger.open(join(dir, name), spec);
    const metrics = new LbftRecorder();
    const wal = opts.wal === true ? await Wal.open(join(dir, `${name}-wal`)) : null;
    if (wal !== null) wals.push(wal);
    const node = new LbftNode({ ledger, signer, transport, wal, verifyCache, metrics });
    const entry: BenchNode = { name, address: signer.address, validator, ledger, node, metrics, down: opts.down?.includes(name) ?? false, deliver: (m) => node.deliver(m) };
    const onCommit = opts.onCommit;
    if (onCommit !== undefined) ledger.on('block', ({ block }) => onCommit(entry, block, clock()));
    transport.add(entry);
    nodes.push(entry);
  }
  for (const n of nodes) await n.node.start();
  return {
    spec,
    nodes,
    validators: nodes.filter((n) => n.validator),
    proposedAt,
    async stop() {
      for (const n of nodes) await n.node.stop();
      for (const n of nodes) await n.ledger.close();
      for (const w of wals) await w.close();
    },
  };
}
