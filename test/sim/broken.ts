// Deliberately broken reducers, wrapped around the real one, for the tests that prove each checker can fail.
// Each returns a factory the Sim calls per node (and again on restart).
import { faultyOf } from '../../chain/lbft/rules.ts';
import { step } from '../../chain/lbft/step.ts';
import type { Address } from '../../chain/types.ts';
import { makeBlock } from './model.ts';
import type { Reducer, SimAction } from './node.ts';

/**
 * The ancestor's rule: a validator that has seen f+1 ROUND-CHANGEs for a round of its height (its own
 * included) decides I(h) at once, with those round changes' signatures as its "certificate".
 */
export function ancestorImpeachment(n: number): () => Reducer {
  return () => {
    const seen = new Map<string, Set<Address>>();
    return (state, event) => {
      const out = step(state, event);
      if (event.type !== 'message' || event.message.type !== 'round-change') return out;
      const m = event.message;
      if (m.height !== state.height || state.impeachment === null) return out;
      const key = `${m.height}|${m.round}`;
      const senders = seen.get(key) ?? new Set<Address>();
      senders.add(m.sender);
      seen.set(key, senders);
      if (senders.size !== faultyOf(n) + 1) return out;
      const block = state.impeachment;
      const certificate = { height: m.height, round: m.round, blockHash: block.hash, signatures: [...senders].map((signer) => ({ signer, signature: m.signature })) };
      return { state, actions: [...out.actions, { type: 'commit', block, certificate }] };
    };
  };
}

/** An engine that also PREPAREs I(h) in every round it PREPAREs something else: a double sign. */
export function doublePrepare(): () => Reducer {
  return () => (state, event) => {
    const out = step(state, event);
    const extra: SimAction[] = [];
    for (const a of out.actions) {
      if (a.type === 'broadcast' && a.message.type === 'prepare' && state.impeachment !== null && a.message.hash !== state.impeachment.hash) {
        extra.push({ type: 'broadcast', message: { ...a.message, hash: state.impeachment.hash } });
      }
    }
    return { state, actions: [...out.actions, ...extra] };
  };
}

/** An engine whose host reports every block as valid: it votes without executing. */
export function skipExecution(): () => Reducer {
  return () => (state, event) => step(state, event.type === 'validated' ? { ...event, valid: true } : event);
}

/**
 * The engine before proposers kept their built block: after a restart it builds a new block for a height
 * whose seal it may have signed already.
 */
export function rebuildAfterRestart(): () => Reducer {
  return () => (state, event) => {
    const out = step(state, event);
    if (event.type !== 'resume') return out;
    const actions = out.actions.map((a): SimAction => {
      if (a.type !== 'seal') return a;
      state.built = null;
      return { type: 'build', height: a.height, timestamp: Math.max(event.now, state.parent.timestamp + 1) };
    });
    return { state, actions };
  };
}

/** The host before timeouts ran from a restart: the round timers armed before the downtime are already due. */
export function timeoutsFromBeforeRestart(): () => Reducer {
  return () => (state, event) => {
    const out = step(state, event);
    if (event.type !== 'resume') return out;
    return { state, actions: out.actions.map((a): SimAction => (a.type === 'set-timer' && a.kind === 'round' ? { ...a, at: event.now } : a)) };
  };
}

/** An engine that asks its host to commit its decided blocks on a parent it never had: the ledger refuses. */
export function commitOnWrongParent(): () => Reducer {
  return () => (state, event) => {
    const out = step(state, event);
    const actions = out.actions.map((a): SimAction => {
      if (a.type !== 'commit') return a;
      const { hash: _hash, ...fields } = a.block;
      return { ...a, block: makeBlock({ ...fields, parentHash: `0x${'ee'.repeat(32)}` }) };
    });
    return { state, actions };
  };
}

/** An engine that forgets a height whenever a round times out. */
export function forgetfulHeight(): () => Reducer {
  return () => (state, event) => {
    const out = step(state, event);
    if (event.type === 'timeout' && event.kind === 'round' && state.height > 1n) state.height -= 1n;
    return out;
  };
}
