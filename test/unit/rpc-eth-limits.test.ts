// The eth_* methods under hostile params, against a real ledger behind a real server on 127.0.0.1: huge
// percentile and address lists, non-integer quantities, deeply nested block tags and slow log queries are
// refused with -32602 / -32005 (never -32603 with a stack in the log) while other clients keep being answered.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Ledger } from '../../chain/index.ts';
import { createEthApi } from '../../chain/rpc/eth.ts';
import { createRpcServer, type RpcServer } from '../../chain/rpc/server.ts';
import { SubscriptionHub } from '../../chain/rpc/subscriptions.ts';
import type { LogFields, Logger } from '../../chain/logger.ts';
import { openChain } from '../helpers/chain.ts';

const BLOCKS = 200;

interface RpcReply {
  result?: unknown;
  error?: { code: number; message: string };
}

function errorLines(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const make = (): Logger => ({
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (msg: string, fields?: LogFields) => errors.push(`${msg} ${JSON.stringify(fields ?? {})}`),
    child: () => make(),
  });
  return Object.assign(make(), { errors });
}

describe('eth_* limits against a real ledger', { timeout: 60_000 }, () => {
  let dir: string;
  let ledger: Ledger;
  let servers: RpcServer[] = [];
  let url: string;
  let slowUrl: string;
  const logger = errorLines();

  async function rpc(method: string, params: unknown[], to = url): Promise<RpcReply> {
    const res = await fetch(to, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    return (await res.json()) as RpcReply;
  }

  async function serve(extra: Partial<Parameters<typeof createEthApi>[0]>): Promise<string> {
    const chain = { ledger, pool: opened.pool, clientVersion: 'test', maxLogRange: 10_000, ...extra };
    const server = createRpcServer({ host: '127.0.0.1', port: 0, methods: createEthApi(chain), subscriptions: new SubscriptionHub(), logger });
    servers.push(server);
    const { port } = await server.listen();
    return `http://127.0.0.1:${port}/`;
  }

  let opened: Awaited<ReturnType<typeof openChain>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'datagate-rpc-eth-'));
    opened = await openChain(join(dir, 'chain'));
    ledger = opened.ledger;
    for (let i = 0; i < BLOCKS; i++) await opened.sealer.produceBlock();
    url = await serve({});
    slowUrl = await serve({ logQueryBudgetMs: 1 });
  });
  after(async () => {
    for (const s of servers) await s.close();
    servers = [];
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('eth_feeHistory refuses 100,000 percentiles, 101, unordered or out-of-range ones with -32602', async () => {
    const many = Array.from({ length: 100_000 }, (_, i) => i / 1000);
    const [attack, other] = await Promise.all([rpc('eth_feeHistory', ['0x400', 'latest', many]), rpc('eth_blockNumber', [])]);
    assert.equal(attack.error?.code, -32602);
    assert.equal(other.result, `0x${BLOCKS.toString(16)}`);
    const hundredOne = Array.from({ length: 101 }, (_, i) => i * 0.5);
    assert.equal((await rpc('eth_feeHistory', ['0x4', 'latest', hundredOne])).error?.code, -32602);
    for (const bad of [[50, 10], [10, 10], [-1], [101], ['50'], [null], 'x']) {
      assert.equal((await rpc('eth_feeHistory', ['0x4', 'latest', bad])).error?.code, -32602, JSON.stringify(bad));
    }
  });

  it('eth_feeHistory answers 100 increasing percentiles and cuts the block count to 1024 as geth does', async () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i);
    const ok = (await rpc('eth_feeHistory', ['0x4', 'latest', hundred])).result as { reward: string[][]; baseFeePerGas: string[] };
    assert.equal(ok.reward.length, 4);
    assert.equal(ok.reward[0]!.length, 100);
    assert.equal(ok.baseFeePerGas.length, 5);
    const wide = (await rpc('eth_feeHistory', [100_000, 'latest', []])).result as { oldestBlock: string; gasUsedRatio: number[] };
    assert.equal(wide.oldestBlock, '0x0');
    assert.equal(wide.gasUsedRatio.length, BLOCKS + 1);
    assert.deepEqual((await rpc('eth_feeHistory', ['0x0', 'latest'])).result, { oldestBlock: '0x0', baseFeePerGas: [], gasUsedRatio: [] });
  });

  it('non-integer quantities and deeply nested block tags get -32602 and leave no error in the log', async () => {
    const before = logger.errors.length;
    for (const count of [1.5, -1, 1e300, Number.MAX_SAFE_INTEGER + 2]) {
      assert.equal((await rpc('eth_feeHistory', [count, 'latest', []])).error?.code, -32602, String(count));
    }
    // 50,000 levels of EIP-1898 nesting, written as text (JSON.stringify would recurse as deep).
    const body = `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[${'{"blockNumber":'.repeat(50_000)}"latest"${'}'.repeat(50_000)},false]}`;
    const res = (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as RpcReply;
    assert.equal(res.error?.code, -32602);
    for (const tag of [{ blockNumber: { blockNumber: '0x1' } }, { blockNumber: 1.5 }, 1.5, '0x1.8', { blockNumber: [] }]) {
      assert.equal((await rpc('eth_getBalance', ['0x' + '11'.repeat(20), tag])).error?.code, -32602, JSON.stringify(tag));
    }
    assert.equal((await rpc('eth_getBlockByNumber', [{ blockNumber: '0x1' }, false])).error, undefined);
    assert.deepEqual(logger.errors.slice(before), []);
  });

  it('eth_getLogs refuses 100,000 addresses or topic alternatives with -32005 and keeps answering others', async () => {
    const addresses = Array.from({ length: 100_000 }, (_, i) => '0x' + i.toString(16).padStart(40, '0'));
    const filter = { fromBlock: '0x0', toBlock: 'latest', address: addresses };
    const [attack, other] = await Promise.all([rpc('eth_getLogs', [filter]), rpc('eth_blockNumber', [])]);
    assert.equal(attack.error?.code, -32005);
    assert.match(attack.error!.message, /limit is 1000/);
    assert.equal(other.result, `0x${BLOCKS.toString(16)}`);
    const topics = [Array.from({ length: 1001 }, (_, i) => '0x' + i.toString(16).padStart(64, '0'))];
    assert.equal((await rpc('eth_getLogs', [{ fromBlock: '0x0', topics }])).error?.code, -32005);
    const thousand = { fromBlock: '0x0', toBlock: 'latest', address: addresses.slice(0, 1000) };
    assert.deepEqual((await rpc('eth_getLogs', [thousand])).result, []);
  });

  it('eth_getLogs past its time budget is abandoned with -32005 naming the budget', async () => {
    const res = await rpc('eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }], slowUrl);
    assert.equal(res.error?.code, -32005);
    assert.match(res.error!.message, /1 ms budget/);
    assert.equal((await rpc('eth_getLogs', [{ fromBlock: 'latest', toBlock: 'latest' }], url)).error, undefined);
  });
});
