// Segments (gateway/pipeline): the readings codec and manifest, sealing and opening with every check a buyer
// makes (each tamper case with its own code), a seeded fuzz of the readings decoder, key wrapping under the
// master key, and the master key file's permissions.
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import type { RlpInput, Signer } from '../../chain/index.ts';
import { hasCode, keccak256, merkleRoot, rlpEncode } from '../../chain/index.ts';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import type { Reading } from '../../sensors/index.ts';
import { mulberry32 } from '../../sensors/index.ts';
import {
  decodeEnvelope, encodeEnvelope, loadOrCreateMasterKey, openSegment, readManifest, sealSegment, unwrapKey, wrapKey,
} from '../../gateway/pipeline/segment-crypto.ts';
import type { SegmentManifest, SignedManifest } from '../../gateway/pipeline/segment-format.ts';
import {
  ReadingsBuilder, decodeReadings, encodeReadingLeaf, encodeReadings, encodeSegmentReadings, manifestDigest, manifestHash, signManifest,
  summarizeReadings, verifyManifest,
} from '../../gateway/pipeline/segment-format.ts';
import { tempDir } from '../helpers/chain.ts';
import { expectCode as rejects } from '../helpers/expect-code.ts';

const K1 = new MemorySigner(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const OTHER_K1 = new MemorySigner(Uint8Array.from({ length: 32 }, (_, i) => 200 - i));
const P256 = new MemoryP256Signer(Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i));
const T0 = Date.UTC(2024, 4, 1);

/** Value readings with gaps in seq, a ts that steps back now and then, -0, and some units and qualities. */
function valueReadings(n: number, stream = 'greenhouse/temperature'): Reading[] {
  return Array.from({ length: n }, (_, i) => {
    const r: Reading = { stream, seq: 7 + i + Math.floor(i / 3), ts: T0 + i * 1000 - (i % 5 === 4 ? 2500 : 0), value: i === 0 ? -0 : 20 + Math.sin(i) * 3.25 };
    return i % 4 === 0 ? { ...r, unit: '°C', quality: 0.5 } : r;
  });
}

function valuesReadings(stream = 'boat/gps'): Reading[] {
  return [
    { stream, seq: 0, ts: T0 + 5000, values: { lat: 59.91, lon: 10.75, alt: 12.5 }, unit: 'deg', quality: 1 },
    { stream, seq: 1, ts: T0 + 4000, values: { lon: 10.76, lat: 59.92, alt: 12.25 }, unit: 'deg', quality: 2 },
    { stream, seq: 2, ts: T0 + 6000, values: { '10': 1, '2': 2, '': 0, __proto__x: 3, 'ünï,"côde"': -1.5e300, '\uFEFFbom': 5e-324 } },
    { stream, seq: 5, ts: T0 + 7000, values: Object.fromEntries([['__proto__', 42]]) },
    { stream, seq: 6, ts: T0 + 8000, values: {}, unit: '' },
  ];
}


/** An envelope whose manifest is `signed`, encrypting `readings` under `key` with the AAD that manifest asks for. */
function envelopeFor(signed: SignedManifest, readings: readonly Reading[], key: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(24).fill(9);
  const ciphertext = xchacha20poly1305(key, nonce, manifestHash(signed)).encrypt(encodeReadings(readings));
  return encodeEnvelope({ nonce, manifest: signed, ciphertext });
}

for (const [name, signer, readings] of [
  ['value readings, secp256k1 device key', K1, valueReadings(50)],
  ['values readings, P-256 device key', P256, valuesReadings()],
] as const) {
  test(`seal and open round trip: ${name}`, async () => {
    const stream = readings[0]!.stream;
    const { manifest, key, envelope } = await sealSegment(readings, stream, signer);
    assert.equal(key.length, 32);
    assert.deepEqual(openSegment(envelope, key), readings);
    assert.deepEqual(readManifest(envelope), manifest);
    assert.equal(manifest.signature.length, signer.keyType === 'secp256k1' ? 65 : 64);
    assert.deepEqual(manifest.device, { address: signer.address, keyType: signer.keyType, publicKey: signer.publicKey });
    assert.deepEqual(manifest.keyCommitment, keccak256(key));
    assert.equal(manifest.stream, stream);
    assert.equal(manifest.count, readings.length);
    assert.equal(manifest.firstSeq, readings[0]!.seq);
    assert.equal(manifest.lastSeq, readings[readings.length - 1]!.seq);
    assert.equal(manifest.firstTs, Math.min(...readings.map((r) => r.ts)));
    assert.equal(manifest.lastTs, Math.max(...readings.map((r) => r.ts)));
    // Two seals of the same readings share nothing secret: fresh key, fresh nonce.
    const again = await sealSegment(readings, stream, signer);
    assert.notDeepEqual(again.key, key);
    assert.notDeepEqual(decodeEnvelope(again.envelope).nonce, decodeEnvelope(envelope).nonce);
  });
}

