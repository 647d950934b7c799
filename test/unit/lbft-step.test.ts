// Focused runs of the LBFT reducer with a tiny in-order network: the normal path, a silent proposer
// (impeachment block decided by all), an invalid block, and refusals of forged input; and what a restarted
// node's engine asks for after its WAL replay (the proposer's own block sealed again, timers from now).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { bytesToHex } from '../../chain/crypto/index.ts';
import { signingPayload } from '../../chain/lbft/rules.ts';
import { initialState, step, type LbftState } from '../../chain/lbft/step.ts';
import type { BlockRef, LbftAction, LbftConfig, LbftEvent, Message, SigningPayload } from '../../chain/lbft/types.ts';

interface TBlock extends BlockRef {
  readonly timestamp: number;
  readonly impeachment: boolean;
  readonly valid: boolean;
}

const addr = (i: number) => '0x' + i.toString(16).padStart(40, '0');
const VALIDATORS = [1, 2, 3, 4].map(addr);
const PROPOSERS = [addr(10), addr(11)];

function sig(payload: SigningPayload, signer: string): Uint8Array {
  const h = createHash('sha256').update(signer).update(payload.purpose).update(`${payload.height}/${payload.round}`).update(payload.hash);
  return h.digest();
}

const verifier = { verify: (p: SigningPayload, signer: string, s: Uint8Array) => bytesToHex(sig(p, signer)) === bytesToHex(s) };

function blockHash(parts: string): string {
  return '0x' + createHash('sha256').update(parts).digest('hex');
}

function mkBlock(parent: TBlock, opts: { impeachment?: boolean; valid?: boolean; tag?: string }): TBlock {
  const number = parent.number + 1n;
  const timestamp = opts.impeachment ? parent.timestamp + 1000 + 3000 : parent.timestamp + 1000;
  return { number, parentHash: parent.hash, timestamp, impeachment: !!opts.impeachment, valid: opts.valid ?? true, hash: blockHash(`${parent.hash}/${number}/${opts.impeachment}/${opts.tag ?? ''}`) };
}

const GENESIS: TBlock = { hash: blockHash('genesis'), number: 0n, parentHash: '0x', timestamp: 0, impeachment: false, valid: true };

/** Runs every node's reducer with instant, in-order delivery until `heights` are committed or the queue runs dry. */
function run(opts: { heights: number; proposerBehaviour?: 'silent' | 'invalid' }) {
  const ids = [...VALIDATORS, ...PROPOSERS];
  const cfg = (self: string): LbftConfig => ({ validators: VALIDATORS, proposers: PROPOSERS, self, periodMs: 1000, timeoutMs: 3000, maxTimeoutMs: 60_000, futureHeights: 10, maxFutureMessages: 1000, verifier });
  const nodes = new Map(ids.map((id) => [id, initialState<TBlock>(cfg(id))]));
  const chains = new Map<string, TBlock[]>(ids.map((id) => [id, [GENESIS]]));
  const impeachments: string[] = [];
  let now = 0;
  const queue: { at: number; seq: number; node: string; event: LbftEvent<TBlock> }[] = [];
  let seq = 0;
  const push = (at: number, node: string, event: LbftEvent<TBlock>) => queue.push({ at, seq: seq++, node, event });
  const start = (id: string) => {
    const chain = chains.get(id)!;
    const head = chain[chain.length - 1]!;
    push(now, id, { type: 'start', now, height: head.number + 1n, parent: { hash: head.hash, timestamp: head.timestamp }, impeachment: mkBlock(head, { impeachment: true }) });
  };
  const deliver = (to: string[], message: Message<TBlock>) => to.forEach((id) => push(now + 1, id, { type: 'message', now: now + 1, message }));
  const perform = (id: string, a: LbftAction<TBlock>, s: LbftState<TBlock>) => {
    switch (a.type) {
      case 'broadcast': {
        const message = { ...a.message, sender: id, signature: sig(signingPayload(a.message), id) } as Message<TBlock>;
        return deliver(VALIDATORS.includes(id) ? VALIDATORS : [...VALIDATORS], message);
      }
      case 'send-decided':
        return deliver(ids, a.message);
      case 'set-timer':
        return push(a.at, id, { type: 'timeout', now: a.at, height: a.height, round: a.round, kind: a.kind });
      case 'validate':
        return push(now, id, { type: 'validated', now, height: a.height, hash: a.block.hash, valid: a.block.valid });
      case 'build': {
        if (opts.proposerBehaviour === 'silent') return;
        const head = chains.get(id)!.at(-1)!;
        return push(now, id, { type: 'built', now, height: a.height, block: mkBlock(head, { valid: opts.proposerBehaviour !== 'invalid' }) });
      }
      case 'seal':
        return push(now, id, { type: 'sealed', now, height: a.height, block: a.block });
      case 'commit':
        chains.get(id)!.push(a.block);
        return start(id);
      case 'impeach':
        if (id === VALIDATORS[0]) impeachments.push(a.cause);
        return;
      default:
        void s;
    }
  };
  ids.forEach(start);
  let steps = 0;
  while (queue.length > 0 && steps++ < 100_000) {
    queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const { at, node, event } = queue.shift()!;
    now = at;
    const { state, actions } = step(nodes.get(node)!, event);
    for (const a of actions) perform(node, a, state);
    if ([...chains.values()].every((c) => c.length > opts.heights)) break;
  }
  return { chains, impeachments, nodes };
}

