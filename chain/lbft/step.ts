// The LBFT 2.0 reducer: step(state, event) -> { state, actions }. Deterministic and free of I/O: no clock,
// timers, randomness, network or disk. It updates the state object it is given (owned by one driver or
// one simulated node) and returns what the host must do. Replaying the same events gives the same state
// and actions, which is what the WAL relies on.
//
// Round 0 belongs to the scheduled proposer P(h). A validator executes a proposal (asks the host) before
// it PREPAREs; Q PREPAREs make it prepared and it COMMITs; Q COMMITs decide. A round that times out, or
// whose proposal is invalid or equivocating, is left with a ROUND-CHANGE carrying the highest prepared
// certificate; f+1 round changes above our round pull us up; the leader of round r >= 1 proposes, with Q
// round changes as justification, the highest prepared block or else the impeachment block I(h).
import type { CommitCertificate } from '../certificate.ts';
import type { Address, Hash } from '../types.ts';
import {
  faultyOf,
  highestPrepared,
  justificationProblem,
  leaderOf,
  proposerOf,
  quorumOf,
  roundChangeProblem,
  signedBySender,
  signingPayload,
} from './rules.ts';
import type { LbftState } from './state.ts';
import { resetHeight, roundMap } from './state.ts';
import type { BlockRef, Commit, Decided, ImpeachCause, LbftAction, LbftEvent, Message, Prepare, Proposal, RoundChange } from './types.ts';

export { initialState } from './state.ts';
export type { LbftState } from './state.ts';

interface Ctx<B extends BlockRef> {
  readonly s: LbftState<B>;
  readonly now: number;
  readonly actions: LbftAction<B>[];
}

/** Apply `event` to `state`; returns the (same, updated) state and the actions for the host. */
export function step<B extends BlockRef>(state: LbftState<B>, event: LbftEvent<B>): { state: LbftState<B>; actions: LbftAction<B>[] } {
  const c: Ctx<B> = { s: state, now: event.now, actions: [] };
  switch (event.type) {
    case 'start':
      onStart(c, event.height, event.parent, event.impeachment);
      break;
    case 'message':
      onMessage(c, event.message);
      break;
    case 'timeout':
      onTimeout(c, event.height, event.round, event.kind);
      break;
    case 'validated':
      onValidated(c, event.height, event.hash, event.valid);
      break;
    case 'built':
      onBuilt(c, event.height, event.block);
      break;
    case 'sealed':
      onSealed(c, event.height, event.block);
      break;
    case 'resume':
      onResume(c);
      break;
  }
  return { state, actions: c.actions };
}

const isValidator = <B extends BlockRef>(s: LbftState<B>, who: Address = s.config.self) => s.config.validators.includes(who);
const quorum = <B extends BlockRef>(s: LbftState<B>) => quorumOf(s.config.validators.length);

function reject<B extends BlockRef>(c: Ctx<B>, reason: string, from?: Address): void {
  c.s.rejections[reason] = (c.s.rejections[reason] ?? 0) + 1;
  c.actions.push(from === undefined ? { type: 'reject', reason } : { type: 'reject', reason, from });
}

/** Timeout of round r >= 1: timeoutMs * 2^(r-1), capped. */
function roundTimeout<B extends BlockRef>(s: LbftState<B>, round: number): number {
  return Math.min(s.config.timeoutMs * 2 ** Math.min(round - 1, 20), s.config.maxTimeoutMs);
}

function onStart<B extends BlockRef>(c: Ctx<B>, height: bigint, parent: { hash: Hash; timestamp: number }, impeachment: B): void {
  const s = c.s;
  if (s.started && height <= s.height) return reject(c, 'start-for-old-height');
  s.started = true;
  s.height = height;
  s.parent = { hash: parent.hash, timestamp: parent.timestamp };
  s.impeachment = impeachment;
  resetHeight(s);
  s.blocks.set(impeachment.hash, impeachment);
  // I(h) is built by this node's own host from the parent: valid by construction.
  s.validation.set(impeachment.hash, 'valid');
  armTimers(c);
  const pending = s.future;
  s.future = [];
  for (const m of pending) {
    if (m.height === height) onMessage(c, m);
    else if (m.height > height) s.future.push(m);
  }
}