test('schema names the distinct shapes; values decode as own properties whatever their names', async () => {
  const readings = valuesReadings();
  const { manifest, key, envelope } = await sealSegment(readings, 'boat/gps', K1);
  assert.equal(manifest.schema, 'values("","10","2","__proto__x","ünï,\\"côde\\"","\uFEFFbom"); values("__proto__"); values("alt","lat","lon") "deg"; values() ""');
  const opened = openSegment(envelope, key);
  assert.equal(Object.getPrototypeOf(opened[3]!.values), Object.prototype);
  assert.deepEqual(Object.keys(opened[3]!.values!), ['__proto__']);
  assert.equal((await sealSegment(valueReadings(5), 'greenhouse/temperature', K1)).manifest.schema, 'value; value "°C"');
});

test('readings encoding is canonical and refuses readings it cannot carry, naming the argument', async () => {
  const bytes = encodeReadings(valuesReadings());
  assert.deepEqual(encodeReadings(decodeReadings(bytes)), bytes);
  const base: Reading = { stream: 's', seq: 1, ts: T0, value: 1 };
  const bad: [string, Reading[]][] = [
    ['empty', []],
    ['two streams', [base, { ...base, stream: 't', seq: 2 }]],
    ['seq not increasing', [base, { ...base }]],
    ['NaN value', [{ ...base, value: Number.NaN }]],
    ['infinite value', [{ ...base, values: { a: Infinity }, value: undefined }]],
    ['fractional ts', [{ ...base, ts: T0 + 0.5 }]],
    ['negative seq', [{ ...base, seq: -1 }]],
    ['value and values', [{ ...base, values: { a: 1 } }]],
    ['neither', [{ stream: 's', seq: 1, ts: T0 }]],
    ['lone surrogate unit', [{ ...base, unit: '\uD800' }]],
  ];
  for (const [label, readings] of bad) {
    const fields = await rejects(() => encodeReadings(readings), 'PIPELINE_INVALID_INPUT');
    assert.equal(typeof fields['argument'], 'string', label);
  }
  await rejects(() => sealSegment([base], 'other', K1), 'PIPELINE_INVALID_INPUT');
});

test('ReadingsBuilder gives encodeSegmentReadings bytes, merkleRoot of the leaves and summarizeReadings, one reading at a time', async () => {
  const rand = mulberry32(7);
  // Stream names around RLP's header lengths: one byte below 0x80 (its own encoding), 55/56 bytes, long, non-ASCII.
  const streams = ['a', 's', 'x'.repeat(54), 'y'.repeat(55), 'z'.repeat(56), 'w'.repeat(300), 'ünï/côde', '\u007f'];
  for (const stream of streams) {
    for (const n of [1, 2, 3, 5, 8, 55, 56, 200, 1500]) {
      const readings = [...valueReadings(Math.min(n, 40), stream), ...valuesReadings(stream).map((r) => ({ ...r, seq: r.seq + 1000 }))].slice(0, n);
      for (let i = readings.length; i < n; i++) readings.push({ stream, seq: 5000 + i, ts: T0 + Math.floor(rand() * 1e6), value: rand() * 1e6 - 5e5, ...(rand() < 0.3 ? { unit: 'kPa' } : {}) });
      const builder = new ReadingsBuilder(stream);
      // Half the readings come with their leaf already encoded, as the pipeline hands them over.
      readings.forEach((r, i) => (i % 2 === 0 ? builder.add(r) : builder.add(r, encodeReadingLeaf(r))));
      const built = builder.finish();
      const expected = encodeSegmentReadings(readings);
      assert.deepEqual(built.bytes, expected.bytes, `${stream.slice(0, 10)} n=${n}`);
      assert.deepEqual(built.merkleRoot, merkleRoot(expected.leaves));
      assert.deepEqual(built.summary, summarizeReadings(readings));
      assert.equal(builder.count, readings.length);
      assert.deepEqual(decodeReadings(built.bytes).map((r) => r.seq), readings.map((r) => r.seq));
    }
  }
  // A reading it cannot take leaves the builder as it was.
  const b = new ReadingsBuilder('s');
  b.add({ stream: 's', seq: 3, ts: T0, value: 1 });
  await rejects(() => b.add({ stream: 's', seq: 3, ts: T0, value: 2 }), 'PIPELINE_INVALID_INPUT');
  await rejects(() => b.add({ stream: 't', seq: 4, ts: T0, value: 2 }), 'PIPELINE_INVALID_INPUT');
  await rejects(() => b.add({ stream: 's', seq: 4, ts: T0 + 0.5, value: 2 }), 'PIPELINE_INVALID_INPUT');
  await rejects(() => new ReadingsBuilder('e').finish(), 'PIPELINE_INVALID_INPUT');
  assert.deepEqual(b.finish().bytes, encodeReadings([{ stream: 's', seq: 3, ts: T0, value: 1 }]));
});

