// Drives a real `datagate dev` process with ethers v6: transfers, receipts, balances, nonces, newHeads
// over WebSocket, every rejection case, and restarts (clean and kill -9) that lose nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { JsonRpcProvider, Signature, Transaction, Wallet, WebSocketProvider, decodeRlp, encodeRlp, parseEther, toBeHex } from 'ethers';
import { DEV_MNEMONIC, deriveAccounts, hexKey } from '../../gateway/dev-accounts.ts';
import { startDev, rpcCall, type DevProcess } from '../helpers/dev-process.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const accounts = deriveAccounts(DEV_MNEMONIC, 10);
const CHAIN_ID = 1337n;
let dir: string;
let node: DevProcess;
let provider: JsonRpcProvider;

function connect(url: string): JsonRpcProvider {
  // cacheTimeout -1: ethers otherwise answers a repeated query from a 250 ms cache, hiding fresh state.
  return new JsonRpcProvider(url, Number(CHAIN_ID), { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'datagate-dev-'));
  node = await startDev(['--data-dir', dir, '--block-period', '250']);
  provider = connect(node.rpcUrl);
});

after(async () => {
  provider?.destroy();
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the dev accounts are the well-known ones, prefunded with 10,000 ETH each', async () => {
  assert.equal(accounts[0]!.address, '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266');
  assert.equal(hexKey(accounts[0]!), '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
  assert.match(node.output(), /0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/);
  assert.equal((await provider.getNetwork()).chainId, CHAIN_ID);
  for (const a of accounts) assert.equal(await provider.getBalance(a.address), parseEther('10000'));
});

test('transfers between dev accounts: receipts, balances, nonces', async () => {
  const sender = new Wallet(hexKey(accounts[1]!), provider);
  const to = accounts[2]!.address;
  const before0 = await provider.getBalance(to);
  const nonce0 = await provider.getTransactionCount(sender.address);
  const responses = [];
  for (let i = 0; i < 5; i++) responses.push(await sender.sendTransaction({ to, value: parseEther('1'), nonce: nonce0 + i }));
  assert.equal(await provider.getTransactionCount(sender.address, 'pending'), nonce0 + 5);
  const receipts = await Promise.all(responses.map((r) => r.wait()));
  for (const r of receipts) {
    assert.equal(r?.status, 1);
    assert.equal(r?.gasUsed, 21_000n);
  }
  assert.equal(await provider.getBalance(to), before0 + parseEther('5'));
  assert.equal(await provider.getTransactionCount(sender.address), nonce0 + 5);
  const tx = await provider.getTransaction(responses[0]!.hash);
  assert.equal(tx?.from.toLowerCase(), sender.address.toLowerCase());
  assert.equal(tx?.blockNumber, receipts[0]!.blockNumber);
  const block = await provider.getBlock(receipts[0]!.blockNumber, true);
  assert.ok(block?.transactions.includes(responses[0]!.hash));
  const fee = receipts.reduce((n, r) => n + r!.gasUsed * r!.gasPrice, 0n);
  assert.equal(await provider.getBalance(sender.address), parseEther('10000') - parseEther('5') - fee);
});

test('eth_subscribe newHeads over WebSocket delivers new blocks', async () => {
  const ws = new WebSocketProvider(node.wsUrl, Number(CHAIN_ID));
  try {
    const seen = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no newHeads notification within 10 s')), 10_000);
      void ws.on('block', (n: number) => {
        clearTimeout(timer);
        resolve(n);
      });
    });
    assert.ok(seen >= 1);
  } finally {
    await ws.destroy();
  }
});