test('normal path: every node commits the same proposer-built blocks', () => {
  const { chains, impeachments } = run({ heights: 5 });
  const reference = chains.get(VALIDATORS[0]!)!.slice(0, 6).map((b) => b.hash);
  for (const chain of chains.values()) assert.deepEqual(chain.slice(0, 6).map((b) => b.hash), reference);
  assert.ok(chains.get(VALIDATORS[0]!)!.slice(1, 6).every((b) => !b.impeachment));
  assert.deepEqual(impeachments, []);
});

test('a silent proposer is impeached: all nodes commit the same I(h)', () => {
  const { chains, impeachments } = run({ heights: 3, proposerBehaviour: 'silent' });
  const reference = chains.get(VALIDATORS[0]!)!.slice(0, 4);
  assert.ok(reference.slice(1).every((b) => b.impeachment));
  for (const chain of chains.values()) assert.deepEqual(chain.slice(0, 4).map((b) => b.hash), reference.map((b) => b.hash));
  assert.ok(impeachments.length >= 3 && impeachments.every((c) => c === 'timeout'));
});

test('an invalid block is impeached without waiting for the timeout', () => {
  const { chains, impeachments } = run({ heights: 2, proposerBehaviour: 'invalid' });
  for (const chain of chains.values()) assert.ok(chain.slice(1, 3).every((b) => b.impeachment && b.valid));
  assert.equal(impeachments[0], 'invalid-block');
  // Impeached at timestamp parent + period (invalid seen at once), not parent + period + timeout.
});

test('forged or misdirected messages are refused and counted', () => {
  const s = initialState<TBlock>({ validators: VALIDATORS, proposers: PROPOSERS, self: VALIDATORS[0]!, periodMs: 1000, timeoutMs: 3000, maxTimeoutMs: 60_000, futureHeights: 2, maxFutureMessages: 3, verifier });
  step(s, { type: 'start', now: 0, height: 1n, parent: { hash: GENESIS.hash, timestamp: 0 }, impeachment: mkBlock(GENESIS, { impeachment: true }) });
  const b = mkBlock(GENESIS, {});
  const forged = { type: 'proposal' as const, height: 1n, round: 0, block: b, justification: [], sender: PROPOSERS[0]!, signature: new Uint8Array(32) };
  // P(1) = proposers[1 mod 2]: PROPOSERS[0] is not scheduled at height 1.
  step(s, { type: 'message', now: 1, message: forged });
  assert.equal(s.rejections['proposal-from-wrong-sender'], 1);
  step(s, { type: 'message', now: 1, message: { ...forged, sender: PROPOSERS[1]! } });
  assert.equal(s.rejections['bad-signature'], 1);
  const outsider = { type: 'prepare' as const, height: 1n, round: 0, hash: b.hash, sender: addr(99), signature: sig({ purpose: 'prepare', height: 1n, round: 0, hash: new Uint8Array(32) }, addr(99)) };
  step(s, { type: 'message', now: 1, message: outsider });
  assert.equal(s.rejections['sender-not-validator'], 1);
  // An unjustified round-1 proposal from the round-1 leader (validators[(1 + 1) % 4]).
  const leader = VALIDATORS[2]!;
  const unjustified = { type: 'proposal' as const, height: 1n, round: 1, block: b, justification: [] };
  step(s, { type: 'message', now: 1, message: { ...unjustified, sender: leader, signature: sig(signingPayload(unjustified), leader) } });
  assert.equal(s.rejections['unjustified-proposal'], 1);
  assert.equal(s.proposals.size, 0);
  for (let i = 0; i < 5; i++) step(s, { type: 'message', now: 1, message: { type: 'prepare', height: 2n, round: 0, hash: b.hash, sender: VALIDATORS[1]!, signature: new Uint8Array(1) } });
  assert.equal(s.future.length, 3);
  assert.equal(s.rejections['future-buffer-full'], 2);
  step(s, { type: 'message', now: 1, message: { type: 'prepare', height: 9n, round: 0, hash: b.hash, sender: VALIDATORS[1]!, signature: new Uint8Array(1) } });
  assert.equal(s.rejections['future-too-far'], 1);
});

