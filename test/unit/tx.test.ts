// Unit tests of transaction admission (chain/tx.ts): legacy EIP-155 and EIP-1559 transactions signed by ethers
// decode to the same fields, sender and hash ethers reports; each chain rule rejects with its code; and the
// intrinsic gas and effective gas price formulas. Invalid transactions ethers refuses to build are made by
// editing the RLP fields of valid ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Transaction, Wallet, concat, decodeRlp, encodeRlp, getBytes, hexlify, keccak256, toBeHex, type TransactionRequest } from 'ethers';
import { SECP256K1_N, recoverAddress } from '../../chain/crypto/index.ts';
import { hasCode } from '../../chain/errors.ts';
import { MAX_TX_BYTES, decodeSignedTx, effectiveGasPrice, intrinsicGas } from '../../chain/tx.ts';

const CHAIN_ID = 1337n;
const GWEI = 1_000_000_000n;
const wallet = new Wallet('0x' + '4c'.repeat(32));
const FROM = wallet.address.toLowerCase();
const TO = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

const legacyReq: TransactionRequest = {
  type: 0,
  chainId: CHAIN_ID,
  nonce: 7,
  gasPrice: 3n * GWEI,
  gasLimit: 60_000n,
  to: TO,
  value: 10n ** 18n,
  data: '0x00a9059cbb00',
};

const eip1559Req: TransactionRequest = {
  type: 2,
  chainId: CHAIN_ID,
  nonce: 300,
  maxFeePerGas: 50n * GWEI,
  maxPriorityFeePerGas: 2n * GWEI,
  gasLimit: 100_000n,
  to: TO,
  value: 12_345n,
  data: '0xdeadbeef0000',
};

async function sign(req: TransactionRequest): Promise<Uint8Array> {
  return getBytes(await wallet.signTransaction(req));
}

/** Asserts that `fn` throws a DatagateError with `code`. */
function throwsCode(fn: () => unknown, code: string, what = ''): void {
  assert.throws(fn, (err: unknown) => hasCode(err, code), `expected ${code}${what ? ' for ' + what : ''}`);
}

/** The RLP fields of a signed transaction (typed envelopes without their type byte) and a way to rebuild it. */
function fieldsOf(raw: Uint8Array): { fields: string[]; rebuild: (fields: readonly string[]) => Uint8Array } {
  const typed = raw[0]! < 0x7f;
  const fields = decodeRlp(typed ? raw.subarray(1) : raw) as string[];
  const prefix = typed ? raw.subarray(0, 1) : new Uint8Array(0);
  return { fields: [...fields], rebuild: (f) => getBytes(concat([prefix, encodeRlp([...f])])) };
}

/** Minimal big-endian hex of `n` as RLP wants it ('0x' for zero). */
const quantity = (n: bigint): string => (n === 0n ? '0x' : toBeHex(n));

test('a legacy EIP-155 transaction decodes with the fields, sender and hash ethers reports', async () => {
  const raw = await sign(legacyReq);
  const parsed = Transaction.from(await wallet.signTransaction(legacyReq));
  const tx = decodeSignedTx(raw, CHAIN_ID);
  assert.equal(tx.type, 0);
  assert.equal(tx.from, FROM);
  assert.equal(tx.chainId, CHAIN_ID);
  assert.equal(tx.nonce, 7n);
  assert.equal(tx.gasPrice, 3n * GWEI);
  assert.equal(tx.maxFeePerGas, 3n * GWEI);
  assert.equal(tx.maxPriorityFeePerGas, 3n * GWEI);
  assert.equal(tx.gasLimit, 60_000n);
  assert.equal(tx.to, TO.toLowerCase());
  assert.equal(tx.value, 10n ** 18n);
  assert.deepEqual([...tx.data], [0x00, 0xa9, 0x05, 0x9c, 0xbb, 0x00]);
  assert.equal(tx.accessListCost, 0n);
  assert.equal(tx.hash, keccak256(raw));
  assert.equal(tx.hash, parsed.hash);
  assert.deepEqual(tx.raw, raw);
  const sig = parsed.signature!;
  assert.equal(tx.r, BigInt(sig.r));
  assert.equal(tx.s, BigInt(sig.s));
  assert.equal(tx.yParity, sig.yParity);
  assert.equal(tx.v, CHAIN_ID * 2n + 35n + BigInt(sig.yParity));
});

