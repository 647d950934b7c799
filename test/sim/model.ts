// The simulator's world model: identities and their fake keys, the block type the engine runs on, the
// impeachment block I(h), and signature making and checking. Signatures are sha256(secret || payload):
// fast and deterministic, and only the simulator knows the secrets, so a node can sign only as itself.
import { createHash } from 'node:crypto';
import type { CommitCertificate } from '../../chain/certificate.ts';
import { proposerOf, quorumOf, signingPayload } from '../../chain/lbft/rules.ts';
import type { BlockRef, LbftVerifier, SigningPayload } from '../../chain/lbft/types.ts';
import type { Address, Hash } from '../../chain/types.ts';

/** The block the simulated engines agree on. `hash` covers every other field. */
export interface SimBlock extends BlockRef {
  readonly proposer: Address;
  readonly timestamp: number;
  /** False for a block a faulty proposer made invalid on purpose: execution rejects it. */
  readonly valid: boolean;
  /** True only for an impeachment block I(h). */
  readonly impeachment: boolean;
  /**
   * What the proposer took from its transaction pool (a count stands for the transactions): a proposer
   * that builds again, after a restart, finds a different pool and so builds a different block.
   */
  readonly txs: number;
}

export interface Timing {
  readonly periodMs: number;
  readonly timeoutMs: number;
}

/** Address of validator `i`: 0x00..0(i+1). */
export const validatorAddress = (i: number): Address => `0x${(i + 1).toString(16).padStart(40, '0')}`;
/** Address of proposer `i`: 0xff00..0(i+1), apart from every validator. */
export const proposerAddress = (i: number): Address => `0xff${(i + 1).toString(16).padStart(38, '0')}`;

const secrets = new Map<Address, Buffer>();

/** The fake private key of `who`: known to the simulator only. */
export function secretOf(who: Address): Buffer {
  let s = secrets.get(who);
  if (s === undefined) {
    s = createHash('sha256').update(`datagate-sim-secret/${who}`).digest();
    secrets.set(who, s);
  }
  return s;
}

/** Canonical bytes of a signing payload. */
export function encodePayload(p: SigningPayload): Buffer {
  return Buffer.concat([Buffer.from(`${p.purpose}|${p.height}|${p.round}|`), p.hash]);
}

/** `who`'s signature over `payload`. */
export function signAs(who: Address, payload: SigningPayload): Uint8Array {
  return new Uint8Array(createHash('sha256').update(secretOf(who)).update(encodePayload(payload)).digest());
}

/** The verifier every simulated engine gets: recomputes the signature from the claimed signer's secret. */
export const simVerifier: LbftVerifier = {
  verify(payload, signer, signature) {
    const expected = signAs(signer, payload);
    return signature.length === expected.length && Buffer.compare(Buffer.from(signature), Buffer.from(expected)) === 0;
  },
};

/** Hex of 32 bytes, 0x-prefixed. */
export const hex = (bytes: Uint8Array): string => `0x${Buffer.from(bytes).toString('hex')}`;

/** Hash of a block's fields (everything but the hash itself). */
export function blockHashOf(b: Omit<SimBlock, 'hash'>): Hash {
  const text = `${b.number}|${b.parentHash}|${b.proposer}|${b.timestamp}|${b.valid}|${b.impeachment}|${b.txs}`;
  return `0x${createHash('sha256').update(text).digest('hex')}`;
}

/** A block with its hash filled in. */
export function makeBlock(fields: Omit<SimBlock, 'hash'>): SimBlock {
  return { ...fields, hash: blockHashOf(fields) };
}

export const GENESIS: SimBlock = makeBlock({
  number: 0n,
  parentHash: `0x${'00'.repeat(32)}`,
  proposer: `0x${'00'.repeat(20)}`,
  timestamp: 0,
  valid: true,
  impeachment: false,
  txs: 0,
});

/** I(h): fully determined by the parent, so every honest node builds the identical block. */
export function impeachmentOf(parent: SimBlock, proposers: readonly Address[], timing: Timing): SimBlock {
  const number = parent.number + 1n;
  return makeBlock({
    number,
    parentHash: parent.hash,
    proposer: proposerOf({ proposers }, number),
    timestamp: parent.timestamp + timing.periodMs + timing.timeoutMs,
    valid: true,
    impeachment: true,
    txs: 0,
  });
}

/**
 * Execution in the block model: a reason `block` is not a valid child of `parent`, or null when it is.
 * Checks the hash, height, parent link, timestamp order, scheduled proposer and the `valid` flag; an
 * impeachment block must be exactly I(h).
 */
export function blockProblem(block: SimBlock, parent: SimBlock, proposers: readonly Address[], timing: Timing): string | null {
  if (blockHashOf(block) !== block.hash) return 'hash does not match the fields';
  if (block.number !== parent.number + 1n) return 'wrong number';
  if (block.parentHash !== parent.hash) return 'wrong parent';
  if (block.timestamp <= parent.timestamp) return 'timestamp not after the parent';
  if (block.proposer !== proposerOf({ proposers }, block.number)) return 'proposer field is not the scheduled proposer';
  if (block.impeachment) return block.hash === impeachmentOf(parent, proposers, timing).hash ? null : 'impeachment block is not I(h)';
  return block.valid ? null : 'block fails execution';
}

/** A reason `cert` is not a quorum of distinct validators' commit signatures for `block`, or null. */
export function certificateProblem(cert: CommitCertificate, block: SimBlock, validators: readonly Address[]): string | null {
  if (cert.height !== block.number || cert.blockHash !== block.hash) return 'certificate is for another block';
  const members = new Set(validators);
  const seen = new Set<Address>();
  const payload = signingPayload<SimBlock>({ type: 'commit', height: cert.height, round: cert.round, hash: cert.blockHash });
  for (const { signer, signature } of cert.signatures) {
    if (!members.has(signer)) return `signer ${signer} is not a validator`;
    if (seen.has(signer)) return `signer ${signer} counted twice`;
    if (!simVerifier.verify(payload, signer, signature)) return `signature of ${signer} is forged`;
    seen.add(signer);
  }
  const q = quorumOf(validators.length);
  return seen.size >= q ? null : `${seen.size} commit signatures, quorum is ${q}`;
}
