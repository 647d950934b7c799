// One simulated node: the real LBFT reducer plus a host that performs its actions in the simulated world,
// as the driver (chain/lbft/driver.ts) does. The host writes every input to the WAL before the reducer sees
// it, signs votes and block seals through a double-sign guard whose record survives crashes (a refusal
// leaves the node silent, as in the driver), keeps the committed chain (the node's block store, which also
// survives), and after a crash rebuilds the engine by replaying the WAL through the same reducer without
// carrying out any of the replay's actions, timers included. A proposer builds from a pool that differs
// after every restart. Where the driver would stop on an error, the node stops and the run fails.
import type { CommitCertificate } from '../../chain/certificate.ts';
import { signingPayload } from '../../chain/lbft/rules.ts';
import { initialState, type LbftState } from '../../chain/lbft/state.ts';
import type { LbftAction, LbftConfig, LbftEvent, Message, SignedMessage, Unsigned } from '../../chain/lbft/types.ts';
import type { GuardPayload } from './checkers.ts';
import type { Address } from '../../chain/types.ts';
import type { Checkers } from './checkers.ts';
import { GENESIS, blockProblem, hex, impeachmentOf, makeBlock, signAs, type SimBlock, type Timing } from './model.ts';
import type { Rng } from './rng.ts';

export type SimEvent = LbftEvent<SimBlock>;
export type SimAction = LbftAction<SimBlock>;
export type SimMessage = Message<SimBlock>;
/** An event before the host stamps it with its clock. */
export type EventBody = SimEvent extends infer E ? (E extends unknown ? Omit<E, 'now'> : never) : never;
export type Reducer = (state: LbftState<SimBlock>, event: SimEvent) => { state: LbftState<SimBlock>; actions: SimAction[] };

/** What a node needs from the simulation around it. */
export interface World {
  readonly now: number;
  readonly rng: Rng;
  readonly checkers: Checkers;
  readonly proposers: readonly Address[];
  readonly timing: Timing;
  /** Range (ms) of the delay before the host answers a validate or build request. */
  readonly hostDelayMs: readonly [number, number];
  /** Run `fn` at virtual time `at` (clamped to now). */
  schedule(at: number, fn: () => void): void;
  /** Send `message` from `from` to every validator node but `from` itself. */
  broadcast(from: SimNode, message: SimMessage): void;
  /** Send `message` from `from` to every other node. */
  sendToAll(from: SimNode, message: SimMessage): void;
  /** Send `message` from `from` to every node holding identity `to`. */
  sendToIdentity(from: SimNode, to: Address, message: SimMessage): void;
  /** Fetch committed blocks up to `height` for `node` from an honest peer. */
  sync(node: SimNode, height: bigint): void;
  /** Count one occurrence of `what` in the run's statistics. */
  count(what: string): void;
  /** Record a processed event and its actions in the trace (when tracing). */
  traceStep(node: SimNode, event: SimEvent, actions: readonly SimAction[]): void;
}

/** Byzantine behaviour: hooks that replace or extend the honest host. */
export interface Adversary {
  /** Handle `action` instead of the honest host; return true when handled. */
  act?(node: SimNode, action: SimAction): boolean;
  /** See every event after the engine processed it. */
  observe?(node: SimNode, event: SimEvent): void;
  /** False keeps this node's messages from `to`. */
  sendsTo?(node: SimNode, to: SimNode): boolean;
}

export interface NodeSpec {
  readonly index: number;
  readonly label: string;
  readonly identity: Address;
  readonly isValidator: boolean;
  readonly config: LbftConfig;
  readonly makeReducer: () => Reducer;
}

export class SimNode {
  readonly index: number;
  readonly label: string;
  readonly identity: Address;
  readonly isValidator: boolean;
  readonly config: LbftConfig;
  honest = true;
  skewMs = 0;
  adversary: Adversary | null = null;
  /** Fault injection: told of every action before it is performed (the node stays honest). */
  readonly hooks: ((node: SimNode, action: SimAction) => void)[] = [];
  up = true;
  /** The driver would have stopped (an error it cannot recover from): the node never runs again. */
  stopped = false;
  /** Bumped on every crash: timers and replies of an earlier life are dropped. */
  incarnation = 0;
  /** Local clock reading when this node last restarted (-Infinity before any crash). */
  restartedAt = -Infinity;
  state: LbftState<SimBlock>;
  /** Every input, in order: survives a crash. */
  readonly wal: SimEvent[] = [];
  /** The double-sign guard's record (purpose|height|round -> hash): survives a crash. */
  readonly signed = new Map<string, string>();
  /** Committed chain from genesis, with certificates: survives a crash. */
  readonly chain: { block: SimBlock; certificate: CommitCertificate | null }[] = [{ block: GENESIS, certificate: null }];
  syncTarget = 0n;
  syncBusy = false;
  private reducer: Reducer;
  private readonly inbox: EventBody[] = [];
  private draining = false;