test('decodeReadings accepts only the canonical form', () => {
  const f = (x: number): Uint8Array => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x);
    return b;
  };
  const s = new TextEncoder().encode('s');
  const [a, b] = [new TextEncoder().encode('a'), new TextEncoder().encode('b')];
  const segment = (...readings: RlpInput[]): Uint8Array => rlpEncode([1, s, readings.map((r) => rlpEncode(r))]);
  assert.deepEqual(decodeReadings(segment([1, T0, [[a, f(1)], [b, f(2)]], [], []])), [{ stream: 's', seq: 1, ts: T0, values: { a: 1, b: 2 } }]);
  const bad: [string, Uint8Array][] = [
    ['names out of order', segment([1, T0, [[b, f(1)], [a, f(2)]], [], []])],
    ['duplicate names', segment([1, T0, [[a, f(1)], [a, f(2)]], [], []])],
    ['seq with a leading zero', segment([Uint8Array.of(0, 1), T0, f(1), [], []])],
    ['seq above 2^53 - 1', segment([2 ** 53, T0, f(1), [], []])],
    ['a 4-byte value', segment([1, T0, f(1).subarray(0, 4), [], []])],
    ['NaN', segment([1, T0, f(Number.NaN), [], []])],
    ['two units', segment([1, T0, f(1), [s, s], []])],
    ['unit not in a list', segment([1, T0, f(1), s, []])],
    ['a sixth field', segment([1, T0, f(1), [], [], []])],
    ['seq repeated', segment([1, T0, f(1), [], []], [1, T0, f(1), [], []])],
    ['no readings', rlpEncode([1, s, []])],
    ['version 2', rlpEncode([2, s, [rlpEncode([1, T0, f(1), [], []])]])],
    ['trailing byte', Uint8Array.from([...segment([1, T0, f(1), [], []]), 0])],
    ['invalid UTF-8 stream', rlpEncode([1, Uint8Array.of(0xc3), [rlpEncode([1, T0, f(1), [], []])]])],
  ];
  for (const [label, bytes] of bad) assert.throws(() => decodeReadings(bytes), (e) => hasCode(e, 'SEGMENT_CORRUPT'), label);
});

test('a flipped byte anywhere in the ciphertext or nonce is SEGMENT_TAMPERED', async () => {
  const { key, envelope } = await sealSegment(valueReadings(20), 'greenhouse/temperature', K1);
  const { nonce, manifest, ciphertext } = decodeEnvelope(envelope);
  const start = envelope.length - ciphertext.length;
  for (const at of [start, start + 1, Math.floor((start + envelope.length) / 2), envelope.length - 17, envelope.length - 1]) {
    const bad = Uint8Array.from(envelope);
    bad[at]! ^= 0x01;
    await rejects(() => openSegment(bad, key), 'SEGMENT_TAMPERED');
  }
  const badNonce = Uint8Array.from(nonce);
  badNonce[0]! ^= 0x80;
  await rejects(() => openSegment(encodeEnvelope({ nonce: badNonce, manifest, ciphertext }), key), 'SEGMENT_TAMPERED');
  // A manifest moved onto another segment's ciphertext (even from the same device) fails the AAD.
  const other = await sealSegment(valueReadings(20), 'greenhouse/temperature', K1);
  const moved = encodeEnvelope({ nonce, manifest: other.manifest, ciphertext });
  await rejects(() => openSegment(moved, other.key), 'SEGMENT_TAMPERED');
  // Cutting the end of the ciphertext (keeping a tag's worth) is also caught by the tag.
  await rejects(() => openSegment(envelope.subarray(0, envelope.length - 5), key), 'SEGMENT_TAMPERED');
});

