// Byzantine behaviours for simulated nodes. Each runs on top of the honest host (the node keeps running the
// real reducer) and changes what it builds or sends; a Byzantine node signs only as its own identity.
// Faulty proposers: silent, invalid blocks, equivocation. Faulty validators: a leader that forges round
// change justifications, and the impeachment pusher of the CPChain fork. Plus a network adversary that
// re-delivers recorded old messages.
import { highestPrepared, leaderOf, proposerOf, quorumOf } from '../../chain/lbft/rules.ts';
import type { Prepare, Proposal, RoundChange, Unsigned } from '../../chain/lbft/types.ts';
import { makeBlock, type SimBlock } from './model.ts';
import type { Adversary, SimMessage, SimNode } from './node.ts';
import type { Rng } from './rng.ts';
import type { Sim } from './sim.ts';

/** Mark `node` Byzantine and give it `adversary`. */
export function corrupt(node: SimNode, adversary: Adversary): void {
  node.honest = false;
  node.adversary = adversary;
}

/** Several behaviours at once: the first `act` that handles an action wins; every `observe` runs. */
export function combine(...parts: readonly Adversary[]): Adversary {
  return {
    act: (node, a) => parts.some((p) => p.act?.(node, a) === true),
    observe: (node, e) => parts.forEach((p) => p.observe?.(node, e)),
    sendsTo: (node, to) => parts.every((p) => p.sendsTo?.(node, to) !== false),
  };
}

/** A validator that PREPAREs like an honest one but never sends its COMMITs. */
export const commitWithholder = (): Adversary => ({ act: (_node, a) => a.type === 'broadcast' && a.message.type === 'commit' });

/** A proposer that never builds. */
export const silentProposer = (): Adversary => ({ act: (_node, a) => a.type === 'build' });

/** A proposer whose blocks fail execution. */
export const invalidProposer = (): Adversary => ({
  act(node, a) {
    if (a.type !== 'build') return false;
    const block = makeBlock({ number: a.height, parentHash: node.head().hash, proposer: node.identity, timestamp: a.timestamp, valid: false, impeachment: false, txs: 0 });
    node.replyLater({ type: 'built', height: a.height, block });
    return true;
  },
});

/** A proposer that sends one block to some validators and another to the rest for the same (h, 0). */
export function equivocatingProposer(sim: Sim, rng: Rng): Adversary {
  return {
    act(node, a) {
      if (a.type !== 'broadcast' || a.message.type !== 'proposal' || a.message.round !== 0) return false;
      const p = a.message;
      const { hash: _hash, ...fields } = p.block;
      const alt = makeBlock({ ...fields, timestamp: fields.timestamp + rng.int(1, 50) });
      const first = node.signUnguarded(p);
      const second = node.signUnguarded({ ...p, block: alt });
      const validators = rng.shuffle(sim.nodes.filter((v) => v.isValidator));
      const half = rng.int(1, validators.length - 1);
      validators.forEach((v, i) => {
        sim.sendTo(node, v, i < half ? first : second);
        if (rng.chance(0.2)) sim.sendTo(node, v, i < half ? second : first);
      });
      node.input({ type: 'message', message: first });
      return true;
    },
  };
}

/**
 * A validator that votes for everything: it PREPAREs and COMMITs every proposal it sees for its height, in
 * the proposal's round, so an equivocating proposer's blocks can each gather its vote.
 */
export function doubleVoter(sim: Sim): Adversary {
  const voted = new Set<string>();
  return {
    observe(node, e) {
      if (e.type !== 'message' || e.message.type !== 'proposal' || e.message.height !== node.state.height) return;
      const { height, round, block } = e.message;
      const key = `${height}|${round}|${block.hash}`;
      if (voted.has(key)) return;
      voted.add(key);
      sim.count('double-vote');
      sim.broadcast(node, node.signUnguarded({ type: 'prepare', height, round, hash: block.hash }));
      sim.broadcast(node, node.signUnguarded({ type: 'commit', height, round, hash: block.hash }));
    },
  };
}

const FORGERIES = ['below-quorum', 'counted-twice', 'forged-signatures', 'empty', 'forged-prepares', 'few-prepares', 'wrong-value', 'selective'] as const;

/**
 * A validator that, as leader of a round >= 1, proposes an arbitrary valid block with a justification that
 * must fail: too few round changes, one counted twice, forged signatures, none at all, a prepared certificate
 * with forged or too few prepares, or a real quorum that does not justify the value. Sometimes it forges
 * early (on the first round change it sees), and usually replaces its engine's honest proposal.
 */
