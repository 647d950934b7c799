// Subscriptions behind eth_subscribe: the hub the ledger publishes new heads and logs into, the log filter
// (parsed once, matched per log, shared with eth_getLogs), and nothing about sockets: the server registers one
// sink per WebSocket connection and the hub only calls it. Ids are 16 random bytes as 0x hex, like geth's.

import { randomBytes } from 'node:crypto';
import { nopLogger, type Logger } from '../logger.ts';
import { invalidParams, limitExceeded } from './errors.ts';

/** An Ethereum log as eth_getLogs and logs subscriptions return it: every field already JSON-ready. */
export interface JsonLog {
  address: string;
  topics: string[];
  data: string;
  blockNumber: string;
  transactionHash: string;
  transactionIndex: string;
  blockHash: string;
  logIndex: string;
  removed: boolean;
}

/**
 * Which logs a client wants: `address` one or any of several (case-insensitive); `topics[i]` constrains the
 * log's i-th topic: null or [] = anything, a hash = that hash, an array = any of them. A log with fewer topics
 * than the filter lists does not match (geth semantics).
 */
export interface LogFilter {
  address?: string | string[] | null;
  topics?: (string | string[] | null)[] | null;
}

export type SubscriptionKind = 'newHeads' | 'logs';

/**
 * Receives every notification of the subscriptions one owner (connection) holds. `resultJson` is the result as
 * JSON text, serialised once per publish and shared by every subscriber. Must not throw.
 */
export type SubscriptionSink = (subscriptionId: string, resultJson: string) => void;

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const TOPIC_RE = /^0x[0-9a-fA-F]{64}$/;
/** Ethereum logs carry at most four topics; geth refuses longer topic filters. */
const MAX_TOPICS = 4;

/**
 * How large one filter may be: each address and topic alternative costs a bloom probe per block scanned and a
 * comparison per log, so an unbounded list lets one request stall the node. Defaults are geth's (1000 each).
 */
export interface LogFilterLimits {
  readonly maxAddresses: number;
  readonly maxAlternatives: number;
}

export const DEFAULT_LOG_FILTER_LIMITS: LogFilterLimits = { maxAddresses: 1000, maxAlternatives: 1000 };

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/**
 * True when `log` passes `filter`. Takes filters as clients send them (mixed case hex, a single string or an
 * array); for hot paths pass the result of parseLogFilter, whose hex is already lowercase.
 */
export function matchesLogFilter(log: Pick<JsonLog, 'address' | 'topics'>, filter: LogFilter): boolean {
  const address = filter.address;
  if (typeof address === 'string') {
    if (!sameHex(log.address, address)) return false;
  } else if (Array.isArray(address) && address.length > 0) {
    if (!address.some((a) => sameHex(log.address, a))) return false;
  }
  const topics = filter.topics ?? [];
  if (topics.length > log.topics.length) return false;
  for (let i = 0; i < topics.length; i++) {
    const want = topics[i];
    const have = log.topics[i];
    if (want === null || want === undefined || have === undefined) continue;
    if (typeof want === 'string') {
      if (!sameHex(have, want)) return false;
    } else if (want.length > 0 && !want.some((t) => sameHex(have, t))) {
      return false;
    }
  }
  return true;
}

function parseHexList(value: unknown, re: RegExp, what: string, where: string, max: number): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > max) throw limitExceeded(`${where}: ${list.length} entries, the limit is ${max}; split the filter into several queries`);
  return list.map((item, i) => {
    if (typeof item !== 'string' || !re.test(item)) {
      const at = Array.isArray(value) ? `${where}[${i}]` : where;
      throw invalidParams(`${at}: expected a 0x-prefixed ${what}`);
    }
    return item.toLowerCase();
  });
}

/**
 * Validate a client's filter object (`where` names it in errors, e.g. "params[1]") and return it with hex
 * lowercased, addresses always as an array and `null` for "any". Other members (fromBlock, toBlock, blockHash)
 * are ignored here: eth_getLogs handles ranges itself. Throws RpcError -32602 naming the bad member, -32005
 * when a list is longer than `limits` allow.
 */
