import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Wallet, getBytes } from 'ethers';
import { Level } from 'level';
import { hexToBytes } from '../../chain/crypto/index.ts';
import { decodeSignedTx, genesisOf } from '../../chain/index.ts';
import { signerOf, validatorKeyOf } from '../../chain/certificate.ts';
import { consensusDigest } from '../../chain/signing.ts';
import { MemorySigner } from '../../device/index.ts';
import { BASE_FEE, CHAIN_ID, ETH, alice, bob, openChain, tempDir, testSpec, transfer, validator } from '../helpers/chain.ts';
import { expectCode as assertCode } from '../helpers/expect-code.ts';

const A = alice.address.toLowerCase();
const B = bob.address.toLowerCase();


test('a transfer moves value, charges 21000 gas to the proposer and bumps the nonce', async (t) => {
  const { ledger, pool, sealer } = await openChain(tempDir(t));
  t.after(() => ledger.close());
  pool.add(decodeSignedTx(getBytes(await transfer(alice, B, 5n * ETH, 0)), CHAIN_ID));
  await sealer.produceBlock();
  const head = ledger.head;
  assert.equal(head.header.number, 1n);
  assert.equal(head.txs.length, 1);
  const fee = 21_000n * BASE_FEE;
  assert.equal(ledger.state.account(A).balance, 95n * ETH - fee);
  assert.equal(ledger.state.account(A).nonce, 1n);
  assert.equal(ledger.state.account(B).balance, 105n * ETH);
  assert.equal(ledger.state.account(validator.address).balance, fee);
  const receipts = await ledger.receipts(head.hash);
  assert.equal(receipts?.[0]?.gasUsed, 21_000n);
  assert.equal(receipts?.[0]?.effectiveGasPrice, BASE_FEE);
  assert.equal(pool.size, 0);
  // The seal and certificate are made by the validator over domain-separated digests.
  const cert = await ledger.certificate(head.hash);
  assert.equal(cert?.signatures.length, 1);
  const digest = consensusDigest('commit', CHAIN_ID, 1n, 0, hexToBytes(head.hash));
  assert.equal(signerOf(digest, cert!.signatures[0]!.signature), validator.address);
});

test('another node validates the block by executing it, and rejects tampered ones', async (t) => {
  const a = await openChain(tempDir(t));
  const b = await openChain(tempDir(t));
  t.after(() => Promise.all([a.ledger.close(), b.ledger.close()]));
  a.pool.add(decodeSignedTx(getBytes(await transfer(alice, B, ETH, 0)), CHAIN_ID));
  await a.sealer.produceBlock();
  const block = a.ledger.head;
  const cert = (await a.ledger.certificate(block.hash))!;

  const tamperedRoot = { ...block, header: { ...block.header, stateRoot: '0x' + 'ab'.repeat(32) } };
  await assertCode(() => b.ledger.validateBlock(tamperedRoot), 'BLOCK_INVALID');
  const { headerHash } = await import('../../chain/block.ts');
  const wrongSealHeader = { ...block.header, seal: await new MemorySigner(new Uint8Array(32).fill(9)).sign(new Uint8Array(32), 'seal') };
  await assertCode(() => b.ledger.validateBlock({ ...block, header: wrongSealHeader, hash: headerHash(wrongSealHeader) }), 'BLOCK_INVALID');

  const candidate = b.ledger.validateBlock(block);
  assert.equal(candidate.header.stateRoot, block.header.stateRoot);
  // A certificate signed by someone outside the committee is refused and changes nothing.
  const stranger = new MemorySigner(new Uint8Array(32).fill(7));
  const forged = { ...cert, signatures: [{ signer: stranger.address, signature: await stranger.sign(consensusDigest('commit', CHAIN_ID, 1n, 0, hexToBytes(block.hash)), 'commit') }] };
  await assertCode(b.ledger.commit(candidate, forged), 'CERT_INVALID');
  assert.equal(b.ledger.head.header.number, 0n);
  await b.ledger.commit(candidate, cert);
  assert.equal(b.ledger.head.hash, block.hash);
});

test('a block with a transaction that cannot run is invalid; building leaves such a transaction out', async (t) => {
  const { ledger, sealer, pool } = await openChain(tempDir(t));
  t.after(() => ledger.close());
  const poor = Wallet.createRandom();
  const tx = decodeSignedTx(getBytes(await transfer(new Wallet(poor.privateKey), A, 1n, 0)), CHAIN_ID);
  const built = ledger.buildBlock({ proposer: validator.address, timestamp: 1, round: 0, txs: [tx] });
  assert.equal(built.txs.length, 0);
  assert.equal(built.rejected[0]?.error.code, 'TX_INSUFFICIENT_FUNDS');
  assert.equal(pool.size, 0);
  await sealer.produceBlock();
  assert.equal(ledger.head.txs.length, 0);
});