test('a wrong key is SEGMENT_WRONG_KEY, before any decryption', async () => {
  const { key, envelope } = await sealSegment(valueReadings(3), 'greenhouse/temperature', K1);
  const other = Uint8Array.from(key);
  other[31]! ^= 1;
  await rejects(() => openSegment(envelope, other), 'SEGMENT_WRONG_KEY');
  await rejects(() => openSegment(envelope, key.subarray(0, 31)), 'SEGMENT_WRONG_KEY');
  await rejects(() => openSegment(envelope, new Uint8Array(32)), 'SEGMENT_WRONG_KEY');
});

test('a manifest with an altered Merkle root, re-signed by the device, is SEGMENT_MERKLE_MISMATCH', async () => {
  const readings = valueReadings(9);
  const { manifest, key } = await sealSegment(readings, 'greenhouse/temperature', K1);
  const root = Uint8Array.from(manifest.merkleRoot);
  root[0]! ^= 0xff;
  const resigned = await signManifest({ ...manifest, merkleRoot: root }, K1);
  verifyManifest(resigned);
  const envelope = envelopeFor(resigned, readings, key);
  assert.deepEqual(readManifest(envelope), resigned, 'the signature itself is fine');
  const fields = await rejects(() => openSegment(envelope, key), 'SEGMENT_MERKLE_MISMATCH');
  assert.ok(typeof fields['expected'] === 'string' && typeof fields['actual'] === 'string');
});

test('a manifest signed by another key, or altered after signing, is SEGMENT_BAD_SIGNATURE', async () => {
  const readings = valueReadings(9);
  const { manifest, key, envelope } = await sealSegment(readings, 'greenhouse/temperature', K1);
  const { nonce, ciphertext } = decodeEnvelope(envelope);

  // Same manifest, signature by another key: AAD (the unsigned manifest) still matches, so only the signature fails.
  const foreign: SignedManifest = { ...manifest, signature: await OTHER_K1.sign(manifestDigest(manifest), 'message') };
  const foreignEnvelope = encodeEnvelope({ nonce, manifest: foreign, ciphertext });
  assert.equal((await rejects(() => openSegment(foreignEnvelope, key), 'SEGMENT_BAD_SIGNATURE'))['reason'], 'signature');
  await rejects(() => readManifest(foreignEnvelope), 'SEGMENT_BAD_SIGNATURE');

  // Altered after signing, and re-encrypted by someone holding the key, so the AEAD passes.
  const altered: SignedManifest = { ...manifest, schema: 'value "K"' };
  await rejects(() => openSegment(envelopeFor(altered, readings, key), key), 'SEGMENT_BAD_SIGNATURE');
  await rejects(() => verifyManifest({ ...manifest, lastTs: manifest.lastTs + 1 }), 'SEGMENT_BAD_SIGNATURE');

  // The device named as someone else, or an address that is not the key's.
  const renamed: SignedManifest = { ...manifest, device: { ...manifest.device, address: OTHER_K1.address } };
  assert.match(String((await rejects(() => verifyManifest(renamed), 'SEGMENT_BAD_SIGNATURE'))['reason']), /address/);
  const rekeyed: SignedManifest = { ...manifest, device: { address: OTHER_K1.address, keyType: 'secp256k1', publicKey: OTHER_K1.publicKey } };
  await rejects(() => openSegment(envelopeFor(rekeyed, readings, key), key), 'SEGMENT_BAD_SIGNATURE');

  // A secp256k1 signature with the wrong recovery id, or without one.
  const flippedRecid = Uint8Array.from(manifest.signature);
  flippedRecid[64]! ^= 1;
  assert.equal((await rejects(() => verifyManifest({ ...manifest, signature: flippedRecid }), 'SEGMENT_BAD_SIGNATURE'))['reason'], 'recovery id');
  await rejects(() => verifyManifest({ ...manifest, signature: manifest.signature.subarray(0, 64) }), 'SEGMENT_BAD_SIGNATURE');
});