export function parseLogFilter(raw: unknown, where = 'filter', limits = DEFAULT_LOG_FILTER_LIMITS): LogFilter {
  if (raw === undefined || raw === null) return { address: null, topics: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidParams(`${where}: expected a filter object`);
  const obj = raw as Record<string, unknown>;
  const rawAddress = obj['address'];
  const address =
    rawAddress === undefined || rawAddress === null
      ? null
      : parseHexList(rawAddress, ADDRESS_RE, '20-byte address', `${where}.address`, limits.maxAddresses);
  const rawTopics = obj['topics'];
  let topics: (string | string[] | null)[] | null = null;
  if (rawTopics !== undefined && rawTopics !== null) {
    if (!Array.isArray(rawTopics)) throw invalidParams(`${where}.topics: expected an array`);
    if (rawTopics.length > MAX_TOPICS) throw invalidParams(`${where}.topics: at most ${MAX_TOPICS} positions`);
    topics = rawTopics.map((t: unknown, i) => {
      if (t === null) return null;
      const at = `${where}.topics[${i}]`;
      const hashes = parseHexList(t, TOPIC_RE, '32-byte topic', at, limits.maxAlternatives);
      return Array.isArray(t) ? hashes : (hashes[0] ?? null);
    });
  }
  return { address, topics };
}

/** A parsed eth_subscribe request. */
export type SubscribeRequest = { kind: 'newHeads' } | { kind: 'logs'; filter: LogFilter };

/** Validate eth_subscribe params: ['newHeads'] or ['logs', filter?]. Throws RpcError -32602. */
export function parseSubscribeParams(params: readonly unknown[]): SubscribeRequest {
  const kind = params[0];
  if (kind === 'newHeads') {
    if (params.length > 1) throw invalidParams('newHeads takes no further params');
    return { kind };
  }
  if (kind === 'logs') {
    if (params.length > 2) throw invalidParams('logs takes one optional filter object');
    return { kind, filter: parseLogFilter(params[1], 'params[1]') };
  }
  const shown = typeof kind === 'string' ? `"${kind.slice(0, 64)}"` : typeof kind;
  throw invalidParams(`params[0]: unsupported subscription ${shown}; supported: newHeads, logs`);
}

interface Subscription {
  readonly id: string;
  readonly owner: string;
  readonly kind: SubscriptionKind;
  readonly filter: LogFilter | null;
  readonly sink: SubscriptionSink;
}

export interface SubscriptionHubOptions {
  /** Most subscriptions one owner may hold; more get -32005. Bounds memory per connection. Default 1024. */
  maxPerOwner?: number;
  logger?: Logger;
  /** Id source, injectable for tests; default 16 random bytes as 0x hex. */
  newId?: () => string;
}

/**
 * Fans newHeads and logs out to subscribers. The ledger calls publishNewHead / publishLogs once per imported
 * block (headers and logs already JSON-ready); the RPC server adds and removes subscriptions per connection.
 * Publishing is synchronous and cheap when nobody listens.
 */
export class SubscriptionHub {
  private readonly subs = new Map<string, Subscription>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly maxPerOwner: number;
  private readonly logger: Logger;
  private readonly newId: () => string;

  constructor(options: SubscriptionHubOptions = {}) {
    this.maxPerOwner = options.maxPerOwner ?? 1024;
    this.logger = options.logger ?? nopLogger;
    this.newId = options.newId ?? (() => `0x${randomBytes(16).toString('hex')}`);
  }

  /** Number of live subscriptions (all owners). */
  get size(): number {
    return this.subs.size;
  }

  /** Send `header` (a JSON-ready block header object) to every newHeads subscriber. */
  publishNewHead(header: unknown): void {
    const json = this.serialiser();
    for (const sub of this.subs.values()) {
      if (sub.kind === 'newHeads') this.deliver(sub, json(header));
    }
  }

  /** Send each log to every logs subscriber whose filter it matches, one notification per log, in order. */
  publishLogs(logs: readonly JsonLog[]): void {
    if (logs.length === 0) return;
    const json = this.serialiser();
    for (const sub of this.subs.values()) {
      if (sub.kind !== 'logs') continue;
      for (const log of logs) {
        if (sub.filter === null || matchesLogFilter(log, sub.filter)) this.deliver(sub, json(log));
      }
    }
  }

  /**
   * JSON text of each value, made on first use and reused for every further subscriber of this publish: a
   * thousand subscribers cost one JSON.stringify, not a thousand. null when the value cannot be serialised.
   */
  private serialiser(): (value: unknown) => string | null {
    const texts = new Map<unknown, string | null>();
    return (value) => {
      let text = texts.get(value);
      if (text === undefined) {
        try {
          text = JSON.stringify(value) ?? 'null';
        } catch (err) {
          this.logger.error('subscription payload not serializable', { error: String(err) });
          text = null;
        }
        texts.set(value, text);
      }
      return text;
    };
  }

  /**
   * Register a subscription for `owner` (the server's connection id) and return its id. Throws RpcError -32005
   * when the owner already holds maxPerOwner subscriptions.
   */
  subscribe(owner: string, request: SubscribeRequest, sink: SubscriptionSink): string {
    let owned = this.byOwner.get(owner);
    if (owned !== undefined && owned.size >= this.maxPerOwner) {
      throw limitExceeded(`subscription limit reached: at most ${this.maxPerOwner} per connection`);
    }
    let id = this.newId();
    while (this.subs.has(id)) id = this.newId();
    const filter = request.kind === 'logs' ? request.filter : null;
    this.subs.set(id, { id, owner, kind: request.kind, filter, sink });
    if (owned === undefined) {
      owned = new Set();
      this.byOwner.set(owner, owned);
    }
    owned.add(id);
    return id;
  }

  /** Remove subscription `id` if `owner` holds it; false when unknown or another connection's. */
  unsubscribe(owner: string, id: string): boolean {
    const sub = this.subs.get(id);
    if (sub === undefined || sub.owner !== owner) return false;
    this.subs.delete(id);
    const owned = this.byOwner.get(owner);
    owned?.delete(id);
    if (owned?.size === 0) this.byOwner.delete(owner);
    return true;
  }

  /** Remove every subscription of `owner` (its connection closed); returns how many there were. */
  dropOwner(owner: string): number {
    const owned = this.byOwner.get(owner);
    if (owned === undefined) return 0;
    for (const id of owned) this.subs.delete(id);
    this.byOwner.delete(owner);
    return owned.size;
  }

  /** Number of subscriptions `owner` holds. */
  countOf(owner: string): number {
    return this.byOwner.get(owner)?.size ?? 0;
  }

  private deliver(sub: Subscription, resultJson: string | null): void {
    if (resultJson === null) return;
    // One faulty sink must not stop the block's notifications to everyone else, nor the block import itself.
    try {
      sub.sink(sub.id, resultJson);
    } catch (err) {
      this.logger.error('subscription sink failed', { subscription: sub.id, error: String(err) });
    }
  }
}