test('each rejected transaction gets its error and changes nothing', async () => {
  const sender = new Wallet(hexKey(accounts[3]!));
  const to = accounts[4]!.address;
  const balance = await provider.getBalance(sender.address);
  const nonce = await provider.getTransactionCount(sender.address);
  const base = { to, value: 1n, gasLimit: 21_000n, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 0n, type: 2, chainId: CHAIN_ID, nonce };
  const send = (raw: string) => rpcCall(node.rpcUrl, 'eth_sendRawTransaction', [raw]);
  const expectError = async (raw: string, code: string) => {
    const res = await send(raw);
    assert.equal(res.error?.code, -32000, `${code}: ${JSON.stringify(res)}`);
    assert.equal(res.error?.data?.code, code, JSON.stringify(res.error));
    assert.ok(res.error!.message.length > 0);
  };

  await expectError(await sender.signTransaction({ ...base, chainId: 1n }), 'TX_WRONG_CHAIN_ID');
  await expectError(await sender.signTransaction({ ...base, value: parseEther('20000') }), 'TX_INSUFFICIENT_FUNDS');
  await expectError(await sender.signTransaction({ ...base, gasLimit: 20_000n }), 'TX_INTRINSIC_GAS_TOO_LOW');
  await expectError(await sender.signTransaction({ ...base, maxFeePerGas: 1n }), 'TX_FEE_TOO_LOW');
  await expectError('0xc0ffee', 'TX_MALFORMED');
  await expectError(await sender.signTransaction({ ...base, data: '0x' + '01'.repeat(130 * 1024), gasLimit: 10_000_000n }), 'TX_TOO_LARGE');
  // A legacy transaction signed without a chain id (pre-EIP-155).
  const unprotected = Transaction.from({ to, value: 1n, gasLimit: 21_000n, gasPrice: 2_000_000_000n, nonce, type: 0 });
  unprotected.signature = new Wallet(hexKey(accounts[3]!)).signingKey.sign(unprotected.unsignedHash);
  await expectError(unprotected.serialized, 'TX_UNPROTECTED');
  // The same transfer with s replaced by n - s (and the parity flipped) recovers the same sender: EIP-2 forbids it.
  const good = Transaction.from(await sender.signTransaction(base));
  const sig = good.signature!;
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const fields = decodeRlp('0x' + good.serialized.slice(4)) as string[];
  fields[9] = sig.yParity === 0 ? '0x01' : '0x';
  fields[11] = toBeHex(n - BigInt(sig.s));
  await expectError('0x02' + encodeRlp(fields).slice(2), 'TX_HIGH_S');
  // A signature that recovers to nobody: r = 0.
  const bad = good.clone();
  bad.signature = Signature.from({ r: '0x' + '00'.repeat(32), s: sig.s, yParity: sig.yParity });
  await expectError(bad.serialized, 'TX_BAD_SIGNATURE');
  const unsupported = await sender.signTransaction({ ...base, type: 1, gasPrice: 2_000_000_000n, maxFeePerGas: undefined, maxPriorityFeePerGas: undefined });
  await expectError(unsupported, 'TX_UNSUPPORTED_TYPE');

  assert.equal(await provider.getBalance(sender.address), balance);
  assert.equal(await provider.getTransactionCount(sender.address, 'pending'), nonce);

  // Nonce too low: a mined transaction sent again.
  const w = new Wallet(hexKey(accounts[3]!), provider);
  await (await w.sendTransaction({ to, value: 1n, nonce })).wait();
  const again = await w.signTransaction({ ...base, nonce });
  await expectError(again, 'TX_NONCE_TOO_LOW');
  const known = await w.signTransaction({ ...base, nonce: nonce + 1, value: 7n, maxFeePerGas: 3_000_000_000n });
  assert.equal((await send(known)).error, undefined);
  await expectError(known, 'TX_ALREADY_KNOWN');
});

test('JSON-RPC answers the methods wallets use', async () => {
  assert.equal((await rpcCall(node.rpcUrl, 'net_version')).result, '1337');
  assert.match(String((await rpcCall(node.rpcUrl, 'web3_clientVersion')).result), /^datagate\//);
  assert.equal((await rpcCall(node.rpcUrl, 'eth_getCode', [accounts[0]!.address, 'latest'])).result, '0x');
  assert.equal((await rpcCall(node.rpcUrl, 'eth_gasPrice')).result, '0x3b9aca00');
  assert.equal((await rpcCall(node.rpcUrl, 'eth_estimateGas', [{ from: accounts[0]!.address, to: accounts[1]!.address, value: '0x1' }])).result, '0x5208');
  const fh = (await rpcCall(node.rpcUrl, 'eth_feeHistory', ['0x2', 'latest', [50]])).result as { baseFeePerGas: string[]; reward: string[][] };
  assert.equal(fh.baseFeePerGas.length, 3);
  assert.deepEqual((await rpcCall(node.rpcUrl, 'eth_getLogs', [{ fromBlock: '0x0', toBlock: 'latest' }])).result, []);
  assert.equal((await rpcCall(node.rpcUrl, 'eth_getLogs', [{ fromBlock: '0x0', toBlock: '0xffffff' }])).error, undefined);
  assert.equal((await rpcCall(node.rpcUrl, 'eth_foo')).error?.code, -32601);
  assert.equal((await rpcCall(node.rpcUrl, 'eth_getBalance', ['0x1234', 'latest'])).error?.code, -32602);
  const block = (await rpcCall(node.rpcUrl, 'eth_getBlockByNumber', ['latest', false])).result as Record<string, string>;
  assert.match(block.hash!, /^0x[0-9a-f]{64}$/);
  assert.equal(block.baseFeePerGas, '0x3b9aca00');
});

test('a restart (clean, then kill -9) loses no committed block or receipt', async () => {
  const sender = new Wallet(hexKey(accounts[5]!), provider);
  const hashes: string[] = [];
  // Explicit nonces: ethers caches identical requests for 250 ms, so back-to-back sends would reuse one.
  const nonce = await provider.getTransactionCount(sender.address);
  for (let i = 0; i < 3; i++) hashes.push((await sender.sendTransaction({ to: accounts[6]!.address, value: parseEther('2'), nonce: nonce + i })).hash);
  await Promise.all(hashes.map((h) => provider.waitForTransaction(h)));
  const head = await provider.getBlockNumber();
  const balance = await provider.getBalance(accounts[6]!.address);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    provider.destroy();
    const code = await node.stop(signal);
    if (signal === 'SIGTERM') assert.equal(code, 0, node.output());
    node = await startDev(['--data-dir', dir, '--block-period', '250']);
    provider = connect(node.rpcUrl);
    const resumed = Number((await rpcCall(node.rpcUrl, 'eth_blockNumber')).result);
    assert.ok(resumed >= head, `${signal}: resumed at ${resumed}, was at ${head}`);
    assert.equal(await provider.getBalance(accounts[6]!.address), balance);
    for (const h of hashes) assert.equal((await provider.getTransactionReceipt(h))?.status, 1);
  }
  const next = await (await sender.connect(provider).sendTransaction({ to: accounts[6]!.address, value: 1n, nonce: nonce + 3 })).wait();
  assert.equal(next?.status, 1);
  assert.equal(await provider.getBalance(accounts[6]!.address), balance + 1n);
});