test('readings that disagree with a correctly signed manifest are SEGMENT_CORRUPT, after every other check', async () => {
  const readings = valueReadings(6);
  const { manifest, key } = await sealSegment(readings, 'greenhouse/temperature', K1);
  const cases: [keyof SegmentManifest, Partial<SegmentManifest>][] = [
    ['count', { count: manifest.count - 1 }],
    ['lastTs', { lastTs: manifest.lastTs + 1 }],
    ['firstSeq', { firstSeq: manifest.firstSeq - 1 }],
    ['stream', { stream: 'greenhouse/humidity' }],
    ['schema', { schema: 'value' }],
  ];
  for (const [field, change] of cases) {
    const signed = await signManifest({ ...manifest, ...change }, K1);
    assert.equal((await rejects(() => openSegment(envelopeFor(signed, readings, key), key), 'SEGMENT_CORRUPT'))['field'], field);
  }
});

test('a truncated or malformed envelope is SEGMENT_CORRUPT; an unknown version asks for an upgrade', async () => {
  const { key, envelope } = await sealSegment(valueReadings(5), 'greenhouse/temperature', P256);
  const manifestEnd = envelope.length - decodeEnvelope(envelope).ciphertext.length;
  for (const length of [0, 3, 4, 5, 28, 32, 33, 40, manifestEnd - 1, manifestEnd, manifestEnd + 15]) {
    await rejects(() => openSegment(envelope.subarray(0, length), key), 'SEGMENT_CORRUPT');
    await rejects(() => readManifest(envelope.subarray(0, length)), 'SEGMENT_CORRUPT');
  }
  const badMagic = Uint8Array.from(envelope);
  badMagic[0] = 0x45;
  await rejects(() => openSegment(badMagic, key), 'SEGMENT_CORRUPT');
  const hugeLength = Uint8Array.from(envelope);
  hugeLength[29] = 0xff;
  await rejects(() => readManifest(hugeLength), 'SEGMENT_CORRUPT');
  const flippedManifest = Uint8Array.from(envelope);
  flippedManifest[40]! ^= 0x40; // inside the manifest's RLP framing or fields
  await rejects(() => readManifest(flippedManifest), 'SEGMENT_CORRUPT');
  const v2 = Uint8Array.from(envelope);
  v2[4] = 2;
  await rejects(() => openSegment(v2, key), 'SEGMENT_UNSUPPORTED_VERSION');
});

test('decodeReadings of random and mutated bytes throws nothing but SEGMENT_CORRUPT (seeded fuzz, 3000 inputs)', { timeout: 60_000 }, () => {
  const rand = mulberry32(0x5e6e);
  const byte = (): number => Math.floor(rand() * 256);
  const randomItem = (depth: number): RlpInput => {
    if (depth >= 3 || rand() < 0.5) return Uint8Array.from({ length: [0, 1, 2, 7, 8, 9][Math.floor(rand() * 6)]! }, byte);
    return Array.from({ length: Math.floor(rand() * 4) }, () => randomItem(depth + 1));
  };
  const seeds = [encodeReadings(valueReadings(12)), encodeReadings(valuesReadings())];
  let runs = 0;
  let decoded = 0;
  // A fixed number of inputs, not a time budget: the same inputs on a loaded machine as on a quiet one.
  while (runs < 3000) {
    let input: Uint8Array;
    const mode = runs % 4;
    if (mode === 0) {
      input = Uint8Array.from({ length: Math.floor(rand() * 200) }, byte);
    } else if (mode === 1) {
      // Well-framed readings whose leaves are random RLP trees or near-readings: reaches the field checks.
      const leaf = (): Uint8Array => rlpEncode(rand() < 0.3 ? randomItem(0) : [randomItem(3), randomItem(3), randomItem(1), randomItem(2), randomItem(2)]);
      input = rlpEncode([1, new TextEncoder().encode('s'), Array.from({ length: 1 + Math.floor(rand() * 3) }, leaf)]);
    } else {
      const seed = seeds[runs % 2]!;
      input = Uint8Array.from(seed);
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) input[Math.floor(rand() * input.length)] = byte();
      if (mode === 3) input = input.subarray(0, Math.floor(rand() * input.length));
    }
    runs++;
    try {
      decodeReadings(input);
      decoded++;
    } catch (err) {
      if (!hasCode(err, 'SEGMENT_CORRUPT')) throw new Error(`input ${Buffer.from(input).toString('hex')} threw ${String(err)}`, { cause: err });
    }
  }
  assert.ok(decoded > 0, 'some mutations (e.g. of a float byte) still decode');
});

