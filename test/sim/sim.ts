// The simulation: virtual time, the event queue, the nodes (n validators, the proposers, any twins) and the
// network between them, the host services that cross nodes (broadcast, sync), the checkers, and the run loop
// with its liveness rule: once the scenario's faults heal, every honest node must reach k more heights
// within a bounded virtual time.
import { faultyOf } from '../../chain/lbft/rules.ts';
import { step } from '../../chain/lbft/step.ts';
import type { LbftConfig } from '../../chain/lbft/types.ts';
import type { Address } from '../../chain/types.ts';
import { Checkers, type Violation } from './checkers.ts';
import { proposerAddress, simVerifier, validatorAddress, type Timing } from './model.ts';
import { Network, type NetConfig } from './network.ts';
import { SimNode, type Reducer, type SimAction, type SimEvent, type SimMessage, type World } from './node.ts';
import { EventQueue } from './queue.ts';
import { Rng } from './rng.ts';
import { actionDetail, eventDetail, type TraceRecord } from './trace.ts';

export interface SimOptions {
  readonly n: number;
  readonly seed: string;
  readonly net: NetConfig;
  readonly proposers?: number;
  readonly timing?: Timing;
  /** Wraps or replaces the reducer of a node (tests of the checkers use broken ones). */
  readonly makeReducer?: (label: string) => Reducer;
  readonly trace?: boolean;
  /** Virtual time allowed after healing to reach the liveness target (ms). */
  readonly livenessBoundMs?: number;
  /** Stop a run that processes more queue items than this (a runaway) as a liveness failure. */
  readonly maxSteps?: number;
}

export interface RunResult {
  readonly violations: readonly Violation[];
  /** Why liveness failed, or null. */
  readonly liveness: string | null;
  readonly steps: number;
  /** Virtual time at the end (ms). */
  readonly time: number;
  /** Committed height of each node by label. */
  readonly heights: Record<string, number>;
  /** Identity (address) of each node by label; '*' marks a Byzantine node. */
  readonly nodes: Record<string, string>;
  readonly trace: TraceRecord[] | null;
  readonly stats: Readonly<Record<string, number>>;
}

export const DEFAULT_TIMING: Timing = { periodMs: 1000, timeoutMs: 1000 };
const SYNC_RETRY_MS = 300;

export class Sim implements World {
  now = 0;
  readonly rng: Rng;
  readonly checkers: Checkers;
  readonly validators: readonly Address[];
  readonly proposers: readonly Address[];
  readonly timing: Timing;
  readonly nodes: SimNode[] = [];
  readonly net: Network;
  readonly f: number;
  /** Listeners told of every message a node sends (the replay adversary records them here). */
  readonly onSend: ((from: SimNode, message: SimMessage) => void)[] = [];
  /** How long the host takes to execute or build a block (ms); scenarios may slow it down. */
  hostDelayMs: readonly [number, number] = [1, 5];
  /** Counts of what happened (impeachments by cause, rejections by reason, faults injected, ...). */
  readonly stats: Record<string, number> = {};
  private readonly queue = new EventQueue<() => void>();
  private readonly trace: TraceRecord[] | null;
  private readonly makeReducer: (label: string) => Reducer;
  private readonly maxTimeoutMs: number;

  constructor(private readonly options: SimOptions) {
    const root = new Rng(options.seed);
    this.rng = root.fork('hosts');
    this.validators = Array.from({ length: options.n }, (_, i) => validatorAddress(i));
    this.proposers = Array.from({ length: options.proposers ?? 2 }, (_, i) => proposerAddress(i));
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.maxTimeoutMs = this.timing.timeoutMs * 8;
    this.f = faultyOf(options.n);
    this.trace = options.trace === true ? [] : null;
    this.makeReducer = options.makeReducer ?? (() => step);
    this.checkers = new Checkers({ validators: this.validators, proposers: this.proposers, timing: this.timing, isHonest: (who) => this.isHonest(who) });
    this.net = new Network(options.net, options.n + this.proposers.length, root.fork('net'));
    this.validators.forEach((v, i) => this.addNode(`v${i}`, v, true));
    this.proposers.forEach((p, i) => this.addNode(`p${i}`, p, false));
  }