  constructor(
    spec: NodeSpec,
    private readonly world: World,
    private readonly makeReducer: () => Reducer,
  ) {
    this.index = spec.index;
    this.label = spec.label;
    this.identity = spec.identity;
    this.isValidator = spec.isValidator;
    this.config = spec.config;
    this.reducer = makeReducer();
    this.state = initialState<SimBlock>(this.config);
  }

  /** The node's local clock: virtual time plus its skew. */
  clock(): number {
    return this.world.now + this.skewMs;
  }

  head(): SimBlock {
    return this.chain[this.chain.length - 1]!.block;
  }

  /** Feed an input to the engine (queued behind the one being processed, if any). */
  input(body: EventBody): void {
    if (!this.up) return;
    this.inbox.push(body);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.inbox.shift(); next !== undefined && this.up; next = this.inbox.shift()) this.process(next);
    } finally {
      this.draining = false;
      this.inbox.length = 0;
    }
  }

  /** Begin height 1 on genesis. */
  begin(): void {
    this.input({ type: 'start', height: 1n, parent: { hash: GENESIS.hash, timestamp: GENESIS.timestamp }, impeachment: this.impeachmentAfter(GENESIS) });
  }

  impeachmentAfter(parent: SimBlock): SimBlock {
    return impeachmentOf(parent, this.world.proposers, this.world.timing);
  }

  private process(body: EventBody): void {
    const event = { ...body, now: this.clock() } as SimEvent;
    this.wal.push(event);
    const before = this.state.height;
    let out: ReturnType<Reducer>;
    try {
      out = this.reducer(this.state, event);
    } catch (err) {
      this.world.checkers.onException(this.world.now, this.label, err);
      return;
    }
    const { state, actions } = out;
    this.state = state;
    this.world.checkers.onEngineHeight(this.world.now, this.label, before, state.height);
    this.world.traceStep(this, event, actions);
    this.adversary?.observe?.(this, event);
    if (this.honest && event.type === 'timeout' && actions.some((a) => a.type === 'impeach') && this.clock() - this.restartedAt < this.config.timeoutMs) {
      this.world.checkers.onEarlyImpeachment(this.world.now, this.label, event.height, this.clock() - this.restartedAt);
    }
    for (const action of actions) {
      for (const hook of this.hooks) hook(this, action);
      if (!this.up) return;
      try {
        if (this.adversary?.act?.(this, action) !== true) this.perform(action);
      } catch (err) {
        return this.stop(err);
      }
    }
  }

  /** The driver stops on an error it cannot recover from (onFatal): so does this node, failing the run. */
  private stop(err: unknown): void {
    this.up = false;
    this.stopped = true;
    this.incarnation++;
    this.world.checkers.onStopped(this.world.now, this.label, err);
  }

  private perform(a: SimAction): void {
    const w = this.world;
    // As the driver: nothing to execute, build or seal for a height a sync already committed.
    if ((a.type === 'validate' || a.type === 'build' || a.type === 'seal') && a.height <= this.head().number) return;
    switch (a.type) {
      case 'broadcast': {
        const signed = this.sign(a.message);
        if (signed !== null) this.publish(signed);
        return;
      }
      case 'send-decided':
        return w.sendToAll(this, a.message);
      case 'help-lagging': {
        w.count('help-lagging');
        const entry = this.chain[Number(a.height)];
        if (entry?.certificate != null) w.sendToIdentity(this, a.to, { type: 'decided', height: a.height, block: entry.block, certificate: entry.certificate });
        return;
      }
      case 'sync':
        return w.sync(this, a.height);
      case 'set-timer':
        return this.arm(a);
      case 'validate': {
        const valid = blockProblem(a.block, this.head(), w.proposers, w.timing) === null;
        return this.replyLater({ type: 'validated', height: a.height, hash: a.block.hash, valid });
      }
      case 'build': {
        if (!w.proposers.includes(this.identity)) throw new Error(`${this.label} is asked to build but is no proposer`);
        const head = this.head();
        const block = makeBlock({ number: a.height, parentHash: head.hash, proposer: this.identity, timestamp: a.timestamp, valid: true, impeachment: false, txs: w.rng.int(0, 1000) });
        w.checkers.built.add(block.hash);
        return this.replyLater({ type: 'built', height: a.height, block });
      }
      case 'seal': {
        // The driver signs the block's seal through the guard before it proposes it.
        const ok = this.guarded({ purpose: 'seal', height: a.height, round: 0, hash: Buffer.from(a.block.hash.slice(2), 'hex') });
        if (ok) this.replyLater({ type: 'sealed', height: a.height, block: a.block });
        return;
      }
      case 'commit':
        return this.commit(a.block, a.certificate);
      case 'impeach':
        return w.count(`impeach:${a.cause}`);
      case 'reject':
        return w.count(`reject:${a.reason}`);
    }
  }

  private commit(block: SimBlock, certificate: CommitCertificate): void {
    const parent = this.head();
    // Already in the chain (the driver: a sync got there first): just begin the height after the head.
    if (block.number <= parent.number) return this.beginAfter(parent);
    this.world.checkers.onCommit(this.world.now, this.label, this.honest, block, parent, certificate);
    // The ledger refuses a block that does not extend its head, and the driver stops on that.
    if (block.number !== parent.number + 1n || block.parentHash !== parent.hash) throw new Error(`commit of block ${block.number} on head ${parent.number} does not extend it`);
    this.chain.push({ block, certificate });
    if (certificate.round > 0) this.world.count(block.impeachment ? 'commit:I(h)' : 'commit:round>0');
    this.beginAfter(block);
  }

  /** A block a sync fetched: committed straight into the chain, as the driver's sync loop does (no engine input). */
  syncCommit(block: SimBlock, certificate: CommitCertificate): void {
    const parent = this.head();
    if (block.number !== parent.number + 1n || block.parentHash !== parent.hash) return;
    this.world.checkers.onCommit(this.world.now, this.label, this.honest, block, parent, certificate);
    this.chain.push({ block, certificate });
  }

  /** The sync loop ended: the engine begins the height after the head unless it is there already. */
  syncDone(): void {
    const head = this.head();
    if (this.up && this.state.height <= head.number) this.input({ type: 'start', height: head.number + 1n, parent: { hash: head.hash, timestamp: head.timestamp }, impeachment: this.impeachmentAfter(head) });
  }

  private beginAfter(head: SimBlock): void {
    this.inbox.push({ type: 'start', height: head.number + 1n, parent: { hash: head.hash, timestamp: head.timestamp }, impeachment: this.impeachmentAfter(head) });
  }

  /** Deliver `body` to this node a few ms from now, unless it crashes meanwhile. */
  replyLater(body: EventBody): void {
    const life = this.incarnation;
    const [lo, hi] = this.world.hostDelayMs;
    this.world.schedule(this.world.now + this.world.rng.int(lo, hi), () => {
      if (this.incarnation === life) this.input(body);
    });
  }

  private arm(a: Extract<SimAction, { type: 'set-timer' }>): void {
    const life = this.incarnation;
    this.world.schedule(a.at - this.skewMs, () => {
      if (this.incarnation === life) this.input({ type: 'timeout', height: a.height, round: a.round, kind: a.kind });
    });
  }

  /** Sign through the double-sign guard: null (and, for an honest node, a checker failure) on a conflict. */
  sign(message: Unsigned<SignedMessage<SimBlock>>): SignedMessage<SimBlock> | null {
    return this.guarded(signingPayload(message)) ? this.signUnguarded(message) : null;
  }

  /**
   * The double-sign guard: true when `payload` may be signed (first time at its point, or the same hash
   * again). A refusal is logged by the driver, which stays silent; for an honest node it is a checker
   * failure, since only an engine or host bug asks for a conflicting signature.
   */
  private guarded(payload: GuardPayload): boolean {
    const key = `${payload.purpose}|${payload.height}|${payload.round}`;
    const hash = hex(payload.hash);
    const prior = this.signed.get(key);
    if (prior !== undefined && prior !== hash) {
      if (this.honest) this.world.checkers.onRefusedSign(this.world.now, this.label, this.identity, payload, prior);
      return false;
    }
    this.signed.set(key, hash);
    if (payload.purpose === 'seal') this.world.checkers.onSign(this.world.now, this.label, this.identity, payload);
    return true;
  }

  /** Sign as this node's identity without the guard (Byzantine behaviour); still seen by the checkers. */
  signUnguarded(message: Unsigned<SignedMessage<SimBlock>>): SignedMessage<SimBlock> {
    const payload = signingPayload(message);
    this.world.checkers.onSign(this.world.now, this.label, this.identity, payload);
    return { ...message, sender: this.identity, signature: signAs(this.identity, payload) } as SignedMessage<SimBlock>;
  }

  /** Send a signed message to every validator and process it locally. */
  publish(message: SignedMessage<SimBlock>): void {
    this.world.broadcast(this, message);
    this.input({ type: 'message', message });
  }

  /** Lose everything but the WAL, the signer record and the block store. */
  crash(): void {
    this.up = false;
    this.incarnation++;
    this.syncTarget = 0n;
    this.syncBusy = false;
  }

  /** Restart: a fresh engine rebuilt by replaying the WAL, none of whose actions are carried out again. */
  restart(): void {
    if (this.up || this.stopped) return;
    const before = this.state.height;
    this.reducer = this.makeReducer();
    let state = initialState<SimBlock>(this.config);
    for (const event of this.wal) state = this.reducer(state, event).state;
    this.state = state;
    this.up = true;
    this.restartedAt = this.clock();
    this.world.checkers.onEngineHeight(this.world.now, this.label, before, state.height);
    // The engine re-issues what it still owes, and arms its timers from now.
    this.input({ type: 'resume' });
  }
}