test('an EIP-1559 (type 2) transaction decodes with the fields, sender and hash ethers reports', async () => {
  const raw = await sign(eip1559Req);
  const parsed = Transaction.from(await wallet.signTransaction(eip1559Req));
  const tx = decodeSignedTx(raw, CHAIN_ID);
  assert.equal(raw[0], 2);
  assert.equal(tx.type, 2);
  assert.equal(tx.from, FROM);
  assert.equal(tx.chainId, CHAIN_ID);
  assert.equal(tx.nonce, 300n);
  assert.equal(tx.maxFeePerGas, 50n * GWEI);
  assert.equal(tx.maxPriorityFeePerGas, 2n * GWEI);
  assert.equal(tx.gasPrice, null);
  assert.equal(tx.gasLimit, 100_000n);
  assert.equal(tx.to, TO.toLowerCase());
  assert.equal(tx.value, 12_345n);
  assert.deepEqual([...tx.data], [0xde, 0xad, 0xbe, 0xef, 0, 0]);
  assert.equal(tx.hash, keccak256(raw));
  assert.equal(tx.hash, parsed.hash);
  assert.equal(tx.r, BigInt(parsed.signature!.r));
  assert.equal(tx.s, BigInt(parsed.signature!.s));
  assert.equal(tx.yParity, parsed.signature!.yParity);
  assert.equal(tx.v, BigInt(parsed.signature!.yParity));
});

test('a transaction without a recipient decodes with to = null; the sender of another key is that key', async () => {
  const other = new Wallet('0x' + '5d'.repeat(32));
  const raw = getBytes(await other.signTransaction({ ...eip1559Req, to: null, nonce: 0 }));
  const tx = decodeSignedTx(raw, CHAIN_ID);
  assert.equal(tx.to, null);
  assert.equal(tx.nonce, 0n);
  assert.equal(tx.from, other.address.toLowerCase());
});

test('a transaction signed for another chain is rejected with TX_WRONG_CHAIN_ID', async () => {
  for (const req of [legacyReq, eip1559Req]) {
    const raw = await sign({ ...req, chainId: 1n });
    throwsCode(() => decodeSignedTx(raw, CHAIN_ID), 'TX_WRONG_CHAIN_ID', `type ${req.type}`);
    assert.equal(decodeSignedTx(raw, 1n).chainId, 1n);
  }
});

test('a legacy transaction signed without a chain id is rejected with TX_UNPROTECTED', () => {
  const tx = Transaction.from({ type: 0, nonce: 1, gasPrice: 3n * GWEI, gasLimit: 21_000n, to: TO, value: 1n, data: '0x' });
  tx.signature = wallet.signingKey.sign(tx.unsignedHash);
  const raw = getBytes(tx.serialized);
  const v = BigInt(fieldsOf(raw).fields[6]!);
  assert.ok(v === 27n || v === 28n, 'pre-EIP-155 v');
  throwsCode(() => decodeSignedTx(raw, CHAIN_ID), 'TX_UNPROTECTED');
  throwsCode(() => decodeSignedTx(raw, 1n), 'TX_UNPROTECTED');
});

test('a signature with s in the upper half of the curve order is rejected with TX_HIGH_S', async () => {
  // Legacy: [nonce, gasPrice, gas, to, value, data, v, r, s]; type 2: [..., accessList, yParity, r, s].
  for (const req of [legacyReq, eip1559Req]) {
    const raw = await sign(req);
    const { fields, rebuild } = fieldsOf(raw);
    const low = decodeSignedTx(raw, CHAIN_ID);
    const [vAt, sAt] = req.type === 0 ? [6, 8] : [9, 11];
    const highS = SECP256K1_N - low.s;
    const flipped = [...fields];
    flipped[sAt] = quantity(highS);
    flipped[vAt] = quantity(req.type === 0 ? CHAIN_ID * 2n + 35n + BigInt(low.yParity ^ 1) : BigInt(low.yParity ^ 1));
    // The malleated signature is still a valid one for the same sender: only the EIP-2 rule can refuse it.
    const digest = getBytes(Transaction.from(hexlify(raw)).unsignedHash);
    assert.equal(recoverAddress(digest, low.r, highS, (low.yParity ^ 1) as 0 | 1), FROM);
    throwsCode(() => decodeSignedTx(rebuild(flipped), CHAIN_ID), 'TX_HIGH_S', `type ${req.type}`);
  }
});

test('a signature with r = 0 is rejected with TX_BAD_SIGNATURE', async () => {
  for (const req of [legacyReq, eip1559Req]) {
    const { fields, rebuild } = fieldsOf(await sign(req));
    const rAt = req.type === 0 ? 7 : 10;
    const zeroR = [...fields];
    zeroR[rAt] = '0x';
    throwsCode(() => decodeSignedTx(rebuild(zeroR), CHAIN_ID), 'TX_BAD_SIGNATURE', `type ${req.type}`);
  }
});