test('lbft_* methods describe the committee, the schedule and where consensus is', async () => {
  const committee = (await rpcCall(node.rpcUrl, 'lbft_committee')).result as { validators: { address: string; keyType: string }[]; proposers: string[]; quorum: string };
  assert.equal(committee.validators.length, 4);
  assert.equal(committee.proposers.length, 2);
  assert.equal(committee.quorum, '0x3');
  assert.ok(committee.validators.every((v) => v.keyType === 'secp256k1'));
  const schedule = (await rpcCall(node.rpcUrl, 'lbft_proposerSchedule', [4])).result as { height: string; proposer: string }[];
  assert.equal(schedule.length, 4);
  assert.equal(schedule[0]!.proposer, committee.proposers[Number(BigInt(schedule[0]!.height) % 2n)]);
  assert.equal((await rpcCall(node.rpcUrl, 'lbft_proposerSchedule', [0])).error?.code, -32602);
  const status = (await rpcCall(node.rpcUrl, 'lbft_status')).result as { height: string; head: string; roundsHistogram: number[] };
  assert.ok(BigInt(status.height) >= BigInt(status.head));
  assert.ok(status.roundsHistogram[0]! >= 1);
  const peers = (await rpcCall(node.rpcUrl, 'lbft_peers')).result as { role: string; up: boolean }[];
  assert.deepEqual(peers.map((p) => p.role).sort(), ['follower', 'proposer', 'proposer', 'validator', 'validator', 'validator', 'validator']);
});

test('--kill-proposer: the stopped proposer is impeached at its heights and the chain goes on', { timeout: 120_000 }, async (t) => {
  const killDir = mkdtempSync(join(tmpdir(), 'datagate-kill-'));
  // A timeout of 1 s: short enough for a quick test, long enough that a loaded 2-core machine does not make an
  // honest proposer miss its turn.
  const killed = await startDev(['--data-dir', killDir, '--block-period', '100', '--block-timeout', '1000', '--kill-proposer', '0', '--kill-after', '1'], { t });
  try {
    const proposers = ((await rpcCall(killed.rpcUrl, 'lbft_committee')).result as { proposers: string[] }).proposers;
    const deadline = Date.now() + 40_000;
    let impeachments: { proposer: string; cause: string; height: string }[] = [];
    const ofKilled = () => impeachments.filter((i) => i.proposer === proposers[0]);
    while (ofKilled().length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      impeachments = (await rpcCall(killed.rpcUrl, 'lbft_impeachments')).result as typeof impeachments;
    }
    // With a message: without one, assert.ok reads and parses the test's source to describe the expression.
    assert.ok(ofKilled().length >= 2, `proposer ${proposers[0]} impeached at least twice: ${JSON.stringify(impeachments)}\n${killed.output().slice(-2000)}`);
    assert.ok(impeachments.every((i) => i.cause === 'timeout'), `every impeachment for a timeout: ${JSON.stringify(impeachments)}`);
    // Its heights after the kill are all impeached; the other proposer's are (nearly) all sealed.
    const last = Math.max(...ofKilled().map((i) => Number(i.height)));
    let head = 0;
    for (const until = Date.now() + 20_000; head <= last && Date.now() < until; await new Promise((r) => setTimeout(r, 200))) head = Number((await rpcCall(killed.rpcUrl, 'eth_blockNumber')).result);
    assert.ok(head > last, `the chain goes on past the impeachment at ${last} (head ${head})`);
    assert.ok(ofKilled().length > impeachments.length - ofKilled().length, `mostly the killed proposer: ${JSON.stringify(impeachments)}`);
    assert.match(killed.output(), /impeachment block committed/);
  } finally {
    await killed.stop();
    rmSync(killDir, { recursive: true, force: true });
  }
});
