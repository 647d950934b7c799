// Types of the LBFT 2.0 engine: messages, the events the reducer consumes, the actions it asks its host
// to perform, and its configuration. The engine is generic over the block type: it needs only a block's
// hash, number and parent; executing, encoding and storing blocks is the host's job.
import type { CommitCertificate } from '../certificate.ts';
import type { Address, Hash } from '../types.ts';

/** What the engine needs to know of a block. */
export interface BlockRef {
  readonly hash: Hash;
  readonly number: bigint;
  readonly parentHash: Hash;
}

/** Fields every signed consensus message carries. */
interface Signed {
  readonly height: bigint;
  readonly round: number;
  readonly sender: Address;
  /** Signature over the message's signing payload (see messages.ts); its format is the crypto port's. */
  readonly signature: Uint8Array;
}

/** A block proposed for (height, round). Round 0 comes from the scheduled proposer, later rounds from their leader. */
export interface Proposal<B extends BlockRef> extends Signed {
  readonly type: 'proposal';
  readonly block: B;
  /** For round >= 1: the quorum of ROUND-CHANGEs that justifies the block. Empty for round 0. */
  readonly justification: readonly RoundChange<B>[];
}

export interface Prepare extends Signed {
  readonly type: 'prepare';
  readonly hash: Hash;
}

export interface Commit extends Signed {
  readonly type: 'commit';
  readonly hash: Hash;
}

/** Proof that a quorum prepared `block` in `round`. */
export interface PreparedCertificate<B extends BlockRef> {
  readonly round: number;
  readonly block: B;
  readonly prepares: readonly Prepare[];
}

/** A validator's request to move to `round`, carrying its highest prepared certificate. */
export interface RoundChange<B extends BlockRef> extends Signed {
  readonly type: 'round-change';
  readonly prepared: PreparedCertificate<B> | null;
}

/** VALIDATE: a decided block with its commit certificate, for everyone (validators, proposers, followers). */
export interface Decided<B extends BlockRef> {
  readonly type: 'decided';
  readonly height: bigint;
  readonly block: B;
  readonly certificate: CommitCertificate;
}

export type SignedMessage<B extends BlockRef> = Proposal<B> | Prepare | Commit | RoundChange<B>;
export type Message<B extends BlockRef> = SignedMessage<B> | Decided<B>;

/** A message before its sender signs it: the driver signs (through the double-sign guard) and sends it. */
export type Unsigned<M> = M extends unknown ? Omit<M, 'sender' | 'signature'> : never;

/** Why a proposer was impeached. */
export type ImpeachCause = 'timeout' | 'invalid-block' | 'equivocation';

/** Inputs of the reducer. Every event carries the host's clock reading `now` (ms): time is an input. */
export type LbftEvent<B extends BlockRef> =
  /** Begin `height` on top of `parent`; `impeachment` is the deterministic I(height) built by the host. */
  | { readonly type: 'start'; readonly now: number; readonly height: bigint; readonly parent: { readonly hash: Hash; readonly timestamp: number }; readonly impeachment: B }
  | { readonly type: 'message'; readonly now: number; readonly message: Message<B> }
  | { readonly type: 'timeout'; readonly now: number; readonly height: bigint; readonly round: number; readonly kind: 'round' | 'propose' }
  /** Result of executing a block the engine asked to validate. */
  | { readonly type: 'validated'; readonly now: number; readonly height: bigint; readonly hash: Hash; readonly valid: boolean; readonly reason?: string }
  /**
   * The block this node (a proposer) was asked to build, not yet sealed. The host makes it durable (WAL,
   * fsync) before it signs the seal, so that after a restart it seals this same block again (and its
   * double-sign guard returns the same signature) instead of building a different one for the height.
   */
  | { readonly type: 'built'; readonly now: number; readonly height: bigint; readonly block: B }
  /** The 'built' block with this proposer's seal: the round-0 proposal of `height`. */
  | { readonly type: 'sealed'; readonly now: number; readonly height: bigint; readonly block: B }
  /**
   * The host restarted and replayed its WAL (whose actions it did not carry out again): re-issue the work
   * still owed at this height (a decided block to commit, blocks to execute, a block to build or seal)
   * and re-arm the timers from `now`: the node's own downtime is not the proposer's fault.
   */
  | { readonly type: 'resume'; readonly now: number };