export function forgingLeader(sim: Sim, rng: Rng): Adversary {
  const early = new Set<string>();
  const q = quorumOf(sim.validators.length);
  const garbage = (): Uint8Array => Uint8Array.from({ length: 32 }, () => rng.int(0, 255));
  const forge = (node: SimNode, height: bigint, round: number, real: readonly RoundChange<SimBlock>[], kinds: readonly (typeof FORGERIES)[number][]) => {
    const s = node.state;
    const block = makeBlock({
      number: height,
      parentHash: s.parent.hash,
      proposer: proposerOf(s.config, height),
      timestamp: s.parent.timestamp + sim.timing.periodMs + rng.int(1, 700),
      valid: true,
      impeachment: false,
      txs: rng.int(0, 50),
    });
    sim.checkers.forged.add(block.hash);
    const own = node.signUnguarded({ type: 'round-change', height, round, prepared: null }) as RoundChange<SimBlock>;
    const others = real.filter((rc) => rc.sender !== node.identity);
    const fake = (sender: string): RoundChange<SimBlock> => ({ type: 'round-change', height, round, prepared: null, sender, signature: garbage() });
    const fill = (base: RoundChange<SimBlock>[]): RoundChange<SimBlock>[] => {
      const out = [...base];
      for (const v of sim.validators) if (out.length < q && !out.some((rc) => rc.sender === v)) out.push(fake(v));
      return out;
    };
    const preparedWith = (prepares: Prepare[]): RoundChange<SimBlock> =>
      node.signUnguarded({ type: 'round-change', height, round, prepared: { round: round - 1, block, prepares } }) as RoundChange<SimBlock>;
    const ownPrepare = node.signUnguarded({ type: 'prepare', height, round: round - 1, hash: block.hash }) as Prepare;
    const kind = rng.pick(kinds);
    let justification: RoundChange<SimBlock>[];
    switch (kind) {
      case 'below-quorum':
        justification = [own, ...others].slice(0, q - 1);
        break;
      case 'counted-twice':
        justification = [own, ...others.slice(0, q - 2)];
        while (justification.length < q) justification.push(own);
        break;
      case 'forged-signatures':
        justification = fill([own, ...others.slice(0, rng.int(0, q - 2))]);
        break;
      case 'empty':
        justification = [];
        break;
      case 'forged-prepares': {
        const prepares = [ownPrepare, ...sim.validators.filter((v) => v !== node.identity).slice(0, q - 1).map((v): Prepare => ({ type: 'prepare', height, round: round - 1, hash: block.hash, sender: v, signature: garbage() }))];
        justification = fill([preparedWith(prepares), ...others.slice(0, q - 1)]);
        break;
      }
      case 'few-prepares':
        justification = fill([preparedWith([ownPrepare]), ...others.slice(0, q - 1)]);
        break;
      case 'wrong-value':
        justification = real.length >= q ? [...real] : fill([own, ...others]);
        break;
      case 'selective': {
        // A correctly justified proposal built from the quorum that hides the most prepared certificates:
        // quorum intersection must still force the value any honest node may have committed.
        const all = [...(s.roundChanges.get(round)?.values() ?? real)];
        if (all.length < q) return forge(node, height, round, real, ['below-quorum']);
        justification = all.sort((a, b) => (a.prepared?.round ?? -1) - (b.prepared?.round ?? -1)).slice(0, q);
        const best = highestPrepared(justification);
        const value = best === null ? s.impeachment! : best.block;
        sim.note(node.label, 'forge:selective', { h: height, r: round, block: value.hash.slice(0, 10), prepared: best?.round ?? null });
        node.publish(node.signUnguarded({ type: 'proposal', height, round, block: value, justification }));
        return;
      }
    }
    const proposal: Unsigned<Proposal<SimBlock>> = { type: 'proposal', height, round, block, justification };
    sim.note(node.label, `forge:${kind}`, { h: height, r: round, block: block.hash.slice(0, 10), just: justification.length });
    node.publish(node.signUnguarded(proposal));
    // Votes for the forged block spoofed in others' names, and a decided message with a forged certificate.
    const spoofed = sim.validators.filter((v) => v !== node.identity).slice(0, q - 1);
    const signatures = [
      { signer: node.identity, signature: node.signUnguarded({ type: 'commit', height, round, hash: block.hash }).signature },
      ...spoofed.map((signer) => ({ signer, signature: garbage() })),
    ];
    for (const signer of spoofed) sim.broadcast(node, { type: 'commit', height, round, hash: block.hash, sender: signer, signature: garbage() });
    sim.sendToAll(node, { type: 'decided', height, block, certificate: { height, round, blockHash: block.hash, signatures } });
  };
  return {
    observe(node, e) {
      if (e.type !== 'message' || e.message.type !== 'round-change') return;
      const { height, round } = e.message;
      const key = `${height}|${round}`;
      if (height !== node.state.height || early.has(key) || leaderOf(node.config, height, round) !== node.identity) return;
      early.add(key);
      if (!rng.chance(0.6)) return;
      forge(node, height, round, [...(node.state.roundChanges.get(round)?.values() ?? [])], ['below-quorum', 'counted-twice', 'forged-signatures', 'empty']);
    },
    act(node, a) {
      if (a.type !== 'broadcast' || a.message.type !== 'proposal' || a.message.round < 1 || rng.chance(0.2)) return false;
      forge(node, a.message.height, a.message.round, a.message.justification, FORGERIES);
      return true;
    },
  };
}

