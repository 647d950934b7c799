// The eth_*, net_* and web3_* methods: what ethers v6, viem and wallets call. State queries answer for
// the head only (this node keeps no historical state); asking for an older block's state is an error
// that says so, never a wrong answer.
import type { Block } from '../block.ts';
import { bloomHas, bloomProbe, type BloomProbe } from '../block.ts';
import { hexToBytes } from '../crypto/index.ts';
import { checkTx } from '../execute.ts';
import type { Ledger } from '../ledger.ts';
import { decodeSignedTx, intrinsicGas } from '../tx.ts';
import type { TxPool } from '../txpool.ts';
import type { Hash, SignedTx } from '../types.ts';
import { invalidParams, serverError, limitExceeded } from './errors.ts';
import { formatBlock, formatLogs, formatReceipt, formatTx, quantity } from './format.ts';
import type { RpcHandler } from './server.ts';
import type { JsonLog, LogFilter } from './subscriptions.ts';
import { DEFAULT_LOG_FILTER_LIMITS, matchesLogFilter, parseLogFilter, type LogFilterLimits } from './subscriptions.ts';

export interface EthApiOptions {
  readonly ledger: Ledger;
  readonly pool: TxPool;
  /** Called after a transaction entered the pool (to wake a block producer, or pass it on to proposers). */
  readonly onTransaction?: (tx: SignedTx) => void;
  readonly clientVersion: string;
  /** Widest block range one eth_getLogs may scan. */
  readonly maxLogRange: number;
  /**
   * Limits of one eth_getLogs filter: addresses, and alternatives per topic position; more get -32005.
   * Default 1000 each (geth's maxAddresses / maxSubTopics), which logs subscriptions also apply.
   */
  readonly maxLogAddresses?: number;
  readonly maxLogTopicAlternatives?: number;
  /**
   * Time budget of one eth_getLogs in milliseconds: a query still scanning after it is abandoned with -32005
   * (narrow the range or the filter), so one client cannot keep the node busy. Default 5000.
   */
  readonly logQueryBudgetMs?: number;
  /** Most reward percentiles one eth_feeHistory may ask for; more get -32602. Default 100 (geth's limit). */
  readonly maxFeeHistoryPercentiles?: number;
  /** Peers connected now, for net_peerCount (e.g. the libp2p transport's peers that are up). Default 0. */
  readonly peerCount?: () => number;
  /**
   * The block sync under way (LbftNode.syncing()), for eth_syncing in geth's format; false when caught up.
   * Default: always false.
   */
  readonly syncing?: () => false | EthSyncProgress;
}

/** What eth_syncing reports while a node catches up: the head when the sync began, the head now, the height sought. */
export interface EthSyncProgress {
  readonly startingBlock: bigint;
  readonly currentBlock: bigint;
  readonly highestBlock: bigint;
}

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const HASH_RE = /^0x[0-9a-fA-F]{64}$/;
const QUANTITY_RE = /^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/;
const DATA_RE = /^0x([0-9a-fA-F]{2})*$/;
/** Most blocks one eth_feeHistory covers; larger counts are cut to it, as geth does. */
const MAX_FEE_HISTORY = 1024;
/** eth_getLogs blocks scanned between yields to the event loop (cached blocks resolve without I/O). */
const LOG_SCAN_YIELD_EVERY = 64;

function address(v: unknown, name: string): string {
  if (typeof v !== 'string' || !ADDRESS_RE.test(v)) throw invalidParams(`${name} must be a 20-byte 0x-hex address`);
  return v.toLowerCase();
}

function hash(v: unknown, name: string): Hash {
  if (typeof v !== 'string' || !HASH_RE.test(v)) throw invalidParams(`${name} must be a 32-byte 0x-hex hash`);
  return v.toLowerCase();
}

function quantityParam(v: unknown, name: string): bigint {
  if (typeof v !== 'string' || !QUANTITY_RE.test(v) || v.length > 66) throw invalidParams(`${name} must be a 0x-hex quantity without leading zeros`);
  return BigInt(v);
}

/** eth_feeHistory's block count: a quantity, or a JSON integer as geth also accepts. */
function blockCount(v: unknown, name: string): bigint {
  if (typeof v !== 'number') return quantityParam(v, name);
  if (!Number.isSafeInteger(v) || v < 0) throw invalidParams(`${name} must be a non-negative integer or a 0x-hex quantity`);
  return BigInt(v);
}