  private addNode(label: string, identity: Address, isValidator: boolean): SimNode {
    const config: LbftConfig = {
      validators: this.validators,
      proposers: this.proposers,
      self: identity,
      periodMs: this.timing.periodMs,
      timeoutMs: this.timing.timeoutMs,
      maxTimeoutMs: this.maxTimeoutMs,
      futureHeights: 4,
      maxFutureMessages: 1000,
      verifier: simVerifier,
    };
    const make = () => this.makeReducer(label);
    const node = new SimNode({ index: this.nodes.length, label, identity, isValidator, config, makeReducer: make }, this, make);
    this.nodes.push(node);
    return node;
  }

  /** Give validator `i` a twin: a second node with the same identity and key. Both become Byzantine. */
  addTwin(i: number): SimNode {
    const original = this.nodes[i]!;
    this.net.addNode();
    const twin = this.addNode(`${original.label}b`, original.identity, true);
    original.honest = false;
    twin.honest = false;
    return twin;
  }

  isHonest(who: Address): boolean {
    return this.nodes.every((node) => node.identity !== who || node.honest);
  }

  /** Validator identities with a Byzantine node: a scenario must keep this <= f. */
  byzantineValidators(): number {
    return this.validators.filter((v) => !this.isHonest(v)).length;
  }

  schedule(at: number, fn: () => void): void {
    this.queue.push(Math.max(this.now, Math.round(at)), fn);
  }

  private deliver(from: SimNode, to: SimNode, message: SimMessage, unfiltered = false): void {
    if (!unfiltered && from.adversary?.sendsTo?.(from, to) === false) return;
    for (const at of this.net.deliveries(from.index, to.index, this.now)) {
      this.schedule(at, () => to.input({ type: 'message', message }));
    }
  }

  /** Send `message` from `from` to one node through the network, past the sender's `sendsTo` filter. */
  sendTo(from: SimNode, to: SimNode, message: SimMessage): void {
    this.deliver(from, to, message, true);
  }

  broadcast(from: SimNode, message: SimMessage): void {
    for (const l of this.onSend) l(from, message);
    for (const to of this.nodes) if (to !== from && to.isValidator) this.deliver(from, to, message);
  }

  sendToAll(from: SimNode, message: SimMessage): void {
    for (const l of this.onSend) l(from, message);
    for (const to of this.nodes) if (to !== from) this.deliver(from, to, message);
  }

  sendToIdentity(from: SimNode, to: Address, message: SimMessage): void {
    for (const node of this.nodes) if (node !== from && node.identity === to) this.deliver(from, node, message);
  }

  sync(node: SimNode, height: bigint): void {
    if (height > node.syncTarget) node.syncTarget = height;
    this.trySync(node);
  }

  /** Fetch the blocks `node` misses from a random honest peer, retrying until it reaches its target. */
  private trySync(node: SimNode): void {
    if (!node.up || node.syncBusy || node.head().number >= node.syncTarget) return;
    node.syncBusy = true;
    const life = node.incarnation;
    const retry = () =>
      this.schedule(this.now + SYNC_RETRY_MS, () => {
        if (node.incarnation !== life) return;
        node.syncBusy = false;
        this.trySync(node);
      });
    const mine = node.head().number;
    const peers = this.nodes.filter((p) => p !== node && p.honest && p.up && p.head().number > mine);
    if (peers.length === 0) return retry();
    const peer = this.rng.pick(peers);
    if (this.net.cut(node.index, peer.index, this.now)) return retry();
    this.schedule(this.now + this.net.latency(node.index, peer.index, this.now), () => {
      if (!peer.up || this.net.cut(peer.index, node.index, this.now)) return retry();
      const from = Number(node.head().number) + 1;
      const blocks = peer.chain.slice(from);
      this.schedule(this.now + this.net.latency(peer.index, node.index, this.now), () => {
        if (node.incarnation !== life) return;
        if (blocks.length > 0) this.count('sync');
        // The driver's sync loop commits verified blocks straight into the ledger, then begins the engine.
        for (const { block, certificate } of blocks) if (certificate !== null) node.syncCommit(block, certificate);
        if (node.head().number >= node.syncTarget) {
          node.syncBusy = false;
          return node.syncDone();
        }
        retry();
      });
    });
  }

  count(what: string): void {
    this.stats[what] = (this.stats[what] ?? 0) + 1;
  }

  traceStep(node: SimNode, event: SimEvent, actions: readonly SimAction[]): void {
    this.trace?.push({ t: this.now, node: node.label, kind: event.type, detail: eventDetail(event), actions: actions.map(actionDetail) });
  }

