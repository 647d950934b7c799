// Focused runs of the LBFT reducer with a tiny in-order network: the normal path, a silent proposer
// (impeachment block decided by all), an invalid block, and refusals of forged input.
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