/**
 * Arm the timers of the current round, counted from now: at the start of a height, and again after a
 * restart, whose downtime must not be charged to the proposer. The proposer gets at least timeoutMs from
 * the moment we start (or restart) the height, even when the parent is old, so that it is never impeached
 * before it could have proposed.
 */
function armTimers<B extends BlockRef>(c: Ctx<B>): void {
  const s = c.s;
  const { periodMs, timeoutMs } = s.config;
  if (isValidator(s)) {
    const at = s.round === 0 ? Math.max(s.parent.timestamp + periodMs, c.now) + timeoutMs : c.now + roundTimeout(s, s.round);
    c.actions.push({ type: 'set-timer', height: s.height, round: s.round, kind: 'round', at });
  }
  if (proposerOf(s.config, s.height) === s.config.self && !s.buildRequested) {
    c.actions.push({ type: 'set-timer', height: s.height, round: 0, kind: 'propose', at: s.parent.timestamp + periodMs });
  }
}

function onResume<B extends BlockRef>(c: Ctx<B>): void {
  const s = c.s;
  if (!s.started) return;
  if (s.decision !== null) {
    c.actions.push({ type: 'commit', block: s.decision.block, certificate: s.decision.certificate });
    return;
  }
  for (const [hash, v] of s.validation) {
    const block = s.blocks.get(hash);
    if (v === 'pending' && block !== undefined) c.actions.push({ type: 'validate', height: s.height, block });
  }
  // A block built before the restart may already carry a seal signature: seal it again, never another.
  if (!s.sentProposal.has(0) && s.built !== null) c.actions.push({ type: 'seal', height: s.height, block: s.built });
  else if (!s.sentProposal.has(0) && s.buildRequested) c.actions.push({ type: 'build', height: s.height, timestamp: Math.max(c.now, s.parent.timestamp + 1) });
  armTimers(c);
}

function onTimeout<B extends BlockRef>(c: Ctx<B>, height: bigint, round: number, kind: 'round' | 'propose'): void {
  const s = c.s;
  if (!s.started || height !== s.height || s.decided) return;
  if (kind === 'propose') {
    if (s.buildRequested || proposerOf(s.config, height) !== s.config.self) return;
    s.buildRequested = true;
    c.actions.push({ type: 'build', height, timestamp: Math.max(c.now, s.parent.timestamp + 1) });
    return;
  }
  if (round !== s.round || !isValidator(s)) return;
  impeach(c, 'timeout');
  moveToRound(c, round + 1);
}

/** This proposer's block, unsealed and durable: the only block it will ever seal at this height. */
function onBuilt<B extends BlockRef>(c: Ctx<B>, height: bigint, block: B): void {
  const s = c.s;
  if (height !== s.height || s.decided || s.built !== null || s.sentProposal.has(0)) return;
  s.built = block;
  c.actions.push({ type: 'seal', height, block });
}

function onSealed<B extends BlockRef>(c: Ctx<B>, height: bigint, block: B): void {
  const s = c.s;
  if (height !== s.height || s.decided || s.sentProposal.has(0)) return;
  s.sentProposal.add(0);
  c.actions.push({ type: 'broadcast', message: { type: 'proposal', height, round: 0, block, justification: [] } });
}

/** Leave round 0 at most once per height, recording why the proposer is impeached. */
function impeach<B extends BlockRef>(c: Ctx<B>, cause: ImpeachCause): void {
  const s = c.s;
  if (s.impeached || s.round !== 0 || !isValidator(s)) return;
  s.impeached = true;
  c.actions.push({ type: 'impeach', height: s.height, round: 0, proposer: proposerOf(s.config, s.height), cause });
}

