// Unit tests of the block-level codecs and hashes: header encoding, hashes and strict decoding (chain/block.ts
// over chain/rlp.ts), receipts and the Ethereum logs bloom, the RFC 6962 Merkle root (chain/merkle.ts), the
// consensus digest (chain/signing.ts) and commit certificates (chain/certificate.ts). Reference values are
// recomputed here with @noble/hashes and ethers, not with the code under test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { encodeRlp } from 'ethers';
import {
  EMPTY_BLOOM,
  bloomMayContain,
  decodeHeader,
  decodeReceipt,
  encodeHeader,
  encodeReceipt,
  headerHash,
  logsBloom,
  orBloom,
  sealHash,
  type BlockHeader,
} from '../../chain/block.ts';
import {
  decodeCertificate,
  encodeCertificate,
  quorum,
  validatorKeyOf,
  verifyCertificate,
  type CommitCertificate,
  type CommitSignature,
} from '../../chain/certificate.ts';
import { bytesToHex, hexToBytes } from '../../chain/crypto/index.ts';
import { hasCode } from '../../chain/errors.ts';
import { MerkleAccumulator, merkleRoot } from '../../chain/merkle.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList, rlpUint, type RlpInput, type RlpItem } from '../../chain/rlp.ts';
import { consensusDigest, type SignPurpose } from '../../chain/signing.ts';
import type { Log, Receipt } from '../../chain/types.ts';
import { MemorySigner } from '../../device/index.ts';

const enc = new TextEncoder();