/** Reward percentiles as geth takes them: at most `max`, each 0..100, strictly increasing. */
function percentilesParam(v: unknown, name: string, max: number): number[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) throw invalidParams(`${name} must be an array of numbers between 0 and 100`);
  if (v.length > max) throw invalidParams(`${name}: at most ${max} percentiles, got ${v.length}`);
  v.forEach((p: unknown, i) => {
    if (typeof p !== 'number' || !(p >= 0 && p <= 100)) throw invalidParams(`${name}[${i}] must be a number between 0 and 100`);
    if (i > 0 && p <= (v[i - 1] as number)) throw invalidParams(`${name}[${i}] must be greater than ${name}[${i - 1}] (percentiles increase)`);
  });
  return v as number[];
}

function data(v: unknown, name: string): Uint8Array {
  if (typeof v !== 'string' || !DATA_RE.test(v)) throw invalidParams(`${name} must be 0x-hex bytes`);
  return hexToBytes(v);
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalidParams(`${name} must be true or false`);
  return v;
}

export function createEthApi(opts: EthApiOptions): Record<string, RpcHandler> {
  const { ledger, pool } = opts;
  const filterLimits: LogFilterLimits = {
    maxAddresses: opts.maxLogAddresses ?? DEFAULT_LOG_FILTER_LIMITS.maxAddresses,
    maxAlternatives: opts.maxLogTopicAlternatives ?? DEFAULT_LOG_FILTER_LIMITS.maxAlternatives,
  };
  const logQueryBudgetMs = opts.logQueryBudgetMs ?? 5000;
  const maxPercentiles = opts.maxFeeHistoryPercentiles ?? 100;
  const chainId = ledger.spec.chainId;
  const head = () => ledger.head.header.number;

  /** A block tag or number (or EIP-1898 object) to a block number; undefined when beyond the head. */
  async function blockNumberOf(tag: unknown, name = 'block'): Promise<bigint | undefined> {
    if (tag === undefined || tag === null) return head();
    if (typeof tag === 'object') {
      const o = tag as Record<string, unknown>;
      if ('blockHash' in o) {
        const b = await ledger.blockByHash(hash(o.blockHash, `${name}.blockHash`));
        if (b === undefined) throw serverError(`block ${String(o.blockHash)} not found`);
        return b.header.number;
      }
      // EIP-1898 nests one level only: a nested object is refused here rather than followed (no recursion
      // a client could make as deep as its JSON).
      if ('blockNumber' in o && (typeof o.blockNumber !== 'object' || o.blockNumber === null)) {
        return blockNumberOf(o.blockNumber ?? 'latest', `${name}.blockNumber`);
      }
      throw invalidParams(`${name} must be a block tag, number, or {blockHash} / {blockNumber} with a tag or number`);
    }
    switch (tag) {
      case 'latest':
      case 'pending':
      case 'safe':
      case 'finalized':
        return head();
      case 'earliest':
        return 0n;
      default: {
        const n = quantityParam(tag, name);
        return n > head() ? undefined : n;
      }
    }
  }

  /** State queries: only the head's state is kept. */
  async function requireHeadState(tag: unknown): Promise<void> {
    const n = await blockNumberOf(tag);
    if (n === undefined) throw serverError('header not found: that block is beyond the head');
    if (n !== head()) throw serverError(`historical state is not available: this node keeps only the head state (block ${head()}), asked for block ${n}`);
  }

  async function blockFor(tag: unknown): Promise<Block | undefined> {
    const n = await blockNumberOf(tag);
    return n === undefined ? undefined : ledger.blockByNumber(n);
  }

  async function txWithLocation(txHash: Hash): Promise<{ block: Block; index: number } | undefined> {
    const loc = await ledger.txLocation(txHash);
    if (loc === undefined) return undefined;
    const block = await ledger.blockByHash(loc.blockHash);
    return block === undefined ? undefined : { block, index: loc.index };
  }

  function callObject(v: unknown): { from?: string; to?: string; value: bigint; data: Uint8Array } {
    if (typeof v !== 'object' || v === null) throw invalidParams('call object must be an object');
    const o = v as Record<string, unknown>;
    const input = o.input ?? o.data;
    return {
      ...(o.from != null ? { from: address(o.from, 'from') } : {}),
      ...(o.to != null ? { to: address(o.to, 'to') } : {}),
      value: o.value == null ? 0n : quantityParam(o.value, 'value'),
      data: input == null ? new Uint8Array(0) : data(input, 'data'),
    };
  }

  async function getLogs(filterParam: unknown): Promise<JsonLog[]> {
    if (typeof filterParam !== 'object' || filterParam === null) throw invalidParams('filter must be an object');
    const f = filterParam as Record<string, unknown>;
    const filter: LogFilter = parseLogFilter({ address: f.address, topics: f.topics }, 'filter', filterLimits);
    const deadline = performance.now() + logQueryBudgetMs;
    const checkBudget = (): void => {
      if (performance.now() > deadline) {
        throw limitExceeded(`query timeout exceeded: eth_getLogs ran past its ${logQueryBudgetMs} ms budget; narrow the block range or the filter`);
      }
    };
    let blocks: Block[] = [];
    if (f.blockHash != null) {
      if (f.fromBlock != null || f.toBlock != null) throw invalidParams('use either blockHash or fromBlock/toBlock, not both');
      const b = await ledger.blockByHash(hash(f.blockHash, 'blockHash'));
      if (b === undefined) throw serverError(`block ${String(f.blockHash)} not found`);
      blocks = [b];
    } else {
      const from = (await blockNumberOf(f.fromBlock ?? 'latest', 'fromBlock')) ?? head() + 1n;
      const to = (await blockNumberOf(f.toBlock ?? 'latest', 'toBlock')) ?? head();
      if (from > to) return [];
      if (to - from + 1n > BigInt(opts.maxLogRange)) {
        throw limitExceeded(`block range too large: ${to - from + 1n} blocks, the limit is ${opts.maxLogRange}; query a smaller range`);
      }
      // Each group is one condition of the filter (the address, then each topic position); a block may
      // hold a match only if its bloom admits some alternative of every group. Probes are hashed once here,
      // not once per block.
      const groups: BloomProbe[][] = [];
      const addresses = filter.address == null ? [] : [filter.address].flat();
      if (addresses.length > 0) groups.push(addresses.map((a) => bloomProbe(hexToBytes(a))));
      for (const topic of filter.topics ?? []) {
        const alternatives = topic == null ? [] : [topic].flat();
        if (alternatives.length > 0) groups.push(alternatives.map((x) => bloomProbe(hexToBytes(x))));
      }
      for (let n = from; n <= to; n++) {
        if ((n - from) % BigInt(LOG_SCAN_YIELD_EVERY) === 0n && n > from) await new Promise<void>((resolve) => setImmediate(resolve));
        checkBudget();
        const b = await ledger.blockByNumber(n);
        if (b === undefined) break;
        // The bloom rules out most blocks without reading their receipts.
        if (groups.every((g) => g.some((p) => bloomHas(b.header.logsBloom, p)))) blocks.push(b);
      }
    }
    const out: JsonLog[] = [];
    for (const b of blocks) {
      checkBudget();
      const receipts = (await ledger.receipts(b.hash)) ?? [];
      for (const log of formatLogs(b, receipts)) if (matchesLogFilter(log, filter)) out.push(log);
    }
    return out;
  }

  return {
    web3_clientVersion: () => opts.clientVersion,
    net_version: () => chainId.toString(),
    net_listening: () => true,
    net_peerCount: () => quantity(BigInt(opts.peerCount?.() ?? 0)),
    eth_chainId: () => quantity(chainId),
    eth_syncing: () => {
      const p = opts.syncing?.() ?? false;
      return p === false ? false : { startingBlock: quantity(p.startingBlock), currentBlock: quantity(p.currentBlock), highestBlock: quantity(p.highestBlock) };
    },
    eth_accounts: () => [],
    eth_blockNumber: () => quantity(head()),
    eth_gasPrice: () => quantity(ledger.spec.baseFee),
    eth_maxPriorityFeePerGas: () => '0x0',

    eth_getBalance: async ([addr, tag]) => {
      const a = address(addr, 'address');
      await requireHeadState(tag);
      return quantity(ledger.state.account(a).balance);
    },

    eth_getTransactionCount: async ([addr, tag]) => {
      const a = address(addr, 'address');
      if (tag === 'pending') return quantity(pool.pendingNonce(a));
      await requireHeadState(tag);
      return quantity(ledger.state.account(a).nonce);
    },

    eth_getCode: async ([addr, tag]) => {
      address(addr, 'address');
      await requireHeadState(tag);
      return '0x';
    },

    eth_sendRawTransaction: ([raw]) => {
      const tx = decodeSignedTx(data(raw, 'raw transaction'), chainId);
      checkTx(tx, ledger.state, ledger.spec.baseFee, 'not-below');
      pool.add(tx);
      opts.onTransaction?.(tx);
      return tx.hash;
    },

    eth_getTransactionByHash: async ([h]) => {
      const txHash = hash(h, 'transaction hash');
      const pending = pool.get(txHash);
      if (pending !== undefined) return formatTx(pending, null);
      const where = await txWithLocation(txHash);
      return where === undefined ? null : formatTx(where.block.txs[where.index]!, where);
    },

    eth_getTransactionReceipt: async ([h]) => {
      const where = await txWithLocation(hash(h, 'transaction hash'));
      if (where === undefined) return null;
      const receipts = await ledger.receipts(where.block.hash);
      return receipts === undefined ? null : formatReceipt(where.block, receipts, where.index);
    },

    eth_getBlockByNumber: async ([tag, full]) => {
      const b = await blockFor(tag);
      return b === undefined ? null : formatBlock(b, bool(full ?? false, 'full transactions flag'));
    },

    eth_getBlockByHash: async ([h, full]) => {
      const b = await ledger.blockByHash(hash(h, 'block hash'));
      return b === undefined ? null : formatBlock(b, bool(full ?? false, 'full transactions flag'));
    },

    eth_getBlockTransactionCountByNumber: async ([tag]) => {
      const b = await blockFor(tag);
      return b === undefined ? null : quantity(b.txs.length);
    },

    eth_call: async ([call, tag]) => {
      const c = callObject(call);
      await requireHeadState(tag);
      if (c.from !== undefined && ledger.state.account(c.from).balance < c.value) {
        throw serverError('insufficient funds for value transfer', { code: 'TX_INSUFFICIENT_FUNDS' });
      }
      // No account holds code on this chain yet: a call returns empty data, as Ethereum does for EOAs.
      return '0x';
    },

    eth_estimateGas: async ([call, tag]) => {
      const c = callObject(call);
      await requireHeadState(tag);
      if (c.to === undefined) throw serverError('contract creation is not supported on this chain (no EVM)', { code: 'TX_UNSUPPORTED_TYPE' });
      if (c.from !== undefined && ledger.state.account(c.from).balance < c.value) {
        throw serverError(`insufficient funds for transfer: balance of ${c.from} is below the value`, { code: 'TX_INSUFFICIENT_FUNDS' });
      }
      return quantity(intrinsicGas({ data: c.data, accessListCost: 0n }));
    },

    eth_feeHistory: async ([count, newest, percentiles]) => {
      const requested = blockCount(count, 'block count');
      const pcts = percentilesParam(percentiles, 'reward percentiles', maxPercentiles);
      const last = (await blockNumberOf(newest, 'newest block')) ?? head();
      if (requested === 0n) return { oldestBlock: quantity(0), baseFeePerGas: [], gasUsedRatio: [] };
      // Like geth, a count over the cap is cut to it; oldestBlock tells the client what it got.
      const n = requested > BigInt(MAX_FEE_HISTORY) ? BigInt(MAX_FEE_HISTORY) : requested;
      const first = last - n + 1n < 0n ? 0n : last - n + 1n;
      const baseFees: string[] = [];
      const ratios: number[] = [];
      const rewards: string[][] = [];
      for (let i = first; i <= last; i++) {
        const b = await ledger.blockByNumber(i);
        if (b === undefined) break;
        baseFees.push(quantity(b.header.baseFee));
        ratios.push(Number(b.header.gasUsed) / Number(b.header.gasLimit));
        // Tips above the constant base fee; the fixed fee policy makes every percentile the same order.
        if (pcts !== null) {
          const tips = b.txs.map((tx) => (tx.maxFeePerGas - b.header.baseFee < tx.maxPriorityFeePerGas ? tx.maxFeePerGas - b.header.baseFee : tx.maxPriorityFeePerGas)).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
          rewards.push(pcts.map((p) => quantity(tips.length === 0 ? 0n : tips[Math.min(tips.length - 1, Math.floor((p / 100) * tips.length))]!)));
        }
      }
      baseFees.push(quantity(ledger.spec.baseFee));
      return { oldestBlock: quantity(first), baseFeePerGas: baseFees, gasUsedRatio: ratios, ...(pcts !== null ? { reward: rewards } : {}) };
    },

    eth_getLogs: ([filter]) => getLogs(filter),
  };
}