test('malformed bytes are rejected with TX_MALFORMED', async () => {
  const legacy = await sign(legacyReq);
  const typed = await sign(eip1559Req);
  const noise = getBytes(keccak256(new TextEncoder().encode('noise')));
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    'an empty list (0xc0)': Uint8Array.of(0xc0),
    'random bytes after 0xc0': Uint8Array.of(0xc0, ...noise),
    'random bytes after 0xf8': Uint8Array.of(0xf8, ...noise),
    'random bytes after 0xff': Uint8Array.of(0xff, ...noise),
    'a list of 9 empty strings': getBytes(encodeRlp(Array.from({ length: 9 }, () => '0x'))),
    'legacy truncated by one byte': legacy.subarray(0, legacy.length - 1),
    'legacy truncated to its first 10 bytes': legacy.subarray(0, 10),
    'type 2 truncated by one byte': typed.subarray(0, typed.length - 1),
    'type 2 truncated to its type byte': typed.subarray(0, 1),
    'legacy with a trailing byte': Uint8Array.of(...legacy, 0),
    'type 2 with a trailing byte': Uint8Array.of(...typed, 0),
  };
  for (const [what, raw] of Object.entries(cases)) throwsCode(() => decodeSignedTx(raw, CHAIN_ID), 'TX_MALFORMED', what);
  const unsigned = getBytes(Transaction.from(eip1559Req as Parameters<typeof Transaction.from>[0]).unsignedSerialized);
  throwsCode(() => decodeSignedTx(unsigned, CHAIN_ID), 'TX_MALFORMED', 'an unsigned type 2 transaction');
});

test(
  'a non-canonical RLP encoding of a valid transaction is rejected with TX_MALFORMED',
  async () => {
    const typed = await sign(eip1559Req);
    const legacy = await sign(legacyReq);
    const t = fieldsOf(typed);
    const l = fieldsOf(legacy);
    const leadingZeroNonce = [...t.fields];
    leadingZeroNonce[1] = '0x00' + t.fields[1]!.slice(2);
    const leadingZeroValue = [...l.fields];
    leadingZeroValue[4] = '0x00' + l.fields[4]!.slice(2);
    // 0x02 f8 LL ... -> 0x02 f9 00 LL ...: the same list with a two-byte length that has a leading zero.
    const longLength = Uint8Array.of(0x02, 0xf9, 0x00, ...typed.subarray(2));
    const cases: Record<string, Uint8Array> = {
      'type 2 nonce with a leading zero byte': t.rebuild(leadingZeroNonce),
      'legacy value with a leading zero byte': l.rebuild(leadingZeroValue),
      'type 2 list length in a non-minimal form': longLength,
    };
    assert.equal(typed[1], 0xf8, 'the sample must use a one-byte list length');
    for (const [what, raw] of Object.entries(cases)) throwsCode(() => decodeSignedTx(raw, CHAIN_ID), 'TX_MALFORMED', what);
  },
);

test('a transaction larger than 128 KiB is rejected with TX_TOO_LARGE; one of exactly 128 KiB is accepted', async () => {
  assert.equal(MAX_TX_BYTES, 128 * 1024);
  const big = await sign({ ...eip1559Req, data: hexlify(new Uint8Array(MAX_TX_BYTES)), gasLimit: 30_000_000n });
  assert.ok(big.length > MAX_TX_BYTES);
  throwsCode(() => decodeSignedTx(big, CHAIN_ID), 'TX_TOO_LARGE');
  // Not even the parse is attempted: any byte string over the limit is refused on its size alone.
  throwsCode(() => decodeSignedTx(new Uint8Array(MAX_TX_BYTES + 1).fill(0xc0), CHAIN_ID), 'TX_TOO_LARGE', 'oversized garbage');
  // Exactly at the limit: size the data from the envelope overhead, then step by one byte (r and s vary in length).
  const signWith = (len: number) => sign({ ...eip1559Req, data: hexlify(new Uint8Array(len).fill(1)), gasLimit: 30_000_000n });
  let len = MAX_TX_BYTES - ((await signWith(MAX_TX_BYTES - 1000)).length - (MAX_TX_BYTES - 1000));
  let exact: Uint8Array | null = null;
  for (let tries = 0; exact === null && tries < 8; tries++) {
    const raw = await signWith(len);
    if (raw.length === MAX_TX_BYTES) exact = raw;
    else len += raw.length < MAX_TX_BYTES ? 1 : -1;
  }
  assert.ok(exact !== null, 'found a data length giving an envelope of exactly MAX_TX_BYTES');
  assert.equal(decodeSignedTx(exact, CHAIN_ID).from, FROM);
});