/** `n` bytes all equal to `b`, as 0x hex. */
function filled(n: number, b: number): string {
  return '0x' + b.toString(16).padStart(2, '0').repeat(n);
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Asserts that `fn` throws a DatagateError with `code`. */
function throwsCode(fn: () => unknown, code: string, what = ''): void {
  assert.throws(fn, (err: unknown) => hasCode(err, code), `expected ${code}${what ? ' for ' + what : ''}`);
}

// ---------------------------------------------------------------- headers

const SEAL = Uint8Array.from({ length: 65 }, (_, i) => (i * 7 + 3) & 0xff);

function sampleHeader(over: Partial<BlockHeader> = {}): BlockHeader {
  const bloom = new Uint8Array(256);
  bloom[0] = 0x80;
  bloom[255] = 0x01;
  return {
    parentHash: filled(32, 0x11),
    number: 42n,
    timestamp: 1_700_000_000_123,
    proposer: filled(20, 0xab),
    stateRoot: filled(32, 0x22),
    txRoot: filled(32, 0x33),
    receiptRoot: filled(32, 0x44),
    logsBloom: bloom,
    gasUsed: 21_000n,
    gasLimit: 30_000_000n,
    baseFee: 1_000_000_007n,
    term: 3n,
    round: 2,
    seal: SEAL,
    ...over,
  };
}

/** The header's 14 RLP fields, decoded back from its canonical bytes, for hand-made corruptions. */
function headerItems(h: BlockHeader = sampleHeader()): RlpItem[] {
  const items = rlpList(rlpDecode(encodeHeader(h)));
  assert.ok(items !== null && items.length === 14);
  return items;
}

test('header encode/decode round trip keeps every field, with a 65-byte seal and with an empty seal', () => {
  for (const h of [sampleHeader(), sampleHeader({ seal: new Uint8Array(0), number: 0n, timestamp: 0, round: 0, term: 0n, gasUsed: 0n })]) {
    const back = decodeHeader(encodeHeader(h));
    assert.deepEqual({ ...back, logsBloom: [...back.logsBloom], seal: [...back.seal] }, { ...h, logsBloom: [...h.logsBloom], seal: [...h.seal] });
    assert.equal(headerHash(back), headerHash(h));
  }
  // The largest values the decoder admits for the number-typed fields survive too.
  const edge = sampleHeader({ timestamp: Number.MAX_SAFE_INTEGER, round: 0xffffffff, number: (1n << 256n) - 1n });
  const back = decodeHeader(encodeHeader(edge));
  assert.equal(back.timestamp, Number.MAX_SAFE_INTEGER);
  assert.equal(back.round, 0xffffffff);
  assert.equal(back.number, (1n << 256n) - 1n);
});

test('headerHash is keccak of the encoded header and sealHash is keccak of the 13 fields without the seal', () => {
  const h = sampleHeader();
  assert.equal(headerHash(h), bytesToHex(keccak_256(encodeHeader(h))));
  const withoutSeal = encodeRlp(headerItems(h).slice(0, 13).map((i) => bytesToHex(i as Uint8Array)));
  assert.deepEqual(sealHash(h), keccak_256(hexToBytes(withoutSeal)));
});

test('headerHash changes when any field changes, seal included; sealHash ignores only the seal', () => {
  const base = sampleHeader();
  const flipLast = (hex: string) => hex.slice(0, -2) + (hex.endsWith('00') ? '01' : '00');
  const bloom = Uint8Array.from(base.logsBloom);
  bloom[100] = 0x04;
  const variants: Record<keyof BlockHeader, Partial<BlockHeader>> = {
    parentHash: { parentHash: flipLast(base.parentHash) },
    number: { number: base.number + 1n },
    timestamp: { timestamp: base.timestamp + 1 },
    proposer: { proposer: flipLast(base.proposer) },
    stateRoot: { stateRoot: flipLast(base.stateRoot) },
    txRoot: { txRoot: flipLast(base.txRoot) },
    receiptRoot: { receiptRoot: flipLast(base.receiptRoot) },
    logsBloom: { logsBloom: bloom },
    gasUsed: { gasUsed: base.gasUsed + 1n },
    gasLimit: { gasLimit: base.gasLimit + 1n },
    baseFee: { baseFee: base.baseFee + 1n },
    term: { term: base.term + 1n },
    round: { round: base.round + 1 },
    seal: { seal: Uint8Array.from(SEAL, (b, i) => (i === 64 ? b ^ 1 : b)) },
  };
  const hash = headerHash(base);
  const seal = bytesToHex(sealHash(base));
  for (const [field, change] of Object.entries(variants)) {
    const h = sampleHeader(change);
    assert.notEqual(headerHash(h), hash, `headerHash must cover ${field}`);
    if (field === 'seal') assert.equal(bytesToHex(sealHash(h)), seal, 'sealHash must not cover the seal');
    else assert.notEqual(bytesToHex(sealHash(h)), seal, `sealHash must cover ${field}`);
  }
  const unsealed = sampleHeader({ seal: new Uint8Array(0) });
  assert.notEqual(headerHash(unsealed), hash);
  assert.equal(bytesToHex(sealHash(unsealed)), seal);
});

test('decodeHeader rejects malformed bytes with BLOCK_INVALID', () => {
  const good = encodeHeader(sampleHeader());
  const items = headerItems();
  const withField = (i: number, v: RlpItem): Uint8Array => rlpEncode(items.map((x, j) => (j === i ? v : x)) as RlpInput);
  const cases: Record<string, Uint8Array> = {
    'not RLP (0xdeadbeef)': hexToBytes('0xdeadbeef'),
    'empty input': new Uint8Array(0),
    'truncated header': good.subarray(0, good.length - 1),
    'trailing byte': concatBytes(good, new Uint8Array([0])),
    'a byte string, not a list': rlpEncode(enc.encode('header')),
    'empty list': rlpEncode([]),
    '13 fields': rlpEncode(items.slice(0, 13) as RlpInput),
    '15 fields': rlpEncode([...items, new Uint8Array(0)] as RlpInput),
    '31-byte parentHash': withField(0, hexToBytes(filled(31, 0x11))),
    '33-byte stateRoot': withField(4, hexToBytes(filled(33, 0x22))),
    '19-byte proposer': withField(3, hexToBytes(filled(19, 0xab))),
    'empty txRoot': withField(5, new Uint8Array(0)),
    '255-byte logsBloom': withField(7, new Uint8Array(255)),
    'receiptRoot as a list': withField(6, [hexToBytes(filled(32, 0x44))]),
    'number with a leading zero byte': withField(1, Uint8Array.of(0, 42)),
    'gasUsed with a leading zero byte': withField(8, Uint8Array.of(0, 0x52, 0x08)),
    'round as a single zero byte': withField(12, Uint8Array.of(0)),
    'baseFee of 33 bytes': withField(10, Uint8Array.of(1, ...new Uint8Array(32))),
    'timestamp above 2^53 - 1': withField(2, rlpDecode(rlpEncode(BigInt(Number.MAX_SAFE_INTEGER) + 1n))),
    'round above 2^32 - 1': withField(12, rlpDecode(rlpEncode(1n << 32n))),
    '64-byte seal': withField(13, SEAL.subarray(0, 64)),
    '66-byte seal': withField(13, concatBytes(SEAL, Uint8Array.of(0))),
    'seal as a list': withField(13, [SEAL]),
  };
  for (const [what, bytes] of Object.entries(cases)) throwsCode(() => decodeHeader(bytes), 'BLOCK_INVALID', what);
});

// ---------------------------------------------------------------- rlp helpers

test('rlp: encoding matches ethers, round trips, and rlpUint admits only canonical integers', () => {
  const input: RlpInput = [0n, 1, 127, 128n, 1024, (1n << 256n) - 1n, hexToBytes('0x'), hexToBytes('0x00'), [[], [hexToBytes('0xdead')]]];
  const ethersForm = ['0x', '0x01', '0x7f', '0x80', '0x0400', '0x' + 'ff'.repeat(32), '0x', '0x00', [[], ['0xdead']]];
  assert.equal(bytesToHex(rlpEncode(input)), encodeRlp(ethersForm));
  const back = rlpList(rlpDecode(rlpEncode(input)));
  assert.ok(back !== null);
  assert.deepEqual(back.slice(0, 6).map(rlpUint), [0n, 1n, 127n, 128n, 1024n, (1n << 256n) - 1n]);
  assert.equal(rlpUint(back[7]), null, 'a single zero byte is not canonical');
  assert.equal(rlpUint(Uint8Array.of(0, 1)), null);
  assert.equal(rlpUint(new Uint8Array(33).fill(1)), null);
  assert.equal(rlpUint([]), null);
  assert.equal(rlpUint(undefined), null);
  assert.equal(rlpBytes(back[8]), null);
  assert.equal(rlpList(back[0]), null);
  assert.throws(() => rlpDecode(hexToBytes('0x8105')), 'a single byte below 0x80 must not carry a length prefix');
  assert.throws(() => rlpDecode(hexToBytes('0xc10102')), 'trailing bytes');
});

// ---------------------------------------------------------------- receipts and blooms

const LOG_A: Log = {
  address: filled(20, 0x5a),
  topics: [filled(32, 0x01), bytesToHex(keccak_256(enc.encode('Transfer(address,address,uint256)')))],
  data: Uint8Array.of(0, 1, 2, 3, 0xff),
};
const LOG_B: Log = { address: filled(20, 0x6b), topics: [], data: new Uint8Array(0) };

function sampleReceipt(status: 0 | 1, logs: readonly Log[]): Receipt {
  return {
    status,
    gasUsed: 52_000n,
    cumulativeGasUsed: 73_000n,
    effectiveGasPrice: 1_000_000_007n,
    logs,
    logsBloom: logsBloom(logs),
    contractAddress: null,
  };
}

test('receipt encode/decode round trip keeps status, gas, price and logs (address, topics, data)', () => {
  for (const r of [sampleReceipt(1, [LOG_A, LOG_B]), sampleReceipt(0, []), sampleReceipt(1, [LOG_B])]) {
    const back = decodeReceipt(encodeReceipt(r));
    assert.equal(back.status, r.status);
    assert.equal(back.gasUsed, r.gasUsed);
    assert.equal(back.cumulativeGasUsed, r.cumulativeGasUsed);
    assert.equal(back.effectiveGasPrice, r.effectiveGasPrice);
    assert.equal(back.contractAddress, null);
    assert.deepEqual(
      back.logs.map((l) => ({ ...l, data: [...l.data] })),
      r.logs.map((l) => ({ ...l, data: [...l.data] })),
    );
    assert.deepEqual([...back.logsBloom], [...r.logsBloom]);
  }
});

test('decodeReceipt of well-formed RLP of the wrong shape throws STORE_CORRUPT', () => {
  const good = rlpList(rlpDecode(encodeReceipt(sampleReceipt(1, [LOG_A]))));
  assert.ok(good !== null);
  const cases: Record<string, RlpInput> = {
    'empty list': [],
    'a byte string': enc.encode('receipt'),
    'four fields': good.slice(0, 4) as RlpInput,
    'six fields': [...good, new Uint8Array(0)] as RlpInput,
    'logs as bytes': [...good.slice(0, 4), enc.encode('logs')] as RlpInput,
    'a log that is bytes': [...good.slice(0, 4), [enc.encode('log')]] as RlpInput,
    'a log whose topics are bytes': [...good.slice(0, 4), [[hexToBytes(LOG_A.address), new Uint8Array(32), new Uint8Array(0)]]] as RlpInput,
    'a topic that is a list': [...good.slice(0, 4), [[hexToBytes(LOG_A.address), [[]], new Uint8Array(0)]]] as RlpInput,
    'gasUsed with a leading zero': [good[0], Uint8Array.of(0, 1), ...good.slice(2)] as RlpInput,
  };
  for (const [what, input] of Object.entries(cases)) throwsCode(() => decodeReceipt(rlpEncode(input)), 'STORE_CORRUPT', what);
});

test(
  'decodeReceipt of bytes that are not RLP throws STORE_CORRUPT',
  () => {
    for (const hex of ['0xdeadbeef', '0x', '0xc5010203', '0xb8']) throwsCode(() => decodeReceipt(hexToBytes(hex)), 'STORE_CORRUPT', hex);
  },
);

/** Bit indices (0..2047) Ethereum's bloom sets for `item`, recomputed independently of chain/block.ts. */
function bloomBits(item: Uint8Array): number[] {
  const h = keccak_256(item);
  return [0, 2, 4].map((i) => ((h[i]! << 8) | h[i + 1]!) & 0x7ff);
}

/** Every bit index set in a 256-byte bloom (bit i lives in byte 255 - floor(i / 8) at position i % 8). */
function setBits(bloom: Uint8Array): number[] {
  const bits: number[] = [];
  for (let i = 0; i < 2048; i++) if ((bloom[255 - Math.floor(i / 8)]! >> i % 8) & 1) bits.push(i);
  return bits;
}

test('logsBloom sets exactly the three keccak-derived bits of each address and topic', () => {
  assert.equal(logsBloom([]).length, 256);
  assert.deepEqual(setBits(logsBloom([])), []);
  const single = logsBloom([LOG_B]);
  assert.deepEqual(setBits(single), [...new Set(bloomBits(hexToBytes(LOG_B.address)))].sort((a, b) => a - b));
  const items = [LOG_A.address, ...LOG_A.topics, LOG_B.address].map(hexToBytes);
  const expected = [...new Set(items.flatMap(bloomBits))].sort((a, b) => a - b);
  assert.deepEqual(setBits(logsBloom([LOG_A, LOG_B])), expected);
});

test('bloomMayContain: true for every address and topic of the logs, false for an absent value, nothing in an empty bloom', () => {
  const bloom = logsBloom([LOG_A]);
  for (const item of [LOG_A.address, ...LOG_A.topics]) assert.equal(bloomMayContain(bloom, hexToBytes(item)), true, item);
  // Pick a value whose bits are provably not all set, so the false answer is not luck.
  const present = new Set(setBits(bloom));
  let absent: Uint8Array | null = null;
  for (let i = 0; absent === null; i++) {
    const candidate = keccak_256(enc.encode(`absent-${i}`));
    if (!bloomBits(candidate).every((b) => present.has(b))) absent = candidate;
  }
  assert.equal(bloomMayContain(bloom, absent), false);
  assert.equal(bloomMayContain(bloom, hexToBytes(LOG_B.address)), bloomBits(hexToBytes(LOG_B.address)).every((b) => present.has(b)));
  for (const item of [LOG_A.address, ...LOG_A.topics, LOG_B.address]) {
    assert.equal(bloomMayContain(EMPTY_BLOOM, hexToBytes(item)), false);
    assert.equal(bloomMayContain(new Uint8Array(256), hexToBytes(item)), false);
  }
  assert.deepEqual(setBits(EMPTY_BLOOM), [], 'EMPTY_BLOOM must stay empty');
});

test('orBloom ORs a receipt bloom into a block bloom', () => {
  const block = new Uint8Array(256);
  orBloom(block, logsBloom([LOG_A]));
  orBloom(block, logsBloom([LOG_B]));
  assert.deepEqual([...block], [...logsBloom([LOG_A, LOG_B])]);
});

// ---------------------------------------------------------------- merkle root

const leaf = (item: Uint8Array): Uint8Array => keccak_256(concatBytes(Uint8Array.of(0), item));
const node = (l: Uint8Array, r: Uint8Array): Uint8Array => keccak_256(concatBytes(Uint8Array.of(1), l, r));

/** RFC 6962 MTH over keccak: split at the largest power of two smaller than n. */
function referenceRoot(items: readonly Uint8Array[]): Uint8Array {
  if (items.length === 0) return keccak_256(new Uint8Array(0));
  if (items.length === 1) return leaf(items[0]!);
  let k = 1;
  while (k * 2 < items.length) k *= 2;
  return node(referenceRoot(items.slice(0, k)), referenceRoot(items.slice(k)));
}

const item = (i: number): Uint8Array => enc.encode(`tx-${i}`);

test('merkleRoot of 0, 1 and 2 items, and order matters', () => {
  const [a, b] = [item(0), item(1)];
  assert.deepEqual(merkleRoot([]), keccak_256(new Uint8Array(0)));
  assert.deepEqual(merkleRoot([a]), keccak_256(concatBytes(Uint8Array.of(0), a)));
  assert.deepEqual(merkleRoot([a, b]), keccak_256(concatBytes(Uint8Array.of(1), leaf(a), leaf(b))));
  assert.notDeepEqual(merkleRoot([b, a]), merkleRoot([a, b]));
  assert.deepEqual(merkleRoot([new Uint8Array(0)]), leaf(new Uint8Array(0)));
  // A leaf never poses as an inner node: one item that is the concatenation of two leaf hashes.
  assert.notDeepEqual(merkleRoot([concatBytes(leaf(a), leaf(b))]), merkleRoot([a, b]));
  // The odd last node moves up rather than being duplicated.
  const c = item(2);
  assert.notDeepEqual(merkleRoot([a, b, c]), merkleRoot([a, b, c, c]));
  assert.deepEqual(merkleRoot([a, b, c]), node(node(leaf(a), leaf(b)), leaf(c)));
});

test('merkleRoot equals a recursive RFC 6962 reference for 1..20 items', () => {
  for (let n = 1; n <= 20; n++) {
    const items = Array.from({ length: n }, (_, i) => item(i));
    assert.deepEqual(merkleRoot(items), referenceRoot(items), `n = ${n}`);
    if (n > 1) assert.notDeepEqual(merkleRoot(items.slice(0, -1)), merkleRoot(items), `n = ${n}`);
  }
  const five = Array.from({ length: 5 }, (_, i) => item(i));
  const l = five.map(leaf);
  assert.deepEqual(merkleRoot(five), node(node(node(l[0]!, l[1]!), node(l[2]!, l[3]!)), l[4]!));
});

test('MerkleAccumulator gives merkleRoot at every count from 0 to 600, and can go on after root()', () => {
  const acc = new MerkleAccumulator();
  const items: Uint8Array[] = [];
  assert.deepEqual(acc.root(), merkleRoot([]));
  for (let n = 1; n <= 600; n++) {
    const it = enc.encode(`reading-${n}-${'x'.repeat(n % 17)}`);
    items.push(it);
    acc.append(it);
    assert.equal(acc.count, n);
    if (n <= 70 || n % 37 === 0 || (n & (n - 1)) === 0 || ((n + 1) & n) === 0) assert.deepEqual(acc.root(), merkleRoot(items), `n = ${n}`);
  }
  assert.deepEqual(acc.root(), referenceRoot(items));
});

// ---------------------------------------------------------------- consensus digest

test('consensusDigest is 32 bytes, deterministic, and differs when purpose, chain id, height, round or hash differs', () => {
  const hash = hexToBytes(filled(32, 0x77));
  const base = consensusDigest('commit', 1337n, 10n, 0, hash);
  assert.equal(base.length, 32);
  assert.deepEqual(consensusDigest('commit', 1337n, 10n, 0, Uint8Array.from(hash)), base);
  const others: Uint8Array[] = [
    ...(['seal', 'prepare', 'round-change', 'message'] as SignPurpose[]).map((p) => consensusDigest(p, 1337n, 10n, 0, hash)),
    consensusDigest('commit', 1338n, 10n, 0, hash),
    consensusDigest('commit', 1337n, 11n, 0, hash),
    consensusDigest('commit', 1337n, 10n, 1, hash),
    consensusDigest('commit', 1337n, 10n, 0, hexToBytes(filled(32, 0x78))),
  ];
  const all = new Set([base, ...others].map(bytesToHex));
  assert.equal(all.size, others.length + 1, 'every variation must give a distinct digest');
});

// ---------------------------------------------------------------- certificates

const CHAIN_ID = 1337n;
const HEIGHT = 12n;
const ROUND = 1;
const BLOCK = filled(32, 0xbb);
const signers = [1, 2, 3, 4].map((k) => new MemorySigner(new Uint8Array(32).fill(k)));
const committee = signers.map((s) => validatorKeyOf(s));
const outsider = new MemorySigner(new Uint8Array(32).fill(9));

async function commitSig(
  s: MemorySigner,
  at: { chainId?: bigint; height?: bigint; round?: number; hash?: string; purpose?: SignPurpose } = {},
): Promise<CommitSignature> {
  const digest = consensusDigest(at.purpose ?? 'commit', at.chainId ?? CHAIN_ID, at.height ?? HEIGHT, at.round ?? ROUND, hexToBytes(at.hash ?? BLOCK));
  return { signer: s.address, signature: await s.sign(digest, 'commit') };
}

function cert(signatures: readonly CommitSignature[]): CommitCertificate {
  return { height: HEIGHT, round: ROUND, blockHash: BLOCK, signatures };
}

const verify = (c: CommitCertificate) => verifyCertificate(c, CHAIN_ID, HEIGHT, BLOCK, committee);

test('quorum(n) = ceil((n + f + 1) / 2) with f = floor((n - 1) / 3)', () => {
  assert.equal(quorum(1), 1);
  assert.equal(quorum(4), 3);
  assert.equal(quorum(7), 5);
  assert.deepEqual(
    Array.from({ length: 10 }, (_, i) => quorum(i + 1)),
    [1, 2, 2, 3, 4, 4, 5, 6, 6, 7],
  );
  for (let n = 1; n <= 10; n++) {
    const f = Math.floor((n - 1) / 3);
    assert.equal(quorum(n), Math.floor((n + f + 2) / 2), `n = ${n}`);
  }
});

test('verifyCertificate accepts 3 and 4 distinct committee signatures out of 4', async () => {
  const sigs = await Promise.all(signers.map((s) => commitSig(s)));
  verify(cert(sigs.slice(0, 3)));
  verify(cert(sigs.slice(1)));
  verify(cert([sigs[3]!, sigs[0]!, sigs[2]!]));
  verify(cert(sigs));
});

test('verifyCertificate rejects short, duplicated, foreign, misdirected and malformed signatures with CERT_INVALID', async () => {
  const [a, b, c] = await Promise.all(signers.slice(0, 3).map((s) => commitSig(s)));
  assert.ok(a && b && c);
  const wrongRound = await commitSig(signers[2]!, { round: ROUND + 1 });
  const wrongHeight = await commitSig(signers[2]!, { height: HEIGHT + 1n });
  const wrongHash = await commitSig(signers[2]!, { hash: filled(32, 0xbc) });
  const wrongChain = await commitSig(signers[2]!, { chainId: CHAIN_ID + 1n });
  const wrongPurpose = await commitSig(signers[2]!, { purpose: 'prepare' });
  const highRecid = Uint8Array.from(c.signature);
  highRecid[64] = 2;
  const cases: Record<string, CommitCertificate> = {
    'two signers': cert([a, b]),
    'no signers': cert([]),
    'a duplicate signer counted twice': cert([a, b, b]),
    'a signer outside the committee': cert([a, b, await commitSig(outsider)]),
    'a signature over another round': cert([a, b, wrongRound]),
    'a signature over another height': cert([a, b, wrongHeight]),
    'a signature over another hash': cert([a, b, wrongHash]),
    'a signature over another chain id': cert([a, b, wrongChain]),
    'a signature for another purpose': cert([a, b, wrongPurpose]),
    'a claimed signer that differs from the recovered one': cert([a, b, { signer: signers[3]!.address, signature: c.signature }]),
    'a 66-byte signature': cert([a, b, { signer: c.signer, signature: Uint8Array.of(...c.signature, 0) }]),
    'a recovery id of 2': cert([a, b, { signer: c.signer, signature: highRecid }]),
    'r = 0': cert([a, b, { signer: c.signer, signature: Uint8Array.of(...new Uint8Array(32), ...c.signature.subarray(32)) }]),
  };
  for (const [what, bad] of Object.entries(cases)) throwsCode(() => verify(bad), 'CERT_INVALID', what);
  // r || s without the recovery id is the committee-wide format (P-256 members have none): accepted.
  verify(cert([a, b, { signer: c.signer, signature: c.signature.subarray(0, 64) }]));
  // The certificate itself must name the expected block and height.
  throwsCode(() => verify({ ...cert([a, b, c]), height: HEIGHT + 1n }), 'CERT_INVALID', 'certificate for another height');
  throwsCode(() => verify({ ...cert([a, b, c]), blockHash: filled(32, 0xbc) }), 'CERT_INVALID', 'certificate for another block');
  throwsCode(() => verify({ ...cert([a, b, c]), round: ROUND + 1 }), 'CERT_INVALID', 'certificate claiming another round');
  throwsCode(() => verifyCertificate(cert([a, b, c]), CHAIN_ID + 1n, HEIGHT, BLOCK, committee), 'CERT_INVALID', 'another chain');
});

test('certificate encode/decode round trip, and decodeCertificate of garbage throws CERT_INVALID', async () => {
  const sigs = await Promise.all(signers.slice(0, 3).map((s) => commitSig(s)));
  for (const original of [cert(sigs), cert([]), { ...cert(sigs), round: 0xffffffff, height: 0n }]) {
    const back = decodeCertificate(encodeCertificate(original));
    assert.equal(back.height, original.height);
    assert.equal(back.round, original.round);
    assert.equal(back.blockHash, original.blockHash);
    assert.deepEqual(
      back.signatures.map((s) => [s.signer, bytesToHex(s.signature)]),
      original.signatures.map((s) => [s.signer, bytesToHex(s.signature)]),
    );
  }
  verify(decodeCertificate(encodeCertificate(cert(sigs))));

  const sigItems = sigs.map((s) => [hexToBytes(s.signer), s.signature]);
  const garbage: Record<string, Uint8Array> = {
    'not RLP': hexToBytes('0xdeadbeef'),
    'empty input': new Uint8Array(0),
    'a byte string': rlpEncode(enc.encode('certificate')),
    'three fields': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK)]),
    'five fields': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK), sigItems, []]),
    'height with a leading zero': rlpEncode([Uint8Array.of(0, 12), ROUND, hexToBytes(BLOCK), sigItems]),
    'round above 2^32 - 1': rlpEncode([HEIGHT, 1n << 32n, hexToBytes(BLOCK), sigItems]),
    '31-byte block hash': rlpEncode([HEIGHT, ROUND, hexToBytes(filled(31, 0xbb)), sigItems]),
    'signatures as bytes': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK), enc.encode('sigs')]),
    'a 19-byte signer': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK), [[hexToBytes(filled(19, 1)), sigs[0]!.signature]]]),
    'an entry of three items': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK), [[hexToBytes(sigs[0]!.signer), sigs[0]!.signature, new Uint8Array(0)]]]),
    'an entry that is bytes': rlpEncode([HEIGHT, ROUND, hexToBytes(BLOCK), [sigs[0]!.signature]]),
  };
  for (const [what, bytes] of Object.entries(garbage)) throwsCode(() => decodeCertificate(bytes), 'CERT_INVALID', what);
});