test('execution rules: nonce, funds, intrinsic gas, fee', async (t) => {
  const { ledger } = await openChain(tempDir(t));
  t.after(() => ledger.close());
  const run = async (raw: string) => {
    const tx = decodeSignedTx(getBytes(raw), CHAIN_ID);
    const built = ledger.buildBlock({ proposer: validator.address, timestamp: 1, round: 0, txs: [tx] });
    return built.rejected[0]?.error.code ?? 'OK';
  };
  assert.equal(await run(await transfer(alice, B, 1n, 1)), 'TX_NONCE_TOO_HIGH');
  assert.equal(await run(await transfer(alice, B, 1000n * ETH, 0)), 'TX_INSUFFICIENT_FUNDS');
  assert.equal(await run(await transfer(alice, B, 1n, 0, { gasLimit: 20_999n })), 'TX_INTRINSIC_GAS_TOO_LOW');
  assert.equal(await run(await transfer(alice, B, 1n, 0, { maxFeePerGas: BASE_FEE - 1n })), 'TX_FEE_TOO_LOW');
  assert.equal(await run(await transfer(alice, B, 1n, 0, { data: '0x0001' })), 'TX_INTRINSIC_GAS_TOO_LOW');
  assert.equal(await run(await transfer(alice, B, 1n, 0, { data: '0x0001', gasLimit: 21_020n })), 'OK');
  assert.equal(await run(await transfer(alice, B, 1n, 0)), 'OK');
});

test('a restart resumes at the stored head with the same state', async (t) => {
  const dir = tempDir(t);
  const first = await openChain(dir);
  first.pool.add(decodeSignedTx(getBytes(await transfer(alice, B, 3n * ETH, 0)), CHAIN_ID));
  await first.sealer.produceBlock();
  await first.sealer.produceBlock();
  const head = first.ledger.head;
  const root = head.header.stateRoot;
  await first.ledger.close();

  const again = await openChain(dir);
  t.after(() => again.ledger.close());
  assert.equal(again.ledger.head.hash, head.hash);
  assert.equal(again.ledger.head.header.stateRoot, root);
  assert.equal(again.ledger.state.account(B).balance, 103n * ETH);
  const loc = await again.ledger.txLocation(head.hash === '' ? '' : (await again.ledger.blockByNumber(1n))!.txs[0]!.hash);
  assert.equal(loc?.index, 0);
  again.pool.add(decodeSignedTx(getBytes(await transfer(alice, B, ETH, 1)), CHAIN_ID));
  await again.sealer.produceBlock();
  assert.equal(again.ledger.head.header.number, 3n);
});

test('the genesis hash commits to the chain id, the committee and the proposers', { timeout: 10_000 }, () => {
  const base = genesisOf(testSpec()).block.hash;
  const other = new MemorySigner(new Uint8Array(32).fill(4));
  const variants = [
    testSpec({ chainId: 99n }),
    testSpec({ committee: [validatorKeyOf(other)] }),
    testSpec({ committee: [validatorKeyOf(validator), validatorKeyOf(other)] }),
    testSpec({ proposers: [other.address] }),
    testSpec({ proposers: [validator.address, other.address] }),
  ];
  const hashes = variants.map((spec) => genesisOf(spec).block.hash);
  assert.equal(new Set([base, ...hashes]).size, variants.length + 1, 'each spec has its own genesis hash');
  assert.equal(genesisOf(testSpec()).block.hash, base, 'and the same spec the same one');
});

test('a store of another chain or schema refuses to open', async (t) => {
  const dir = tempDir(t);
  const { ledger } = await openChain(dir);
  await ledger.close();
  await assertCode(openChain(dir, testSpec({ chainId: 99n })), 'STORE_CHAIN_MISMATCH');
  await assertCode(openChain(dir, testSpec({ alloc: new Map() })), 'STORE_CHAIN_MISMATCH');
  const other = new MemorySigner(new Uint8Array(32).fill(4));
  await assertCode(openChain(dir, testSpec({ committee: [validatorKeyOf(other)] })), 'STORE_CHAIN_MISMATCH');
  await assertCode(openChain(dir, testSpec({ proposers: [other.address] })), 'STORE_CHAIN_MISMATCH');
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.put(new Uint8Array([0x01, ...new TextEncoder().encode('schema')]), new TextEncoder().encode('999'));
  await db.close();
  await assertCode(openChain(dir), 'STORE_SCHEMA_MISMATCH');
});

test('a data directory in use by another ledger is refused with STORE_LOCKED', async (t) => {
  const dir = tempDir(t);
  const { ledger } = await openChain(dir);
  t.after(() => ledger.close());
  await assertCode(openChain(dir), 'STORE_LOCKED');
});
