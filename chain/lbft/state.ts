// The state of one node's LBFT engine: where it is (height, round), what it has seen of the current
// height, and what it has already sent. Plain data, owned by the reducer; a node's WAL replayed through
// the reducer rebuilds it exactly.
import type { CommitCertificate } from '../certificate.ts';
import type { Address, Hash } from '../types.ts';
import type { BlockRef, Commit, LbftConfig, Message, Prepare, PreparedCertificate, Proposal, RoundChange } from './types.ts';

export type Validation = 'pending' | 'valid' | 'invalid';

export interface LbftState<B extends BlockRef> {
  readonly config: LbftConfig;
  /** False until the first 'start' event. */
  started: boolean;
  height: bigint;
  round: number;
  parent: { hash: Hash; timestamp: number };
  /** I(height), built by the host: the only value a round >= 1 may propose without a prepared certificate. */
  impeachment: B | null;
  /** The current height is decided; waiting for the host's next 'start'. */
  decided: boolean;
  /** The decided block and its certificate, until the next 'start'. */
  decision: { block: B; certificate: CommitCertificate } | null;
  /** Accepted proposal per round. */
  proposals: Map<number, Proposal<B>>;
  /** Blocks of this height known by hash (proposals, prepared certificates). */
  blocks: Map<Hash, B>;
  validation: Map<Hash, Validation>;
  prepares: Map<number, Map<Address, Prepare>>;
  commits: Map<number, Map<Address, Commit>>;
  roundChanges: Map<number, Map<Address, RoundChange<B>>>;
  /** This node's highest prepared certificate at this height. */
  prepared: PreparedCertificate<B> | null;
  sentPrepare: Set<number>;
  sentCommit: Set<number>;
  sentProposal: Set<number>;
  /** Highest round this node sent a ROUND-CHANGE for (0 = none). */
  sentRoundChange: number;
  /** This node already voted to leave round 0 (impeach) at this height. */
  impeached: boolean;
  /** A proposer asked its host to build the block of this height. */
  buildRequested: boolean;
  /** The block this proposer built for round 0 (unsealed): sealed again after a restart, never rebuilt. */
  built: B | null;
  /** Highest height a sync was requested for. */
  syncRequested: bigint;
  /** Messages for heights above ours, bounded by config. */
  future: Message<B>[];
  /** Refused inputs by reason, for metrics. */
  rejections: Record<string, number>;
}

export function initialState<B extends BlockRef>(config: LbftConfig): LbftState<B> {
  if (config.validators.length === 0) throw new RangeError('LBFT needs at least one validator');
  if (config.proposers.length === 0) throw new RangeError('LBFT needs at least one proposer');
  if (new Set(config.validators).size !== config.validators.length) throw new RangeError('validators must be distinct');
  return {
    config,
    started: false,
    height: 0n,
    round: 0,
    parent: { hash: '', timestamp: 0 },
    impeachment: null,
    decided: false,
    decision: null,
    proposals: new Map(),
    blocks: new Map(),
    validation: new Map(),
    prepares: new Map(),
    commits: new Map(),
    roundChanges: new Map(),
    prepared: null,
    sentPrepare: new Set(),
    sentCommit: new Set(),
    sentProposal: new Set(),
    sentRoundChange: 0,
    impeached: false,
    buildRequested: false,
    built: null,
    syncRequested: 0n,
    future: [],
    rejections: {},
  };
}

/** Forget everything about the previous height. */
export function resetHeight<B extends BlockRef>(s: LbftState<B>): void {
  s.round = 0;
  s.decided = false;
  s.decision = null;
  s.proposals = new Map();
  s.blocks = new Map();
  s.validation = new Map();
  s.prepares = new Map();
  s.commits = new Map();
  s.roundChanges = new Map();
  s.prepared = null;
  s.sentPrepare = new Set();
  s.sentCommit = new Set();
  s.sentProposal = new Set();
  s.sentRoundChange = 0;
  s.impeached = false;
  s.buildRequested = false;
  s.built = null;
}

/** The per-round map of `table`, created on first use. */
export function roundMap<V>(table: Map<number, Map<Address, V>>, round: number): Map<Address, V> {
  let m = table.get(round);
  if (m === undefined) {
    m = new Map();
    table.set(round, m);
  }
  return m;
}