test('type 1 and unknown type bytes are rejected with TX_UNSUPPORTED_TYPE', async () => {
  const type1 = await sign({ type: 1, chainId: CHAIN_ID, nonce: 0, gasPrice: GWEI, gasLimit: 21_000n, to: TO, value: 1n, accessList: [] });
  assert.equal(type1[0], 1);
  throwsCode(() => decodeSignedTx(type1, CHAIN_ID), 'TX_UNSUPPORTED_TYPE', 'type 1');
  const body = (await sign(eip1559Req)).subarray(1);
  for (const type of [0x00, 0x01, 0x03, 0x04, 0x7e]) {
    throwsCode(() => decodeSignedTx(Uint8Array.of(type, ...body), CHAIN_ID), 'TX_UNSUPPORTED_TYPE', `type byte 0x${type.toString(16)}`);
  }
});

test('intrinsicGas: 21000, plus 4 per zero and 16 per nonzero data byte, plus the access-list cost', async () => {
  assert.equal(intrinsicGas({ data: new Uint8Array(0), accessListCost: 0n }), 21_000n);
  assert.equal(intrinsicGas({ data: Uint8Array.of(0, 0, 0), accessListCost: 0n }), 21_000n + 12n);
  assert.equal(intrinsicGas({ data: Uint8Array.of(1, 0xff), accessListCost: 0n }), 21_000n + 32n);
  assert.equal(intrinsicGas({ data: Uint8Array.of(0, 1, 0, 2, 3), accessListCost: 0n }), 21_000n + 2n * 4n + 3n * 16n);
  assert.equal(intrinsicGas({ data: new Uint8Array(0), accessListCost: 4_300n }), 25_300n);

  // Through decoding: eip1559Req data 0xdeadbeef0000 is 4 nonzero and 2 zero bytes.
  const plain = decodeSignedTx(await sign(eip1559Req), CHAIN_ID);
  assert.equal(plain.accessListCost, 0n);
  assert.equal(intrinsicGas(plain), 21_000n + 4n * 16n + 2n * 4n);
  const legacy = decodeSignedTx(await sign(legacyReq), CHAIN_ID);
  assert.equal(intrinsicGas(legacy), 21_000n + 4n * 16n + 2n * 4n, 'legacy data 0x00a9059cbb00');

  const accessList = [
    { address: TO, storageKeys: ['0x' + '00'.repeat(32), '0x' + '00'.repeat(31) + '01'] },
    { address: '0x' + '11'.repeat(20), storageKeys: [] },
    { address: '0x' + '22'.repeat(20), storageKeys: ['0x' + 'ab'.repeat(32)] },
  ];
  const withList = decodeSignedTx(await sign({ ...eip1559Req, accessList }), CHAIN_ID);
  const listCost = 3n * 2_400n + 3n * 1_900n;
  assert.equal(withList.accessListCost, listCost);
  assert.equal(intrinsicGas(withList), 21_000n + 4n * 16n + 2n * 4n + listCost);
});

test('effectiveGasPrice = min(maxFeePerGas, baseFee + maxPriorityFeePerGas)', async () => {
  const tx = { maxFeePerGas: 100n, maxPriorityFeePerGas: 5n };
  assert.equal(effectiveGasPrice(tx, 0n), 5n);
  assert.equal(effectiveGasPrice(tx, 90n), 95n);
  assert.equal(effectiveGasPrice(tx, 95n), 100n);
  assert.equal(effectiveGasPrice(tx, 96n), 100n);
  assert.equal(effectiveGasPrice(tx, 1_000n), 100n);
  assert.equal(effectiveGasPrice({ maxFeePerGas: 7n, maxPriorityFeePerGas: 0n }, 3n), 3n);

  const typed = decodeSignedTx(await sign(eip1559Req), CHAIN_ID);
  assert.equal(effectiveGasPrice(typed, 10n * GWEI), 12n * GWEI);
  assert.equal(effectiveGasPrice(typed, 49n * GWEI), 50n * GWEI);
  // Legacy: fee cap and tip are both the gas price, so the price paid is the gas price at any base fee up to it.
  const legacy = decodeSignedTx(await sign(legacyReq), CHAIN_ID);
  assert.equal(effectiveGasPrice(legacy, 1n * GWEI), 3n * GWEI);
  assert.equal(effectiveGasPrice(legacy, 3n * GWEI), 3n * GWEI);
});
