// lbft_impeachments reads the impeachment blocks I(h) committed on a real chain (LevelDB), so the history
// survives a restart of the node; the cause is given where this process recorded it. A store written before
// the index existed is indexed when it is opened.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Level } from 'level';
import { Ledger, LbftRecorder, TxPool, consensusDigest, createLbftApi, headerHash, hexToBytes } from '../../chain/index.ts';
import { CHAIN_ID, tempDir, testSpec, validator } from '../helpers/chain.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { SoloSealer } from '../helpers/solo-sealer.ts';

const spec = testSpec();

/** Commit I(h) on the head, certified by the solo validator. */
async function commitImpeachment(ledger: Ledger): Promise<void> {
  const candidate = ledger.buildImpeachment();
  const { number } = candidate.header;
  const hash = headerHash(candidate.header);
  const signature = await validator.sign(consensusDigest('commit', CHAIN_ID, number, 0, hexToBytes(hash)), 'commit');
  await ledger.commit(candidate, { height: number, round: 0, blockHash: hash, signatures: [{ signer: validator.address, signature }] });
}

function impeachmentsOf(ledger: Ledger, recorder = new LbftRecorder()) {
  const api = createLbftApi({ ledger, recorder, status: () => ({ height: 0n, round: 0, decided: false }), peers: () => [] });
  return async (...params: unknown[]) =>
    (await api.lbft_impeachments!(params, { transport: 'http', connectionId: null })) as { height: string; proposer: string; timestamp: number; cause: string | null; at: number | null }[];
}

test('lbft_impeachments lists the impeachment blocks on the chain, after a restart and after indexing an old store', { timeout: 60_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const path = join(dir, 'chain');
  let ledger = await Ledger.open(path, spec);
  cleanup.push(() => ledger.close());
  const sealer = new SoloSealer({ ledger, pool: new TxPool({ nonceOf: () => 0n, minFee: 1n, blockGasLimit: ledger.spec.gasLimit }), signer: validator, periodMs: 1000 });
  // Heights 1 2 [3] 4 [5] [6] 7, the bracketed ones impeached.
  for (const impeached of [false, false, true, false, true, true, false]) await (impeached ? commitImpeachment(ledger) : sealer.produceBlock());
  const recorder = new LbftRecorder();
  recorder.impeachment({ height: 5n, proposer: validator.address, cause: 'timeout', at: 1234 });
  recorder.impeachment({ height: 8n, proposer: validator.address, cause: 'timeout', at: 1250 }); // voted, never committed

  const list = impeachmentsOf(ledger, recorder);
  const all = await list();
  assert.deepEqual(all.map((i) => i.height), ['0x3', '0x5', '0x6']);
  assert.ok(all.every((i) => i.proposer === validator.address));
  assert.deepEqual(all.map((i) => [i.cause, i.at]), [[null, null], ['timeout', 1234], [null, null]]);
  const third = await ledger.blockByNumber(3n);
  assert.equal(all[0]!.timestamp, third!.header.timestamp);
  assert.deepEqual((await list(2)).map((i) => i.height), ['0x5', '0x6']);
  assert.deepEqual((await list(null, '0x5')).map((i) => i.height), ['0x3']);
  assert.deepEqual(await list(10, '0x1'), []);
  assert.equal((await list(10, '0x1' + '0'.repeat(20))).length, 3);
  for (const bad of [[0], [1025], ['5'], [2, 5], [2, '0xzz']]) await expectCode(list(...bad), 'RPC_INVALID_PARAMS');

  // A new process: the history is still there, the causes it did not see are not.
  await ledger.close();
  ledger = await Ledger.open(path, spec);
  assert.deepEqual((await impeachmentsOf(ledger)()).map((i) => [i.height, i.cause]), [['0x3', null], ['0x5', null], ['0x6', null]]);
  await ledger.close();

  // A store from before the index: its impeachment keys and the marker are gone; opening it indexes the chain.
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.clear({ gte: Uint8Array.of(0x0a), lt: Uint8Array.of(0x0b) });
  await db.del(Uint8Array.of(0x01, ...new TextEncoder().encode('impeachments-indexed')));
  await db.close();
  ledger = await Ledger.open(path, spec);
  assert.deepEqual((await impeachmentsOf(ledger)()).map((i) => i.height), ['0x3', '0x5', '0x6']);
});