/** Enter `round` (> current): arm its timer, send our ROUND-CHANGE, and act on what we already hold. */
function moveToRound<B extends BlockRef>(c: Ctx<B>, round: number): void {
  const s = c.s;
  if (round <= s.round) return;
  if (s.round === 0) impeach(c, 'timeout');
  s.round = round;
  c.actions.push({ type: 'set-timer', height: s.height, round, kind: 'round', at: c.now + roundTimeout(s, round) });
  if (isValidator(s) && s.sentRoundChange < round) {
    s.sentRoundChange = round;
    c.actions.push({ type: 'broadcast', message: { type: 'round-change', height: s.height, round, prepared: s.prepared } });
  }
  maybeLead(c, round);
  tryPrepare(c);
  tryCommit(c);
}

function onMessage<B extends BlockRef>(c: Ctx<B>, m: Message<B>): void {
  const s = c.s;
  if (m.type === 'decided') return onDecided(c, m);
  if (!s.started || m.height > s.height) return buffer(c, m);
  if (m.height < s.height) {
    // A validator still working on an old height: hand it the decided block so it catches up.
    if (m.type === 'round-change' && isValidator(s, m.sender)) c.actions.push({ type: 'help-lagging', to: m.sender, height: m.height });
    return reject(c, 'stale-height');
  }
  if (s.decided) {
    if (m.type === 'round-change' && isValidator(s, m.sender) && m.sender !== s.config.self) c.actions.push({ type: 'help-lagging', to: m.sender, height: m.height });
    return;
  }
  // A proposer that is not a validator sees its own proposal come back: nothing to do, nothing to count.
  if (!isValidator(s)) return m.sender === s.config.self ? undefined : reject(c, 'not-a-validator');
  if (m.type !== 'proposal' && !isValidator(s, m.sender)) return reject(c, 'sender-not-validator', m.sender);
  // Cheap structural checks before the signature, which costs a verification.
  if (m.type === 'proposal' && m.sender !== (m.round === 0 ? proposerOf(s.config, s.height) : leaderOf(s.config, s.height, m.round))) {
    return reject(c, 'proposal-from-wrong-sender', m.sender);
  }
  if (m.type === 'round-change') {
    const problem = roundChangeProblem(s.config, m);
    if (problem !== null) return reject(c, 'bad-round-change', m.sender);
  }
  if (!signedBySender(s.config, m)) return reject(c, 'bad-signature', m.sender);
  switch (m.type) {
    case 'proposal':
      return onProposal(c, m);
    case 'prepare':
      return onPrepare(c, m);
    case 'commit':
      return onCommit(c, m);
    case 'round-change':
      return onRoundChange(c, m);
  }
}

function buffer<B extends BlockRef>(c: Ctx<B>, m: Message<B>): void {
  const s = c.s;
  if (s.started && m.height > s.height + BigInt(s.config.futureHeights)) return reject(c, 'future-too-far');
  if (s.future.length >= s.config.maxFutureMessages) return reject(c, 'future-buffer-full');
  s.future.push(m);
}

function onProposal<B extends BlockRef>(c: Ctx<B>, p: Proposal<B>): void {
  const s = c.s;
  if (p.block.number !== s.height || p.block.parentHash !== s.parent.hash) return reject(c, 'proposal-wrong-parent', p.sender);
  if (p.round < s.round) return reject(c, 'proposal-old-round', p.sender);
  const existing = s.proposals.get(p.round);
  if (existing !== undefined) {
    if (existing.block.hash === p.block.hash) return;
    reject(c, 'equivocating-proposal', p.sender);
    if (p.round === s.round) {
      if (p.round === 0) impeach(c, 'equivocation');
      moveToRound(c, p.round + 1);
    }
    return;
  }
  if (p.round > 0) {
    const problem = justificationProblem(s.config, s.height, p.round, p.block.hash, s.impeachment!.hash, p.justification);
    if (problem !== null) return reject(c, 'unjustified-proposal', p.sender);
  }
  // A justified proposal for a later round proves a quorum moved there: follow it.
  if (p.round > s.round) moveToRound(c, p.round);
  s.proposals.set(p.round, p);
  learnBlock(c, p.block);
  tryPrepare(c);
  recheckDecide(c, p.block.hash);
}