/** The state of `self` after replaying `events` (as a restarted host does), and the actions of the 'resume' at `now`. */
function replayThenResume(self: string, events: LbftEvent<TBlock>[], now: number) {
  const s = initialState<TBlock>({ validators: VALIDATORS, proposers: PROPOSERS, self, periodMs: 1000, timeoutMs: 3000, maxTimeoutMs: 60_000, futureHeights: 2, maxFutureMessages: 10, verifier });
  for (const e of events) step(s, e);
  return { s, actions: step(s, { type: 'resume', now }).actions };
}

const start1: LbftEvent<TBlock> = { type: 'start', now: 0, height: 1n, parent: { hash: GENESIS.hash, timestamp: 0 }, impeachment: mkBlock(GENESIS, { impeachment: true }) };

test('a proposer seals the block it built before a restart again, and never builds another', { timeout: 10_000 }, () => {
  const proposer = PROPOSERS[1]!; // P(1)
  const block = mkBlock(GENESIS, { tag: 'first' });
  const built = step(initialState<TBlock>({ validators: VALIDATORS, proposers: PROPOSERS, self: proposer, periodMs: 1000, timeoutMs: 3000, maxTimeoutMs: 60_000, futureHeights: 2, maxFutureMessages: 10, verifier }), start1);
  assert.ok(built.actions.some((a) => a.type === 'set-timer' && a.kind === 'propose'));
  const events: LbftEvent<TBlock>[] = [start1, { type: 'timeout', now: 1000, height: 1n, round: 0, kind: 'propose' }, { type: 'built', now: 1005, height: 1n, block }];
  // Stopped after the seal was signed, before 'sealed' was recorded: the restart asks to seal the same block.
  const { s, actions } = replayThenResume(proposer, events, 60_000);
  assert.deepEqual(actions.filter((a) => a.type === 'seal' || a.type === 'build'), [{ type: 'seal', height: 1n, block }]);
  // A second block reported for the height is ignored; the sealed one is proposed once.
  assert.deepEqual(step(s, { type: 'built', now: 60_001, height: 1n, block: mkBlock(GENESIS, { tag: 'second' }) }).actions, []);
  const proposed = step(s, { type: 'sealed', now: 60_002, height: 1n, block }).actions;
  assert.equal(proposed.length, 1);
  assert.ok(proposed[0]!.type === 'broadcast' && proposed[0]!.message.type === 'proposal' && proposed[0]!.message.block.hash === block.hash);
  assert.deepEqual(step(s, { type: 'resume', now: 60_003 }).actions.filter((a) => a.type === 'seal' || a.type === 'build'), []);
  // Stopped before anything was built: it builds, with its new clock.
  const fresh = replayThenResume(proposer, events.slice(0, 2), 60_000).actions.filter((a) => a.type === 'seal' || a.type === 'build');
  assert.deepEqual(fresh, [{ type: 'build', height: 1n, timestamp: 60_000 }]);
});

test('after a restart the round timeout runs from the restart, not from before the downtime', { timeout: 10_000 }, () => {
  const v = VALIDATORS[0]!;
  // Round 0 of height 1 began at 0 (timer at 1000 + 3000); the node was down until 60 000.
  const round0 = replayThenResume(v, [start1], 60_000).actions.filter((a) => a.type === 'set-timer');
  assert.deepEqual(round0, [{ type: 'set-timer', height: 1n, round: 0, kind: 'round', at: 63_000 }]);
  // In round 1 when it went down: round 1's timeout (3000 ms) from the restart.
  const { s } = replayThenResume(v, [start1, { type: 'timeout', now: 4000, height: 1n, round: 0, kind: 'round' }], 4001);
  assert.equal(s.round, 1);
  const round1 = step(s, { type: 'resume', now: 90_000 }).actions.filter((a) => a.type === 'set-timer');
  assert.deepEqual(round1, [{ type: 'set-timer', height: 1n, round: 1, kind: 'round', at: 93_000 }]);
  // A proposer that had not built yet gets its propose timer back (due at once: the period is long over).
  const p = replayThenResume(PROPOSERS[1]!, [start1], 60_000).actions.filter((a) => a.type === 'set-timer');
  assert.deepEqual(p, [{ type: 'set-timer', height: 1n, round: 0, kind: 'propose', at: 1000 }]);
});