/** Outputs of the reducer: what the host must do, in order. */
export type LbftAction<B extends BlockRef> =
  /** Sign `message` as this node and send it to every validator (and process it locally). */
  | { readonly type: 'broadcast'; readonly message: Unsigned<SignedMessage<B>> }
  /** Send an already complete message (VALIDATE) to every node. */
  | { readonly type: 'send-decided'; readonly message: Decided<B> }
  /** A node behind us sent a message for `height`: send it our decided block of that height. */
  | { readonly type: 'help-lagging'; readonly to: Address; readonly height: bigint }
  /** We saw a valid certificate beyond our head: fetch blocks with certificates up to `height`. */
  | { readonly type: 'sync'; readonly height: bigint }
  /** Deliver a 'timeout' event for (height, round, kind) when the host clock reaches `at`. */
  | { readonly type: 'set-timer'; readonly height: bigint; readonly round: number; readonly kind: 'round' | 'propose'; readonly at: number }
  /** Execute `block` on the head and report with a 'validated' event. */
  | { readonly type: 'validate'; readonly height: bigint; readonly block: B }
  /** Build a block for `height` with `timestamp` and report it, unsealed, with a 'built' event. */
  | { readonly type: 'build'; readonly height: bigint; readonly timestamp: number }
  /** Seal `block` (this node's 'built' block) as its proposer and report it with a 'sealed' event. */
  | { readonly type: 'seal'; readonly height: bigint; readonly block: B }
  /** `block` is final: commit it with `certificate`, then start the next height. */
  | { readonly type: 'commit'; readonly block: B; readonly certificate: CommitCertificate }
  /** Informational: this node voted to impeach the proposer of `height`. */
  | { readonly type: 'impeach'; readonly height: bigint; readonly round: number; readonly proposer: Address; readonly cause: ImpeachCause }
  /** Informational: an input was refused; counted in state.rejections too. */
  | { readonly type: 'reject'; readonly reason: string; readonly from?: Address };

/** Payload a consensus signature covers (turned into a domain-separated digest by the crypto port). */
export interface SigningPayload {
  readonly purpose: 'proposal' | 'prepare' | 'commit' | 'round-change';
  readonly height: bigint;
  readonly round: number;
  /** 32 bytes: the block hash, or for a round change a hash of (prepared round, prepared block hash). */
  readonly hash: Uint8Array;
}

/** Signature checking, injected so the reducer stays free of key handling (and the simulator can be fast). */
export interface LbftVerifier {
  /** True when `signature` is `signer`'s signature over `payload`. Must be deterministic. */
  verify(payload: SigningPayload, signer: Address, signature: Uint8Array): boolean;
}

export interface LbftConfig {
  /** The committee, in index order (leader of round r >= 1 is validators[(h + r) mod n]). */
  readonly validators: readonly Address[];
  /** Proposers in schedule order: P(h) = proposers[h mod length]. */
  readonly proposers: readonly Address[];
  /** This node's identity (a validator, a proposer, both, or neither = follower). */
  readonly self: Address;
  /** Target time between blocks (ms): a proposer proposes at parent.timestamp + periodMs. */
  readonly periodMs: number;
  /** Round 0 times out at max(parent.timestamp + periodMs, start of the height) + timeoutMs; round r >= 1 after timeoutMs * 2^(r-1). */
  readonly timeoutMs: number;
  /** Cap of a round's timeout. */
  readonly maxTimeoutMs: number;
  /** Heights ahead of ours whose messages are buffered. */
  readonly futureHeights: number;
  /** Most buffered future messages in total. */
  readonly maxFutureMessages: number;
  readonly verifier: LbftVerifier;
}