/** Commits may arrive before their block: once the block is known, see whether they already decide. */
function recheckDecide<B extends BlockRef>(c: Ctx<B>, hash: Hash): void {
  for (const round of c.s.commits.keys()) tryDecide(c, round, hash);
}

/** Remember a block of this height and ask the host to execute it unless done already. */
function learnBlock<B extends BlockRef>(c: Ctx<B>, block: B): void {
  const s = c.s;
  if (!s.blocks.has(block.hash)) s.blocks.set(block.hash, block);
  if (!s.validation.has(block.hash)) {
    s.validation.set(block.hash, 'pending');
    c.actions.push({ type: 'validate', height: s.height, block });
  }
}

function onValidated<B extends BlockRef>(c: Ctx<B>, height: bigint, hash: Hash, valid: boolean): void {
  const s = c.s;
  if (height !== s.height || s.validation.get(hash) !== 'pending') return;
  s.validation.set(hash, valid ? 'valid' : 'invalid');
  if (!valid) {
    reject(c, 'invalid-block');
    const current = s.proposals.get(s.round);
    if (!s.decided && current?.block.hash === hash) {
      if (s.round === 0) impeach(c, 'invalid-block');
      moveToRound(c, s.round + 1);
    }
    return;
  }
  tryPrepare(c);
  tryCommit(c);
}

/** PREPARE the current round's proposal once it is executed and valid. */
function tryPrepare<B extends BlockRef>(c: Ctx<B>): void {
  const s = c.s;
  const p = s.proposals.get(s.round);
  if (s.decided || p === undefined || s.sentPrepare.has(s.round) || s.validation.get(p.block.hash) !== 'valid') return;
  s.sentPrepare.add(s.round);
  c.actions.push({ type: 'broadcast', message: { type: 'prepare', height: s.height, round: s.round, hash: p.block.hash } });
}

function matching<V extends { hash: Hash }>(votes: Map<Address, V> | undefined, hash: Hash): V[] {
  const out: V[] = [];
  for (const v of votes?.values() ?? []) if (v.hash === hash) out.push(v);
  return out;
}

function onPrepare<B extends BlockRef>(c: Ctx<B>, m: Prepare): void {
  const votes = roundMap(c.s.prepares, m.round);
  const prior = votes.get(m.sender);
  if (prior !== undefined) return prior.hash === m.hash ? undefined : reject(c, 'equivocating-prepare', m.sender);
  votes.set(m.sender, m);
  tryCommit(c);
}

/** On Q PREPAREs for the current round's executed proposal: become prepared and COMMIT. */
function tryCommit<B extends BlockRef>(c: Ctx<B>): void {
  const s = c.s;
  const p = s.proposals.get(s.round);
  if (s.decided || p === undefined || s.sentCommit.has(s.round) || s.validation.get(p.block.hash) !== 'valid') return;
  const prepares = matching(s.prepares.get(s.round), p.block.hash);
  if (prepares.length < quorum(s)) return;
  s.prepared = { round: s.round, block: p.block, prepares: prepares.slice(0, quorum(s)) };
  s.sentCommit.add(s.round);
  c.actions.push({ type: 'broadcast', message: { type: 'commit', height: s.height, round: s.round, hash: p.block.hash } });
}

function onCommit<B extends BlockRef>(c: Ctx<B>, m: Commit): void {
  const votes = roundMap(c.s.commits, m.round);
  const prior = votes.get(m.sender);
  if (prior !== undefined) return prior.hash === m.hash ? undefined : reject(c, 'equivocating-commit', m.sender);
  votes.set(m.sender, m);
  tryDecide(c, m.round, m.hash);
}

/** Q COMMITs for (round, hash) in any round decide the height, once the block itself is known. */
function tryDecide<B extends BlockRef>(c: Ctx<B>, round: number, hash: Hash): void {
  const s = c.s;
  const block = s.blocks.get(hash);
  if (s.decided || block === undefined) return;
  const commits = matching(s.commits.get(round), hash);
  if (commits.length < quorum(s)) return;
  const certificate: CommitCertificate = {
    height: s.height,
    round,
    blockHash: hash,
    signatures: commits.slice(0, quorum(s)).map((v) => ({ signer: v.sender, signature: v.signature })),
  };
  decide(c, block, certificate, true);
}

