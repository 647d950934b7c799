// The named scenarios. Each draws its faults from the run's seeded stream, installs them on a fresh Sim and
// says when they heal and how many more heights every honest node must then reach (the liveness target).
// Byzantine validators stay within f; faulty proposers do not count against f (they never vote).
import { leaderOf, proposerOf, quorumOf } from '../../chain/lbft/rules.ts';
import { combine, commitWithholder, corrupt, doubleVoter, equivocatingProposer, forgingLeader, impeachmentPusher, installReplayer, invalidProposer, silentProposer } from './adversary.ts';
import { CLEAN_NET, type NetConfig } from './network.ts';
import type { Rng } from './rng.ts';
import type { SimNode } from './node.ts';
import type { Sim } from './sim.ts';

export interface Scenario {
  readonly name: string;
  readonly net: (rng: Rng) => NetConfig;
  /** Install the faults; returns when they heal (ms) and the number of heights required after that. */
  readonly install: (sim: Sim, rng: Rng) => { healAt: number; k: number };
}

const set = <T>(items: Iterable<T>): ReadonlySet<T> => new Set(items);
const jittery = (jitterMs: number): (() => NetConfig) => () => ({ ...CLEAN_NET, jitterMs });

/** Index of a random proposer node. */
const someProposer = (sim: Sim, rng: Rng) => rng.pick(sim.nodes.filter((node) => !node.isValidator));

/** Heights (from 1) whose scheduled proposer is `proposerIndex`, and the leaders of their round 1. */
function roundOneLeaders(sim: Sim, proposer: string, upTo: number): number[] {
  const out: number[] = [];
  for (let h = 1n; h <= BigInt(upTo); h++) {
    if (proposerOf({ proposers: sim.proposers }, h) !== proposer) continue;
    const i = sim.validators.indexOf(leaderOf({ validators: sim.validators }, h, 1));
    if (!out.includes(i)) out.push(i);
  }
  return out;
}