test('segment keys wrap under the master key, bound to their segment id', () => {
  const master = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const segmentKey = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
  const id = '0x' + 'ab'.repeat(32);
  const wrapped = wrapKey(segmentKey, master, id);
  assert.equal(wrapped.length, 73);
  assert.deepEqual(unwrapKey(wrapped, master, id), segmentKey);
  assert.deepEqual(unwrapKey(wrapKey(segmentKey, master, new Uint8Array([1, 2])), master, new Uint8Array([1, 2])), segmentKey);
  assert.notDeepEqual(wrapKey(segmentKey, master, id), wrapped, 'fresh nonce per wrap');
  assert.throws(() => unwrapKey(wrapped, master, '0x' + 'ab'.repeat(31) + 'ac'), (e) => hasCode(e, 'KEY_UNWRAP_FAILED'));
  const otherMaster = Uint8Array.from(master);
  otherMaster[0]! ^= 1;
  assert.throws(() => unwrapKey(wrapped, otherMaster, id), (e) => hasCode(e, 'KEY_UNWRAP_FAILED'));
  const flipped = Uint8Array.from(wrapped);
  flipped[40]! ^= 1;
  assert.throws(() => unwrapKey(flipped, master, id), (e) => hasCode(e, 'KEY_UNWRAP_FAILED'));
  assert.throws(() => unwrapKey(wrapped.subarray(0, 72), master, id), (e) => hasCode(e, 'KEY_UNWRAP_FAILED'));
  assert.throws(() => wrapKey(segmentKey, master.subarray(1), id), (e) => hasCode(e, 'PIPELINE_INVALID_INPUT'));
  assert.throws(() => wrapKey(segmentKey, master, ''), (e) => hasCode(e, 'PIPELINE_INVALID_INPUT'));
});

test('the master key file is created once, mode 0600, and refused when open to group or others', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'master.key');
  const [a, b] = await Promise.all([loadOrCreateMasterKey(path), loadOrCreateMasterKey(path)]);
  assert.equal(a.length, 32);
  assert.deepEqual(a, b, 'racing creators end up with the same key');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(path).size, 32);
  assert.deepEqual(readdirSync(dir), ['master.key'], 'no temp files left behind');
  assert.deepEqual(await loadOrCreateMasterKey(path), a);

  chmodSync(path, 0o644);
  const fields = await rejects(() => loadOrCreateMasterKey(path), 'MASTER_KEY_INSECURE');
  assert.equal(fields['mode'], '0644');
  chmodSync(path, 0o640);
  await rejects(() => loadOrCreateMasterKey(path), 'MASTER_KEY_INSECURE');

  const short = join(dir, 'short.key');
  writeFileSync(short, new Uint8Array(31), { mode: 0o600 });
  await rejects(() => loadOrCreateMasterKey(short), 'MASTER_KEY_CORRUPT');
  await rejects(() => loadOrCreateMasterKey(dir), 'MASTER_KEY_CORRUPT');
});

test('signManifest checks its signer: the manifest device, a missing recid, a broken signer', async () => {
  const { manifest } = await sealSegment(valueReadings(3), 'greenhouse/temperature', K1);
  await rejects(() => signManifest(manifest, P256), 'PIPELINE_INVALID_INPUT');
  const noRecid: Signer = {
    keyType: K1.keyType, publicKey: K1.publicKey, address: K1.address,
    sign: async (digest, purpose) => (await K1.sign(digest, purpose)).subarray(0, 64),
  };
  const signed = await signManifest(manifest, noRecid);
  assert.deepEqual(signed.signature, manifest.signature, 'the recid is recovered');
  const broken: Signer = { keyType: P256.keyType, publicKey: P256.publicKey, address: P256.address, sign: async () => new Uint8Array(64).fill(1) };
  const p256Manifest = (await sealSegment(valueReadings(3), 'greenhouse/temperature', P256)).manifest;
  await rejects(() => signManifest(p256Manifest, broken), 'SEGMENT_BAD_SIGNATURE');
  await rejects(() => sealSegment(valueReadings(3), 'greenhouse/temperature', broken), 'SEGMENT_BAD_SIGNATURE');
});