  /** Add a free-form record to the trace (crashes, faults). */
  note(node: string, kind: string, detail: Record<string, unknown> = {}): void {
    this.count(kind);
    this.trace?.push({ t: this.now, node, kind, detail });
  }

  /** Crash `node` at `at` (between two events) and restart it at `restartAt`. */
  crashAt(node: SimNode, at: number, restartAt: number): void {
    this.schedule(at, () => this.crashNow(node, restartAt));
  }

  /** Crash `node` now, even in the middle of performing its actions, and restart it at `restartAt`. */
  crashNow(node: SimNode, restartAt: number): void {
    this.note(node.label, 'crash');
    node.crash();
    this.schedule(restartAt, () => {
      node.restart();
      this.note(node.label, 'restart', { height: node.state.height, wal: node.wal.length });
    });
  }

  honestNodes(): SimNode[] {
    return this.nodes.filter((n) => n.honest);
  }

  /** Run until the liveness target is met, a safety violation is found, or time runs out. */
  run(healAt: number, k: number): RunResult {
    const bound = this.options.livenessBoundMs ?? 60_000;
    const maxSteps = this.options.maxSteps ?? 2_000_000;
    if (this.byzantineValidators() > this.f) throw new RangeError(`scenario makes ${this.byzantineValidators()} validators Byzantine, f = ${this.f}`);
    for (const node of this.nodes) this.schedule(0, () => node.begin());
    let target: bigint | null = null;
    this.schedule(healAt, () => {
      const top = this.honestNodes().reduce((m, n) => (n.head().number > m ? n.head().number : m), 0n);
      target = top + BigInt(k);
      this.note('sim', 'healed', { target });
    });
    const deadline = healAt + bound;
    let steps = 0;
    let liveness: string | null = null;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined) {
        liveness = `stalled at ${this.now} ms: no more events`;
        break;
      }
      if (next.time > deadline) {
        liveness = `honest nodes did not reach height ${target} by ${deadline} ms`;
        break;
      }
      if (++steps > maxSteps) {
        liveness = `runaway: more than ${maxSteps} steps by ${this.now} ms`;
        break;
      }
      this.now = next.time;
      try {
        next.item();
      } catch (err) {
        this.checkers.onException(this.now, 'sim', err);
      }
      if (this.checkers.violations.length > 0) break;
      const t = target as bigint | null;
      if (t !== null && this.honestNodes().every((n) => n.head().number >= t)) break;
    }
    if (liveness !== null) {
      liveness = `${liveness}; node=committed/engine height, round (* Byzantine): ${this.describeHeights()}`;
      const behind = this.honestNodes().filter((n) => target === null || n.head().number < (target as bigint));
      const why = behind.map((n) => `${n.label}: ${this.stuckReason(n)}`);
      if (why.length > 0) liveness = `${liveness}; behind: ${why.join(', ')}`;
    }
    if (this.checkers.byzantineConflicts > 0) this.stats['byzantine-conflicts'] = this.checkers.byzantineConflicts;
    const heights = Object.fromEntries(this.nodes.map((n) => [n.label, Number(n.head().number)]));
    const nodes = Object.fromEntries(this.nodes.map((n) => [n.label, `${n.identity}${n.honest ? '' : '*'}`]));
    if (this.trace !== null) {
      for (const v of this.checkers.violations) this.note(v.node, `violation:${v.kind}`, { detail: v.detail });
      if (liveness !== null) this.note('sim', 'liveness-failure', { detail: liveness });
    }
    return { violations: this.checkers.violations, liveness: this.checkers.violations.length > 0 ? null : liveness, steps, time: this.now, heights, nodes, trace: this.trace, stats: this.stats };
  }

  /** Why an honest node may be stuck, from its host and engine state (a hint for reading the trace). */
  private stuckReason(n: SimNode): string {
    const s = n.state;
    if (!n.up) return 'down';
    if (s.decided && n.head().number < s.height) return `engine decided ${s.height} but the host never committed it`;
    const pending = [...s.validation].filter(([, v]) => v === 'pending').map(([hash]) => hash.slice(0, 10));
    if (pending.length > 0) return `validation of ${pending.join(' ')} pending at height ${s.height}`;
    return `at height ${s.height} round ${s.round}`;
  }

  private describeHeights(): string {
    return this.nodes.map((n) => `${n.label}${n.honest ? '' : '*'}=${n.head().number}/${n.state.height}r${n.state.round}`).join(' ');
  }
}