/** Crash `node` just before its host performs the first `kind` action for `height`; restart 100 ms later. */
function crashBefore(sim: Sim, node: SimNode, kind: 'validate' | 'commit', height: bigint): void {
  let done = false;
  node.hooks.push((n, a) => {
    if (done || a.type !== kind || (a.type === 'validate' ? a.height !== height || a.block.impeachment : a.type === 'commit' ? a.block.number !== height : true)) return;
    done = true;
    sim.crashNow(n, sim.now + 100);
  });
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'normal', net: () => CLEAN_NET, install: () => ({ healAt: 0, k: 8 }) },
  {
    name: 'lossy',
    net: () => ({ ...CLEAN_NET, jitterMs: 150, loss: 0.1, dup: 0.05 }),
    install(sim, rng) {
      // Execution sometimes slower than the network, so votes arrive before the block is executed.
      if (rng.chance(0.5)) sim.hostDelayMs = [1, 250];
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'partition-heal',
    net: jittery(60),
    install(sim, rng) {
      let t = rng.int(300, 3000);
      for (let i = rng.int(1, 2); i > 0; i--) {
        const order = rng.shuffle(sim.nodes.map((node) => node.index));
        const cutAt = rng.int(1, order.length - 1);
        const end = t + rng.int(1000, 6000);
        sim.net.partitions.push({ start: t, end, from: set(order.slice(0, cutAt)), to: set(order.slice(cutAt)), oneWay: false });
        t = end + rng.int(0, 1500);
      }
      return { healAt: t, k: 4 };
    },
  },
  {
    name: 'one-way-partition',
    net: jittery(60),
    install(sim, rng) {
      const cut = rng.shuffle(sim.nodes.map((node) => node.index)).slice(0, rng.int(1, sim.f + 1));
      const rest = sim.nodes.map((node) => node.index).filter((i) => !cut.includes(i));
      const start = rng.int(300, 3000);
      const end = start + rng.int(2000, 8000);
      const outgoing = rng.chance(0.5);
      sim.net.partitions.push({ start, end, from: set(outgoing ? cut : rest), to: set(outgoing ? rest : cut), oneWay: true });
      return { healAt: end, k: 4 };
    },
  },
  {
    name: 'silent-proposer',
    net: jittery(40),
    install(sim, rng) {
      corrupt(someProposer(sim, rng), silentProposer());
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'invalid-proposer',
    net: jittery(40),
    install(sim, rng) {
      corrupt(someProposer(sim, rng), invalidProposer());
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'equivocating-proposer',
    net: jittery(40),
    install(sim, rng) {
      corrupt(someProposer(sim, rng), equivocatingProposer(sim, rng.fork('equivocate')));
      // Sometimes up to f validators vote for both blocks.
      const voters = rng.chance(0.5) ? rng.shuffle(sim.validators.map((_, i) => i)).slice(0, rng.int(1, sim.f)) : [];
      for (const i of voters) corrupt(sim.nodes[i]!, doubleVoter(sim));
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'crash-restart',
    net: jittery(40),
    install(sim, rng) {
      // Crashes between two events: 1-4 of them, mostly validators, possibly overlapping.
      let healAt = 0;
      for (let i = rng.int(1, 4); i > 0; i--) {
        const node = rng.chance(0.8) ? sim.nodes[rng.int(0, sim.validators.length - 1)]! : rng.pick(sim.nodes);
        const at = rng.int(100, 6000);
        const back = at + rng.int(50, 4000);
        sim.crashAt(node, at, back);
        healAt = Math.max(healAt, back);
      }
      return { healAt, k: 4 };
    },
  },
  {
    name: 'crash-mid-step',
    net: jittery(40),
    install(sim, rng) {
      // Crashes in the middle of performing a step's actions: the WAL holds the input, the host has done
      // only the actions before the chosen one.
      let healAt = 0;
      for (let i = rng.int(1, 3); i > 0; i--) {
        const node = rng.chance(0.8) ? sim.nodes[rng.int(0, sim.validators.length - 1)]! : rng.pick(sim.nodes);
        const at = rng.int(100, 6000);
        const down = rng.int(50, 4000);
        const kind = rng.pick(['broadcast', 'send-decided', 'set-timer', 'validate', 'build', 'seal', 'sync', 'help-lagging', 'commit'] as const);
        let done = false;
        node.hooks.push((n, a) => {
          if (done || sim.now < at || a.type !== kind) return;
          done = true;
          sim.note(n.label, `crash-before:${kind}`);
          sim.crashNow(n, sim.now + down);
        });
        healAt = Math.max(healAt, at + down);
      }
      return { healAt: healAt + 3000, k: 4 };
    },
  },
  {
    name: 'proposer-restart',
    net: jittery(40),
    install(sim, rng) {
      // Proposers stopped (Ctrl-C, kill -9) right after their host signed a block's seal, before the sealed
      // block was recorded and proposed, and restarted soon after: with a new clock and a different pool,
      // each must propose the block it sealed (or stay silent), never seal another, and never stop. Now
      // and then a validator goes down too, so heights are also decided by impeachment.
      const until = 6000;
      for (const node of sim.nodes.filter((n) => !n.isValidator)) {
        node.hooks.push((n, a) => {
          if (a.type !== 'seal' || sim.now >= until || !rng.chance(0.6)) return;
          sim.note(n.label, 'crash-after:seal');
          // Queued behind the current step, so it lands after the seal is signed and before 'sealed' returns.
          sim.schedule(sim.now, () => sim.crashNow(n, sim.now + rng.int(20, 600)));
        });
      }
      if (rng.chance(0.5)) {
        const at = rng.int(100, until);
        sim.crashAt(sim.nodes[rng.int(0, sim.validators.length - 1)]!, at, at + rng.int(50, 1500));
      }
      return { healAt: until + 1500, k: 4 };
    },
  },
  {
    name: 'twins',
    net: jittery(60),
    install(sim, rng) {
      const originals = rng.shuffle(sim.validators.map((_, i) => i)).slice(0, sim.f);
      const pairs = originals.map((i) => [i, sim.addTwin(i).index] as const);
      // An equivocating proposer makes the twins sign conflicting prepares far more often.
      if (rng.chance(0.5)) corrupt(someProposer(sim, rng), equivocatingProposer(sim, rng.fork('equivocate')));
      let t = 0;
      for (let w = rng.int(1, 3); w > 0; w--) {
        const sides: number[][] = [[], []];
        for (const node of sim.nodes) if (!pairs.some(([a, b]) => node.index === a || node.index === b)) sides[rng.int(0, 1)]!.push(node.index);
        for (const [a, b] of pairs) {
          const flip = rng.int(0, 1);
          sides[flip]!.push(a);
          sides[1 - flip]!.push(b);
        }
        const end = t + rng.int(1000, 5000);
        sim.net.partitions.push({ start: t, end, from: set(sides[0]!), to: set(sides[1]!), oneWay: false });
        t = end + rng.int(0, 1000);
      }
      return { healAt: t, k: 4 };
    },
  },
  {
    name: 'replay-old-rounds',
    net: () => ({ ...CLEAN_NET, jitterMs: 60, loss: 0.02 }),
    install(sim, rng) {
      if (rng.chance(0.5)) corrupt(someProposer(sim, rng), silentProposer());
      installReplayer(sim, rng.fork('replay'), Infinity);
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'forged-justification',
    net: jittery(40),
    install(sim, rng) {
      const silent = someProposer(sim, rng);
      corrupt(silent, silentProposer());
      const leaders = roundOneLeaders(sim, silent.identity, 12).slice(0, sim.f);
      for (const i of leaders) corrupt(sim.nodes[i]!, forgingLeader(sim, rng.fork(`forge${i}`)));
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'crash-before-validate',
    net: jittery(40),
    install(sim, rng) {
      // An honest validator crashes after its engine asked to execute a proposal, before the host did; f
      // Byzantine validators prepare but withhold their commits.
      const order = rng.shuffle(sim.validators.map((_, i) => i));
      for (const i of order.slice(0, sim.f)) corrupt(sim.nodes[i]!, commitWithholder());
      crashBefore(sim, sim.nodes[order[sim.f]!]!, 'validate', BigInt(rng.int(2, 4)));
      return { healAt: 6000, k: 4 };
    },
  },
  {
    name: 'crash-before-commit',
    net: jittery(40),
    install(sim, rng) {
      // An honest validator crashes after its engine decided a height, before the host committed the block.
      crashBefore(sim, sim.nodes[rng.int(0, sim.validators.length - 1)]!, 'commit', BigInt(rng.int(2, 4)));
      return { healAt: 6000, k: 4 };
    },
  },
  {
    name: 'byzantine-mix',
    net: () => ({ ...CLEAN_NET, jitterMs: 80, loss: 0.03, dup: 0.02 }),
    install(sim, rng) {
      if (rng.chance(0.5)) sim.hostDelayMs = [1, 250];
      const proposer = someProposer(sim, rng);
      corrupt(proposer, rng.pick([silentProposer, invalidProposer, () => equivocatingProposer(sim, rng.fork('equivocate'))])());
      const order = rng.shuffle(sim.validators.map((_, i) => i));
      for (const i of order.slice(0, sim.f)) {
        corrupt(sim.nodes[i]!, rng.chance(0.5) ? combine(doubleVoter(sim), forgingLeader(sim, rng.fork(`forge${i}`))) : forgingLeader(sim, rng.fork(`forge${i}`)));
      }
      const start = rng.int(300, 4000);
      const end = start + rng.int(500, 4000);
      const cut = order.slice(sim.f, sim.f + rng.int(1, 2));
      sim.net.partitions.push({ start, end, from: set(cut), to: set(sim.nodes.map((node) => node.index).filter((i) => !cut.includes(i))), oneWay: false });
      const crashed = sim.nodes[rng.pick(order.slice(sim.f))]!;
      const at = rng.int(100, 6000);
      const back = at + rng.int(100, 3000);
      sim.crashAt(crashed, at, back);
      return { healAt: Math.max(end, back), k: 5 };
    },
  },
  {
    name: 'clock-skew',
    net: jittery(40),
    install(sim, rng) {
      for (const node of sim.nodes) node.skewMs = rng.int(-1500, 1500);
      return { healAt: 0, k: 6 };
    },
  },
  {
    name: 'cpchain-fork',
    net: jittery(20),
    install(sim, rng) {
      // n - Q victims (C) whose links are slow except to the f Byzantine D; the rest (A, B) commit with D.
      const order = rng.shuffle(sim.validators.map((_, i) => i));
      const byz = order.slice(0, sim.f).map((i) => sim.nodes[i]!);
      const victims = set(order.slice(sim.f, sim.f + sim.validators.length - quorumOf(sim.validators.length)).map((i) => sim.nodes[i]!));
      for (const d of byz) corrupt(d, impeachmentPusher(sim, victims));
      const start = rng.int(500, 2500);
      const end = start + rng.int(3000, 7000);
      const extraMs = 3000 + rng.int(0, 1500);
      const slow = set([...victims].map((v) => v.index));
      const byzIdx = set(byz.map((d) => d.index));
      sim.net.spikes.push({ start, end, extraMs, applies: (from, to) => (slow.has(from) && !byzIdx.has(to)) || (slow.has(to) && !byzIdx.has(from)) });
      return { healAt: end + extraMs, k: 4 };
    },
  },
];

export const scenarioByName = (name: string): Scenario | undefined => SCENARIOS.find((s) => s.name === name);