function decide<B extends BlockRef>(c: Ctx<B>, block: B, certificate: CommitCertificate, announce: boolean): void {
  c.s.decided = true;
  c.s.decision = { block, certificate };
  if (announce) c.actions.push({ type: 'send-decided', message: { type: 'decided', height: c.s.height, block, certificate } });
  c.actions.push({ type: 'commit', block, certificate });
}

function onRoundChange<B extends BlockRef>(c: Ctx<B>, m: RoundChange<B>): void {
  const s = c.s;
  const rcs = roundMap(s.roundChanges, m.round);
  if (rcs.has(m.sender)) return;
  rcs.set(m.sender, m);
  if (m.prepared !== null && !s.blocks.has(m.prepared.block.hash)) {
    s.blocks.set(m.prepared.block.hash, m.prepared.block);
    recheckDecide(c, m.prepared.block.hash);
  }
  // f+1 validators are beyond our round: at least one honest one timed out there, so join the
  // (f+1)-th highest round they are in.
  const highestBySender = new Map<Address, number>();
  for (const [round, bySender] of s.roundChanges) {
    if (round <= s.round) continue;
    for (const sender of bySender.keys()) highestBySender.set(sender, Math.max(round, highestBySender.get(sender) ?? 0));
  }
  const f = faultyOf(s.config.validators.length);
  if (highestBySender.size >= f + 1) {
    const rounds = [...highestBySender.values()].sort((a, b) => b - a);
    moveToRound(c, rounds[f]!);
  }
  maybeLead(c, m.round);
}

/** As leader of `round` holding Q ROUND-CHANGEs for it, propose the justified value. */
function maybeLead<B extends BlockRef>(c: Ctx<B>, round: number): void {
  const s = c.s;
  if (round < 1 || round < s.round || s.decided || s.sentProposal.has(round)) return;
  if (leaderOf(s.config, s.height, round) !== s.config.self) return;
  const rcs = s.roundChanges.get(round);
  if (rcs === undefined || rcs.size < quorum(s)) return;
  if (round > s.round) return moveToRound(c, round);
  const justification = [...rcs.values()];
  const best = highestPrepared(justification);
  const block = best === null ? s.impeachment! : best.block;
  s.sentProposal.add(round);
  c.actions.push({ type: 'broadcast', message: { type: 'proposal', height: s.height, round, block, justification } });
}

function onDecided<B extends BlockRef>(c: Ctx<B>, d: Decided<B>): void {
  const s = c.s;
  if (s.started && d.height < s.height) return;
  if (s.started && d.height === s.height && s.decided) return;
  const problem = certificateProblem(s, d);
  if (problem !== null) return reject(c, problem);
  if (!s.started || d.height > s.height) {
    if (d.height > s.syncRequested) {
      s.syncRequested = d.height;
      c.actions.push({ type: 'sync', height: d.height });
    }
    return buffer(c, d);
  }
  if (d.block.parentHash !== s.parent.hash) return reject(c, 'decided-wrong-parent');
  s.blocks.set(d.block.hash, d.block);
  decide(c, d.block, d.certificate, false);
}

/** Check a VALIDATE message's certificate against the committee; a reason, or null when valid. */
function certificateProblem<B extends BlockRef>(s: LbftState<B>, d: Decided<B>): string | null {
  const cert = d.certificate;
  if (d.block.number !== d.height || cert.height !== d.height || cert.blockHash !== d.block.hash) return 'decided-mismatch';
  const seen = new Set<Address>();
  for (const { signer, signature } of cert.signatures) {
    if (!isValidator(s, signer) || seen.has(signer)) return 'decided-bad-signer';
    const payload = signingPayload<B>({ type: 'commit', height: cert.height, round: cert.round, hash: cert.blockHash });
    if (!s.config.verifier.verify(payload, signer, signature)) return 'decided-bad-signature';
    seen.add(signer);
  }
  return seen.size >= quorum(s) ? null : 'decided-below-quorum';
}
