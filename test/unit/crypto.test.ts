// Unit tests of chain/crypto: keccak known answers, byte helpers, both secp256k1 backends (round trips,
// identical results on the same inputs, identical rejection of malformed inputs), addresses against ethers,
// backend selection, and the recovery cache. The native half skips when the addon is not installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { keccak_256 as nobleKeccak } from '@noble/hashes/sha3.js';
import { fileURLToPath } from 'node:url';
import { secp256k1 as nobleCurve } from '@noble/curves/secp256k1.js';
import { SigningKey, computeAddress, keccak256 as ethersKeccak } from 'ethers';
import {
  RecoveryCache,
  SECP256K1_HALF_N,
  SECP256K1_N,
  bigintToBytes32,
  bytesToBigint,
  bytesToHex,
  chooseSecp256k1Backend,
  defaultRecoveryCache,
  hexToBytes,
  isLowS,
  keccak256,
  loadNativeSecp256k1,
  nativeLoadError,
  nobleSecp256k1,
  publicKeyToAddress,
  recoverAddress,
  recoverAddressCached,
  secp256k1,
  secp256k1BackendName,
  signatureBytes,
  type Secp256k1Backend,
} from '../../chain/crypto/index.ts';
import { hasCode } from '../../chain/errors.ts';

const native = loadNativeSecp256k1();
const NATIVE_SKIP = native ? false : `native secp256k1 addon not available (${String(nativeLoadError()).split('\n')[0]}); noble-only run`;
const backends: Secp256k1Backend[] = native ? [nobleSecp256k1, native] : [nobleSecp256k1];
const enc = new TextEncoder();

/** Deterministic pseudo-random bytes (keccak in counter mode), so failures reproduce. */
function prng(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) out.set(keccak256(enc.encode(`${seed}/${counter++}`)).subarray(0, Math.min(32, n - off)), off);
    return out;
  };
}

function privateKeyFrom(rand: (n: number) => Uint8Array): Uint8Array {
  for (;;) {
    const k = rand(32);
    const v = bytesToBigint(k);
    if (v > 0n && v < SECP256K1_N) return k;
  }
}

/** The outcome of a call: its value, or the error code it threw. Compared across backends. */
function outcome(fn: () => unknown): { ok: true; value: unknown } | { ok: false; code: string } {
  try {
    const value = fn();
    return { ok: true, value: value instanceof Uint8Array ? bytesToHex(value) : value };
  } catch (err) {
    return { ok: false, code: hasCode(err, 'CRYPTO_INVALID_INPUT') ? 'CRYPTO_INVALID_INPUT' : `unexpected: ${String(err)}` };
  }
}