/**
 * The Byzantine D of the CPChain fork: withholds its own messages from `victims` (whose other links the
 * scenario delays) and pushes them to impeach: its ROUND-CHANGE, PREPARE and COMMIT for I(h), and as leader
 * a proposal of I(h) justified only by the victims' round changes and its own (f+1, below the quorum).
 */
export function impeachmentPusher(sim: Sim, victims: ReadonlySet<SimNode>): Adversary {
  const pushed = new Set<string>();
  const victimRcs = new Map<string, RoundChange<SimBlock>[]>();
  const push = (node: SimNode, height: bigint, round: number) => {
    const key = `${height}|${round}`;
    const parent = node.chain[Number(height) - 1]?.block;
    if (pushed.has(key) || parent === undefined) return;
    pushed.add(key);
    const imp = node.impeachmentAfter(parent);
    const rc = node.signUnguarded({ type: 'round-change', height, round, prepared: null }) as RoundChange<SimBlock>;
    const msgs: SimMessage[] = [rc, node.signUnguarded({ type: 'prepare', height, round, hash: imp.hash }), node.signUnguarded({ type: 'commit', height, round, hash: imp.hash })];
    if (leaderOf(node.config, height, round) === node.identity) {
      msgs.push(node.signUnguarded({ type: 'proposal', height, round, block: imp, justification: [...(victimRcs.get(key) ?? []), rc] }));
    }
    sim.note(node.label, 'push-impeachment', { h: height, r: round, leader: msgs.length === 4 });
    for (const v of victims) for (const m of msgs) sim.sendTo(node, v, m);
  };
  return {
    sendsTo: (_node, to) => !victims.has(to),
    observe(node, e) {
      if (e.type === 'start' && e.height > 1n) push(node, e.height - 1n, 1);
      if (e.type !== 'message' || e.message.type !== 'round-change') return;
      const m = e.message;
      if (![...victims].some((v) => v.identity === m.sender)) return;
      sim.count('victim-round-change');
      const key = `${m.height}|${m.round}`;
      const list = victimRcs.get(key) ?? [];
      if (!list.some((rc) => rc.sender === m.sender)) list.push(m);
      victimRcs.set(key, list);
      pushed.delete(key);
      push(node, m.height, m.round);
    },
  };
}

/** A network adversary: records every message sent and re-delivers random old ones to random nodes until `until`. */
export function installReplayer(sim: Sim, rng: Rng, until: number): void {
  const seen: SimMessage[] = [];
  sim.onSend.push((_from, m) => {
    if (seen.length < 4000) seen.push(m);
    else seen[rng.int(0, seen.length - 1)] = m;
  });
  const tick = (): void => {
    if (sim.now >= until) return;
    const count = seen.length === 0 ? 0 : rng.int(1, 4);
    for (let i = 0; i < count; i++) {
      const m = rng.pick(seen);
      const to = rng.pick(sim.nodes);
      sim.count('replay');
      sim.schedule(sim.now + rng.int(0, 50), () => to.input({ type: 'message', message: m }));
    }
    sim.schedule(sim.now + rng.int(20, 200), tick);
  };
  sim.schedule(rng.int(0, 200), tick);
}
