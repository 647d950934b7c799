// The rules of LBFT 2.0 that do not depend on a node's state: quorum sizes, who proposes and who leads
// each round, what each message signs, and the checks of prepared certificates and round-change
// justifications (QBFT's JustifyRoundChange / JustifyPrePrepare, with I(h) as the only free value).
import { hexToBytes, keccak256 } from '../crypto/index.ts';
import { rlpEncode } from '../rlp.ts';
import type { Address, Hash } from '../types.ts';
import type { BlockRef, LbftConfig, PreparedCertificate, RoundChange, SignedMessage, SigningPayload, Unsigned } from './types.ts';

/** f = floor((n - 1) / 3): the number of faulty validators tolerated. */
export const faultyOf = (n: number): number => Math.floor((n - 1) / 3);

/** Q = ceil((n + f + 1) / 2): any two quorums share an honest validator. Used in every phase. */
export const quorumOf = (n: number): number => Math.ceil((n + faultyOf(n) + 1) / 2);

/** The scheduled proposer of `height`. */
export function proposerOf(config: Pick<LbftConfig, 'proposers'>, height: bigint): Address {
  return config.proposers[Number(height % BigInt(config.proposers.length))]!;
}

/** The leader of an impeachment round r >= 1 at `height`: validators[(h + r) mod n]. */
export function leaderOf(config: Pick<LbftConfig, 'validators'>, height: bigint, round: number): Address {
  const n = BigInt(config.validators.length);
  return config.validators[Number((height + BigInt(round)) % n)]!;
}

const ZERO32 = new Uint8Array(32);

/** Hash a round change signs: binds its prepared round and block, or zero when it has none. */
export function roundChangeHash(prepared: Pick<PreparedCertificate<BlockRef>, 'round' | 'block'> | null): Uint8Array {
  if (prepared === null) return ZERO32;
  return keccak256(rlpEncode([prepared.round, hexToBytes(prepared.block.hash)]));
}

/** What `message` signs. */
export function signingPayload<B extends BlockRef>(message: Unsigned<SignedMessage<B>>): SigningPayload {
  switch (message.type) {
    case 'proposal':
      return { purpose: 'proposal', height: message.height, round: message.round, hash: hexToBytes(message.block.hash) };
    case 'prepare':
    case 'commit':
      return { purpose: message.type, height: message.height, round: message.round, hash: hexToBytes(message.hash) };
    case 'round-change':
      return { purpose: 'round-change', height: message.height, round: message.round, hash: roundChangeHash(message.prepared) };
  }
}

/** True when `message` is signed by its sender. */
export function signedBySender<B extends BlockRef>(config: LbftConfig, message: SignedMessage<B>): boolean {
  return config.verifier.verify(signingPayload(message), message.sender, message.signature);
}

/**
 * Check a prepared certificate for `height`: a quorum of distinct validators' PREPAREs for its round and
 * block, each correctly signed. Returns a reason when it is not valid, null when it is.
 */
export function preparedCertificateProblem<B extends BlockRef>(config: LbftConfig, height: bigint, cert: PreparedCertificate<B>, below: number): string | null {
  if (cert.round >= below) return 'prepared round is not below the round change';
  if (cert.block.number !== height) return 'prepared block is for another height';
  const members = new Set(config.validators);
  const seen = new Set<Address>();
  for (const p of cert.prepares) {
    if (p.type !== 'prepare' || p.height !== height || p.round !== cert.round || p.hash !== cert.block.hash) return 'prepare does not match the certificate';
    if (!members.has(p.sender)) return 'prepare from a non-validator';
    if (seen.has(p.sender)) return 'prepare counted twice';
    if (!signedBySender(config, p)) return 'prepare signature invalid';
    seen.add(p.sender);
  }
  return seen.size >= quorumOf(config.validators.length) ? null : 'prepared certificate below quorum';
}

/** Checks of one ROUND-CHANGE, apart from its sender's signature. Returns a reason or null. */
export function roundChangeProblem<B extends BlockRef>(config: LbftConfig, rc: RoundChange<B>): string | null {
  if (rc.round < 1) return 'round change to round 0';
  if (!config.validators.includes(rc.sender)) return 'round change from a non-validator';
  if (rc.prepared !== null) return preparedCertificateProblem(config, rc.height, rc.prepared, rc.round);
  return null;
}

/** The highest prepared certificate among `rcs`, or null when none carries one. */
export function highestPrepared<B extends BlockRef>(rcs: Iterable<RoundChange<B>>): PreparedCertificate<B> | null {
  let best: PreparedCertificate<B> | null = null;
  for (const rc of rcs) if (rc.prepared !== null && (best === null || rc.prepared.round > best.round)) best = rc.prepared;
  return best;
}

/**
 * Check that `justification` allows proposing `blockHash` in round `round` >= 1 at `height`: a quorum of
 * valid, distinctly signed ROUND-CHANGEs for (height, round); the block must be the highest prepared one
 * among them, or the impeachment block `impeachmentHash` when none carries a prepared certificate.
 */
export function justificationProblem<B extends BlockRef>(
  config: LbftConfig,
  height: bigint,
  round: number,
  blockHash: Hash,
  impeachmentHash: Hash,
  justification: readonly RoundChange<B>[],
): string | null {
  const seen = new Set<Address>();
  for (const rc of justification) {
    if (rc.type !== 'round-change' || rc.height !== height || rc.round !== round) return 'justification holds a message for another height or round';
    if (seen.has(rc.sender)) return 'justification counts a validator twice';
    const problem = roundChangeProblem(config, rc);
    if (problem !== null) return `justification: ${problem}`;
    if (!signedBySender(config, rc)) return 'justification: round change signature invalid';
    seen.add(rc.sender);
  }
  if (seen.size < quorumOf(config.validators.length)) return 'justification below quorum';
  const best = highestPrepared(justification);
  const expected = best === null ? impeachmentHash : best.block.hash;
  return blockHash === expected ? null : best === null ? 'no prepared block justified: only the impeachment block may be proposed' : 'proposal is not the highest prepared block';
}