test('keccak256 known answers', () => {
  assert.equal(bytesToHex(keccak256(new Uint8Array())), '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
  assert.equal(bytesToHex(keccak256(enc.encode('abc'))), '0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45');
  const rand = prng('keccak');
  for (const len of [1, 31, 32, 135, 136, 137, 1000]) {
    const data = rand(len);
    assert.equal(bytesToHex(keccak256(data)), ethersKeccak(data), `length ${len}`);
  }
});

test('keccak256 (WebAssembly) equals @noble/hashes on every length 0..600, on views into larger buffers, and on 1 MiB', () => {
  const rand = prng('keccak-wasm');
  for (let len = 0; len <= 600; len++) {
    const data = rand(len);
    assert.deepEqual(keccak256(data), nobleKeccak(data), `length ${len}`);
  }
  const big = rand(1 << 20);
  assert.deepEqual(keccak256(big), nobleKeccak(big));
  const view = big.subarray(12_345, 12_345 + 137);
  assert.deepEqual(keccak256(view), nobleKeccak(Uint8Array.from(view)));
  // Each result is its own buffer: changing one does not change the next.
  const a = keccak256(enc.encode('abc'));
  const copy = Uint8Array.from(a);
  a.fill(0);
  assert.deepEqual(keccak256(enc.encode('abc')), copy);
});

test('bytesToHex / hexToBytes', () => {
  assert.equal(bytesToHex(new Uint8Array()), '0x');
  assert.equal(bytesToHex(Uint8Array.of(0, 1, 0xab, 0xff)), '0x0001abff');
  assert.deepEqual(hexToBytes('0x0001abff'), Uint8Array.of(0, 1, 0xab, 0xff));
  assert.deepEqual(hexToBytes('0001ABFF'), Uint8Array.of(0, 1, 0xab, 0xff));
  assert.deepEqual(hexToBytes('0X0a'), Uint8Array.of(10));
  assert.deepEqual(hexToBytes('0x'), new Uint8Array());
  assert.deepEqual(hexToBytes(''), new Uint8Array());
  const rand = prng('hex');
  for (let i = 0; i < 20; i++) {
    const b = rand(i * 7);
    assert.deepEqual(hexToBytes(bytesToHex(b)), b);
  }
  for (const bad of ['0x0', 'abc', '0xzz', '0x0g', 'gg', '0x 1', '0x1é', '0xé1', '0x0x']) {
    assert.throws(() => hexToBytes(bad), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'), bad);
  }
});

test('bigintToBytes32 / bytesToBigint', () => {
  assert.equal(bytesToHex(bigintToBytes32(0n)), '0x' + '00'.repeat(32));
  assert.equal(bytesToHex(bigintToBytes32(1n)), '0x' + '00'.repeat(31) + '01');
  const max = (1n << 256n) - 1n;
  assert.equal(bytesToHex(bigintToBytes32(max)), '0x' + 'ff'.repeat(32));
  assert.equal(bytesToBigint(new Uint8Array()), 0n);
  assert.equal(bytesToBigint(Uint8Array.of(1, 0)), 256n);
  const rand = prng('bigint');
  for (let i = 0; i < 50; i++) {
    const v = bytesToBigint(rand(32)) >> BigInt(i * 5);
    assert.equal(bytesToBigint(bigintToBytes32(v)), v);
    assert.equal(bytesToHex(bigintToBytes32(v)), '0x' + v.toString(16).padStart(64, '0'));
  }
  for (const bad of [-1n, 1n << 256n]) {
    assert.throws(() => bigintToBytes32(bad), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'));
  }
});

test('curve constants and isLowS', () => {
  assert.equal(SECP256K1_N, nobleCurve.Point.Fn.ORDER);
  assert.equal(SECP256K1_HALF_N, SECP256K1_N / 2n);
  assert.equal(isLowS(1n), true);
  assert.equal(isLowS(SECP256K1_HALF_N), true);
  assert.equal(isLowS(SECP256K1_HALF_N + 1n), false);
  assert.equal(isLowS(0n), false);
  assert.equal(isLowS(SECP256K1_N), false);
});

test('native backend is present (addon loaded through node-gyp-build)', { skip: NATIVE_SKIP }, () => {
  assert.equal(native!.name, 'native');
  assert.equal(loadNativeSecp256k1(), native, 'loads once');
});

for (const backend of backends) {
  test(`${backend.name}: sign / recover / verify round trip`, () => {
    const rand = prng(`roundtrip-${backend.name}`);
    for (let i = 0; i < 20; i++) {
      const priv = privateKeyFrom(rand);
      const digest = rand(32);
      const pub = backend.publicKey(priv);
      const pub33 = backend.publicKey(priv, true);
      assert.equal(pub.length, 65);
      assert.equal(pub33.length, 33);
      const { signature, recid } = backend.sign(digest, priv);
      assert.equal(signature.length, 64);
      assert.ok(recid === 0 || recid === 1);
      assert.ok(isLowS(bytesToBigint(signature.subarray(32))), 'sign returns low-s');
      assert.deepEqual(backend.recoverPublicKey(digest, signature, recid), pub);
      assert.equal(backend.verify(digest, signature, pub), true);
      assert.equal(backend.verify(digest, signature, pub33), true);
      const other = rand(32);
      assert.equal(backend.verify(other, signature, pub), false);
      assert.notDeepEqual(outcome(() => backend.recoverPublicKey(other, signature, recid)), { ok: true, value: bytesToHex(pub) });
      assert.notDeepEqual(outcome(() => backend.recoverPublicKey(digest, signature, (1 - recid) as 0 | 1)), { ok: true, value: bytesToHex(pub) });
    }
  });

  test(`${backend.name}: addresses and signatures agree with ethers`, () => {
    // The EIP-155 example key: its address is well known.
    const key = hexToBytes('0x4646464646464646464646464646464646464646464646464646464646464646');
    assert.equal(publicKeyToAddress(backend.publicKey(key)), '0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f');
    const rand = prng(`ethers-${backend.name}`);
    for (let i = 0; i < 10; i++) {
      const priv = privateKeyFrom(rand);
      const digest = rand(32);
      const signer = new SigningKey(bytesToHex(priv));
      const expected = computeAddress(signer.publicKey).toLowerCase();
      assert.equal(publicKeyToAddress(backend.publicKey(priv)), expected);
      const sig = signer.sign(bytesToHex(digest));
      assert.equal(recoverAddress(digest, BigInt(sig.r), BigInt(sig.s), sig.yParity, backend), expected);
      const mine = backend.sign(digest, priv);
      assert.equal(bytesToHex(mine.signature), sig.r + sig.s.slice(2), 'same RFC 6979 signature as ethers');
      assert.equal(mine.recid, sig.yParity);
    }
  });

  test(`${backend.name}: high-s is rejected by verify, accepted by recover`, () => {
    const rand = prng(`highs-${backend.name}`);
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    const pub = backend.publicKey(priv);
    const { signature, recid } = backend.sign(digest, priv);
    const { r, s } = { r: bytesToBigint(signature.subarray(0, 32)), s: bytesToBigint(signature.subarray(32)) };
    const high = signatureBytes(r, SECP256K1_N - s);
    assert.equal(backend.verify(digest, high, pub), false);
    // (r, n - s) is the same signature with R negated, so it recovers the key with the other parity.
    assert.deepEqual(backend.recoverPublicKey(digest, high, (1 - recid) as 0 | 1), pub);
  });
}

test('backends give identical results on the same inputs', { skip: NATIVE_SKIP }, () => {
  const rand = prng('cross');
  for (let i = 0; i < 100; i++) {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    assert.deepEqual(native!.publicKey(priv), nobleSecp256k1.publicKey(priv));
    assert.deepEqual(native!.publicKey(priv, true), nobleSecp256k1.publicKey(priv, true));
    const a = native!.sign(digest, priv);
    const b = nobleSecp256k1.sign(digest, priv);
    assert.deepEqual(a, b, 'deterministic signatures are byte-identical');
    const pub = native!.publicKey(priv);
    for (const recid of [0, 1] as const) {
      assert.deepEqual(outcome(() => native!.recoverPublicKey(digest, a.signature, recid)), outcome(() => nobleSecp256k1.recoverPublicKey(digest, a.signature, recid)));
    }
    // Random 64 bytes: usually a recoverable "signature" of some key, sometimes r is no x-coordinate.
    const junk = rand(64);
    for (const recid of [0, 1] as const) {
      assert.deepEqual(outcome(() => native!.recoverPublicKey(digest, junk, recid)), outcome(() => nobleSecp256k1.recoverPublicKey(digest, junk, recid)));
    }
    assert.equal(native!.verify(digest, junk, pub), false);
    assert.equal(nobleSecp256k1.verify(digest, junk, pub), false);
  }
});

/** Malformed inputs. Each must make verify return false and recover / sign / publicKey throw, on every backend. */
function invalidCases() {
  const rand = prng('invalid');
  const priv = privateKeyFrom(rand);
  const digest = rand(32);
  const { signature: sig, recid } = nobleSecp256k1.sign(digest, priv);
  const pub = nobleSecp256k1.publicKey(priv);
  const r = bytesToBigint(sig.subarray(0, 32));
  const s = bytesToBigint(sig.subarray(32));
  // The smallest r that is not the x-coordinate of any point (x^3 + 7 is not a square mod p).
  let noX = 1n;
  while (outcome(() => nobleCurve.Point.fromBytes(Uint8Array.of(2, ...bigintToBytes32(noX)))).ok) noX++;
  const hybrid = pub.slice();
  hybrid[0] = 0x06 + (pub[64]! & 1); // libsecp256k1 would parse this; we must not.
  const offCurve = pub.slice();
  offCurve[64] = offCurve[64]! ^ 1;
  const sigs: Array<[string, Uint8Array]> = [
    ['63-byte signature', sig.subarray(0, 63)],
    ['65-byte signature', Uint8Array.of(...sig, 0)],
    ['r = 0', signatureBytes(0n, s)],
    ['s = 0', signatureBytes(r, 0n)],
    ['r = n', signatureBytes(SECP256K1_N, s)],
    ['s = n', signatureBytes(r, SECP256K1_N)],
    ['r = 2^256 - 1', signatureBytes((1n << 256n) - 1n, s)],
    ['s = n + 1', signatureBytes(r, SECP256K1_N + 1n)],
    ['r is no x-coordinate', signatureBytes(noX, s)],
  ];
  const digests: Array<[string, Uint8Array]> = [
    ['31-byte digest', digest.subarray(0, 31)],
    ['33-byte digest', Uint8Array.of(...digest, 0)],
    ['empty digest', new Uint8Array()],
  ];
  const keys: Array<[string, Uint8Array]> = [
    ['key 0x05 prefix', Uint8Array.of(5, ...pub.subarray(1))],
    ['hybrid 0x06/0x07 key', hybrid],
    ['key off the curve', offCurve],
    ['64-byte key', pub.subarray(1)],
    ['compressed prefix on 65 bytes', Uint8Array.of(2, ...pub.subarray(1))],
    ['point at infinity (zeros)', Uint8Array.of(4, ...new Uint8Array(64))],
    ['compressed key with x = p', Uint8Array.of(2, ...bigintToBytes32(nobleCurve.Point.Fp.ORDER))],
  ];
  const privs: Array<[string, Uint8Array]> = [
    ['private key 0', new Uint8Array(32)],
    ['private key n', bigintToBytes32(SECP256K1_N)],
    ['private key 2^256 - 1', new Uint8Array(32).fill(0xff)],
    ['31-byte private key', priv.subarray(1)],
  ];
  return { digest, sig, recid, pub, priv, sigs, digests, keys, privs };
}

for (const backend of backends) {
  test(`${backend.name}: malformed inputs are rejected with CRYPTO_INVALID_INPUT / false`, () => {
    const c = invalidCases();
    assert.equal(backend.verify(c.digest, c.sig, c.pub), true, 'the unmodified signature verifies');
    const rejected = { ok: false, code: 'CRYPTO_INVALID_INPUT' };
    for (const [name, sig] of c.sigs) {
      assert.equal(backend.verify(c.digest, sig, c.pub), false, name);
      assert.deepEqual(outcome(() => backend.recoverPublicKey(c.digest, sig, c.recid)), rejected, name);
    }
    for (const [name, digest] of c.digests) {
      assert.equal(backend.verify(digest, c.sig, c.pub), false, name);
      assert.deepEqual(outcome(() => backend.recoverPublicKey(digest, c.sig, c.recid)), rejected, name);
      assert.deepEqual(outcome(() => backend.sign(digest, c.priv)), rejected, name);
    }
    for (const [name, key] of c.keys) assert.equal(backend.verify(c.digest, c.sig, key), false, name);
    for (const recid of [2, 3, -1, 27]) {
      assert.deepEqual(outcome(() => backend.recoverPublicKey(c.digest, c.sig, recid as 0 | 1)), rejected, `recid ${recid}`);
    }
    for (const [name, priv] of c.privs) {
      assert.deepEqual(outcome(() => backend.sign(c.digest, priv)), rejected, name);
      assert.deepEqual(outcome(() => backend.publicKey(priv)), rejected, name);
    }
    // Not bytes at all: still a clean false / CRYPTO_INVALID_INPUT, never a TypeError from a library.
    const notBytes = 'not bytes' as unknown as Uint8Array;
    assert.equal(backend.verify(notBytes, c.sig, c.pub), false);
    assert.equal(backend.verify(c.digest, notBytes, c.pub), false);
    assert.equal(backend.verify(c.digest, c.sig, notBytes), false);
    assert.deepEqual(outcome(() => backend.recoverPublicKey(notBytes, c.sig, c.recid)), rejected);
    assert.deepEqual(outcome(() => backend.recoverPublicKey(c.digest, notBytes, c.recid)), rejected);
  });
}

test('publicKeyToAddress and recoverAddress reject bad input', () => {
  const c = invalidCases();
  for (const bad of [c.pub.subarray(1), nobleSecp256k1.publicKey(c.priv, true), Uint8Array.of(5, ...c.pub.subarray(1))]) {
    assert.throws(() => publicKeyToAddress(bad), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'));
  }
  for (const [r, s] of [[-1n, 1n], [1n, 1n << 256n], [0n, 1n], [1n, SECP256K1_N]] as const) {
    assert.throws(() => recoverAddress(c.digest, r, s, 0), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'), `${r}, ${s}`);
  }
});

test('backend selection', () => {
  assert.equal(chooseSecp256k1Backend('noble'), nobleSecp256k1);
  assert.equal(chooseSecp256k1Backend('NOBLE'), nobleSecp256k1);
  assert.equal(chooseSecp256k1Backend(undefined).name, native ? 'native' : 'noble');
  assert.equal(chooseSecp256k1Backend('auto').name, native ? 'native' : 'noble');
  if (native) assert.equal(chooseSecp256k1Backend('native'), native);
  else assert.throws(() => chooseSecp256k1Backend('native'), /DATAGATE_CRYPTO=native/);
  assert.throws(() => chooseSecp256k1Backend('fast'), /DATAGATE_CRYPTO must be one of/);
  assert.equal(secp256k1BackendName(), secp256k1.name);
  const env = process.env['DATAGATE_CRYPTO'];
  if (env === undefined || env === '' || env === 'auto') assert.equal(secp256k1.name, native ? 'native' : 'noble');
});

test('DATAGATE_CRYPTO=noble forces the noble backend in a fresh process', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = "import('./chain/crypto/index.ts').then((m) => console.log(m.secp256k1BackendName()))";
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, DATAGATE_CRYPTO: 'noble' },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'noble');
});

test('RecoveryCache: hits, misses, LRU eviction, failures not cached', () => {
  const rand = prng('cache');
  const entries = Array.from({ length: 3 }, (_, i) => {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    const { signature, recid } = nobleSecp256k1.sign(digest, priv);
    return {
      key: `tx${i}`,
      digest,
      r: bytesToBigint(signature.subarray(0, 32)),
      s: bytesToBigint(signature.subarray(32)),
      recid,
      address: publicKeyToAddress(nobleSecp256k1.publicKey(priv)),
    };
  });
  const [a, b, c] = entries as [typeof entries[0], typeof entries[0], typeof entries[0]];
  const cache = new RecoveryCache(2);
  const recover = (e: typeof a) => cache.recoverAddress(e.key, e.digest, e.r, e.s, e.recid, nobleSecp256k1);
  assert.equal(recover(a), a.address);
  assert.deepEqual(cache.stats(), { hits: 0, misses: 1, size: 1, maxEntries: 2 });
  assert.equal(recover(a), a.address);
  assert.equal(cache.hits, 1);
  assert.equal(recover(b), b.address);
  assert.equal(recover(a), a.address); // a is now the most recently used
  assert.equal(recover(c), c.address); // evicts b
  assert.equal(cache.has('tx1'), false);
  assert.equal(cache.has('tx0'), true);
  assert.equal(cache.has('tx2'), true);
  assert.deepEqual(cache.stats(), { hits: 2, misses: 3, size: 2, maxEntries: 2 });
  // A hit returns the cached sender without recovering: the key is trusted (see the cache's key rule).
  assert.equal(cache.recoverAddress('tx0', new Uint8Array(32), 1n, 1n, 0), a.address);
  assert.throws(() => cache.recoverAddress('bad', a.digest, 0n, a.s, a.recid), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'));
  assert.equal(cache.has('bad'), false);
  assert.equal(cache.misses, 4);
  cache.clear();
  assert.deepEqual(cache.stats(), { hits: 0, misses: 0, size: 0, maxEntries: 2 });
  assert.throws(() => new RecoveryCache(0), RangeError);
  assert.equal(new RecoveryCache().maxEntries, 100_000);
});

test('recoverAddressCached uses the process-wide cache', () => {
  const rand = prng('default-cache');
  const priv = privateKeyFrom(rand);
  const digest = rand(32);
  const { signature, recid } = secp256k1.sign(digest, priv);
  const r = bytesToBigint(signature.subarray(0, 32));
  const s = bytesToBigint(signature.subarray(32));
  const key = bytesToHex(keccak256(Uint8Array.of(...digest, ...signature, recid)));
  const before = defaultRecoveryCache.stats();
  const expected = publicKeyToAddress(secp256k1.publicKey(priv));
  assert.equal(recoverAddressCached(key, digest, r, s, recid), expected);
  assert.equal(recoverAddressCached(key, digest, r, s, recid), expected);
  const after = defaultRecoveryCache.stats();
  assert.equal(after.misses - before.misses, 1);
  assert.equal(after.hits - before.hits, 1);
});
