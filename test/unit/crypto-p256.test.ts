// Unit tests of chain/crypto/p256.ts: P-256 consensus signatures (ECDSA over sha256(digest), 64-byte r || s,
// low-s only). Both backends (node:crypto and @noble) must give the same verdict for every input: round
// trips, random and malformed inputs, high-s, signatures made by node:crypto itself and Wycheproof's
// ECDSA P-256 / SHA-256 / P1363 vectors (test/vectors, see its README). Also the key-type dispatch and the
// key address shared by both curves. The native half skips when node:crypto fails its self-test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { p256 as nobleCurve } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { computeAddress } from 'ethers';
import {
  P256_HALF_N,
  P256_N,
  bigintToBytes32,
  bytesToBigint,
  bytesToHex,
  chooseP256Backend,
  hexToBytes,
  keccak256,
  keyAddress,
  loadNativeP256,
  nativeP256LoadError,
  nobleP256,
  p256Backend,
  p256BackendName,
  p256PublicKey,
  p256Sign,
  p256Verify,
  secp256k1,
  signatureBytes,
  verifySignature,
  type KeyType,
  type P256Backend,
} from '../../chain/crypto/index.ts';
import { hasCode } from '../../chain/errors.ts';

const native = loadNativeP256();
const NATIVE_SKIP = native ? false : `node:crypto P-256 unavailable (${String(nativeP256LoadError()).split('\n')[0]}); noble-only run`;
const backends: P256Backend[] = native ? [nobleP256, native] : [nobleP256];
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
    if (v > 0n && v < P256_N) return k;
  }
}

function rs(sig64: Uint8Array): { r: bigint; s: bigint } {
  return { r: bytesToBigint(sig64.subarray(0, 32)), s: bytesToBigint(sig64.subarray(32, 64)) };
}

/** p256Verify on every backend; asserts they agree and none throws, returns the verdict. */
function agreed(what: string, digest: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array): boolean {
  const verdicts = backends.map((b) => {
    try {
      return p256Verify(digest, sig64, publicKey, b);
    } catch (err) {
      assert.fail(`${what} (${b.name}): verify threw ${String(err)}`);
    }
  });
  for (const v of verdicts.slice(1)) assert.equal(v, verdicts[0], `${what}: backends disagree`);
  return verdicts[0]!;
}

test('curve constants match noble', () => {
  assert.equal(P256_N, nobleCurve.Point.Fn.ORDER);
  assert.equal(P256_HALF_N, P256_N / 2n);
});

test('node:crypto backend passes its self-test and is the default', { skip: NATIVE_SKIP }, () => {
  assert.equal(native!.name, 'native');
  assert.equal(loadNativeP256(), native, 'loads once');
  const env = process.env['DATAGATE_CRYPTO'];
  if (env === undefined || env === '' || env === 'auto') assert.equal(p256Backend, native);
});

for (const backend of backends) {
  test(`${backend.name}: sign / verify round trip, both key encodings`, () => {
    const rand = prng(`p256-roundtrip-${backend.name}`);
    for (let i = 0; i < 20; i++) {
      const priv = privateKeyFrom(rand);
      const digest = rand(32);
      const pub = p256PublicKey(priv);
      const pub33 = p256PublicKey(priv, true);
      assert.equal(pub.length, 65);
      assert.equal(pub33.length, 33);
      const sig = p256Sign(digest, priv);
      assert.equal(sig.length, 64);
      assert.ok(rs(sig).s <= P256_HALF_N, 'p256Sign returns low-s');
      assert.deepEqual(p256Sign(digest, priv), sig, 'deterministic (RFC 6979)');
      assert.equal(p256Verify(digest, sig, pub, backend), true);
      assert.equal(p256Verify(digest, sig, pub33, backend), true);
      assert.equal(p256Verify(rand(32), sig, pub, backend), false, 'other digest');
      assert.equal(p256Verify(digest, sig, p256PublicKey(privateKeyFrom(rand)), backend), false, 'other key');
      // The convention is ECDSA over sha256(digest): the raw digest as the ECDSA hash is another message.
      assert.equal(backend.verify(digest, sig, pub), true);
      const rawDigestSig = nobleCurve.sign(digest, priv, { prehash: false, lowS: true });
      assert.equal(p256Verify(digest, rawDigestSig, pub, backend), false, 'digest signed without SHA-256');
    }
  });
}

test('a PKCS#11 token signing sha256(digest) with plain CKM_ECDSA makes the same signature', () => {
  const rand = prng('p256-pkcs11');
  for (let i = 0; i < 10; i++) {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    const ckmEcdsa = nobleCurve.sign(sha256(digest), priv, { prehash: false, lowS: true });
    assert.deepEqual(ckmEcdsa, p256Sign(digest, priv));
    assert.equal(agreed(`#${i}`, digest, ckmEcdsa, p256PublicKey(priv)), true);
  }
});

test('backends give identical verdicts on random keys, digests and signatures', { skip: NATIVE_SKIP }, () => {
  const rand = prng('p256-cross');
  let accepted = 0;
  for (let i = 0; i < 100; i++) {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    const pub = i % 2 === 0 ? p256PublicKey(priv) : p256PublicKey(priv, true);
    const sig = p256Sign(digest, priv);
    if (agreed(`valid #${i}`, digest, sig, pub)) accepted++;
    const flipped = sig.slice();
    flipped[i % 64] = flipped[i % 64]! ^ (1 << (i % 8));
    agreed(`bit flip #${i}`, digest, flipped, pub);
    agreed(`junk signature #${i}`, digest, rand(64), pub);
    // Well-formed, in-range, low-s (r, s) that is almost surely not a signature.
    agreed(`random r, s #${i}`, digest, signatureBytes(bytesToBigint(rand(32)) % P256_N || 1n, bytesToBigint(rand(32)) % P256_HALF_N || 1n), pub);
    agreed(`junk key #${i}`, digest, sig, Uint8Array.of(2 + (i % 2), ...rand(32)));
  }
  assert.equal(accepted, 100);
});

/** ~30 malformed inputs around one good (digest, signature, key). Each must be false on every backend. */
function malformedCases(): { digest: Uint8Array; sig: Uint8Array; pub: Uint8Array; cases: Array<[string, Uint8Array, Uint8Array, Uint8Array]> } {
  const rand = prng('p256-malformed');
  const priv = privateKeyFrom(rand);
  const digest = rand(32);
  const sig = p256Sign(digest, priv);
  const pub = p256PublicKey(priv);
  const pub33 = p256PublicKey(priv, true);
  const { r, s } = rs(sig);
  const P = nobleCurve.Point.Fp.ORDER;
  const offCurve = pub.slice();
  offCurve[64] = offCurve[64]! ^ 1;
  const wrongParity = pub33.slice();
  wrongParity[0] = wrongParity[0] === 2 ? 3 : 2; // the key's mirror image -Q: a valid point, not the signer
  // The smallest x that is on no point of the curve (x^3 - 3x + b is not a square mod p).
  let noX = 1n;
  while ((() => { try { nobleCurve.Point.fromBytes(Uint8Array.of(2, ...bigintToBytes32(noX))); return true; } catch { return false; } })()) noX++;
  const cases: Array<[string, Uint8Array, Uint8Array, Uint8Array]> = [
    ['63-byte signature', digest, sig.subarray(0, 63), pub],
    ['65-byte signature', digest, Uint8Array.of(...sig, 0), pub],
    ['65-byte signature with recid', digest, Uint8Array.of(...sig, 1), pub],
    ['empty signature', digest, new Uint8Array(), pub],
    ['DER-encoded signature', digest, nobleCurve.Signature.fromBytes(sig, 'compact').toBytes('der'), pub],
    ['r = 0', digest, signatureBytes(0n, s), pub],
    ['s = 0', digest, signatureBytes(r, 0n), pub],
    ['r = s = 0', digest, new Uint8Array(64), pub],
    ['r = n', digest, signatureBytes(P256_N, s), pub],
    ['s = n', digest, signatureBytes(r, P256_N), pub],
    ['r = n + r (same r mod n)', digest, signatureBytes(P256_N + r < 1n << 256n ? P256_N + r : r + 1n, s), pub],
    ['r = p', digest, signatureBytes(P, s), pub],
    ['r = 2^256 - 1', digest, signatureBytes((1n << 256n) - 1n, s), pub],
    ['s = n - 1 (high)', digest, signatureBytes(r, P256_N - 1n), pub],
    ['s = n/2 + 1 (high)', digest, signatureBytes(r, P256_HALF_N + 1n), pub],
    ['high-s twin of a valid signature', digest, signatureBytes(r, P256_N - s), pub],
    ['31-byte digest', digest.subarray(0, 31), sig, pub],
    ['33-byte digest', Uint8Array.of(...digest, 0), sig, pub],
    ['empty digest', new Uint8Array(), sig, pub],
    ['key off the curve', digest, sig, offCurve],
    ['point at infinity (zeros)', digest, sig, Uint8Array.of(4, ...new Uint8Array(64))],
    ['single 00 byte (SEC1 infinity)', digest, sig, Uint8Array.of(0)],
    ['64-byte raw x || y', digest, sig, pub.subarray(1)],
    ['key 0x05 prefix', digest, sig, Uint8Array.of(5, ...pub.subarray(1))],
    ['hybrid 0x06/0x07 key', digest, sig, Uint8Array.of(6 + (pub[64]! & 1), ...pub.subarray(1))],
    ['compressed prefix on 65 bytes', digest, sig, Uint8Array.of(2, ...pub.subarray(1))],
    ['uncompressed prefix on 33 bytes', digest, sig, Uint8Array.of(4, ...pub33.subarray(1))],
    ['compressed key, wrong parity', digest, sig, wrongParity],
    ['compressed key with x = p', digest, sig, Uint8Array.of(2, ...bigintToBytes32(P))],
    ['compressed key with x on no point', digest, sig, Uint8Array.of(2, ...bigintToBytes32(noX))],
    ['secp256k1 key of the same private key', digest, sig, secp256k1.publicKey(priv)],
  ];
  return { digest, sig, pub, cases };
}

for (const backend of backends) {
  test(`${backend.name}: malformed inputs give false, never an exception`, () => {
    const c = malformedCases();
    assert.ok(c.cases.length >= 30);
    assert.equal(p256Verify(c.digest, c.sig, c.pub, backend), true, 'the unmodified signature verifies');
    for (const [name, digest, sig, pub] of c.cases) assert.equal(p256Verify(digest, sig, pub, backend), false, name);
    const notBytes = 'not bytes' as unknown as Uint8Array;
    assert.equal(p256Verify(notBytes, c.sig, c.pub, backend), false);
    assert.equal(p256Verify(c.digest, notBytes, c.pub, backend), false);
    assert.equal(p256Verify(c.digest, c.sig, notBytes, backend), false);
    assert.equal(p256Verify(c.digest, c.sig, null as unknown as Uint8Array, backend), false);
  });
}

test('high-s is rejected by both backends; its low-s twin verifies', () => {
  const rand = prng('p256-highs');
  for (let i = 0; i < 10; i++) {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    const pub = p256PublicKey(priv);
    const { r, s } = rs(p256Sign(digest, priv));
    const high = signatureBytes(r, P256_N - s);
    // noble itself says the high-s form is a valid ECDSA signature once malleability is allowed.
    assert.equal(nobleCurve.verify(high, digest, pub, { lowS: false }), true);
    assert.equal(agreed(`high #${i}`, digest, high, pub), false);
    assert.equal(agreed(`low #${i}`, digest, signatureBytes(r, s), pub), true);
  }
});

test('signatures made by node:crypto (OpenSSL) verify on both backends after low-s normalisation', () => {
  const rand = prng('p256-openssl');
  let highSeen = 0;
  for (let i = 0; i < 40; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = Uint8Array.of(4, ...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url'));
    assert.equal(pub.length, 65);
    const digest = rand(32);
    const raw = new Uint8Array(cryptoSign('sha256', digest, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
    const { r, s } = rs(raw);
    const low = s > P256_HALF_N ? signatureBytes(r, P256_N - s) : raw;
    if (s > P256_HALF_N) {
      highSeen++;
      assert.equal(agreed(`openssl high-s #${i}`, digest, raw, pub), false, 'OpenSSL does not normalise; the raw high-s form is refused');
    }
    assert.equal(agreed(`openssl #${i}`, digest, low, pub), true);
    // The private scalar from the JWK gives the same public key through p256PublicKey.
    const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
    assert.deepEqual(p256PublicKey(new Uint8Array(d)), pub);
  }
  assert.ok(highSeen > 0, 'OpenSSL produced no high-s signature in 40 tries (probability 2^-40)');
});

test('p256Sign and p256PublicKey reject bad private keys and digests with CRYPTO_INVALID_INPUT', () => {
  const rand = prng('p256-bad-sign');
  const priv = privateKeyFrom(rand);
  const digest = rand(32);
  const isInvalid = (e: unknown) => hasCode(e, 'CRYPTO_INVALID_INPUT');
  for (const bad of [new Uint8Array(32), bigintToBytes32(P256_N), new Uint8Array(32).fill(0xff), priv.subarray(1), Uint8Array.of(...priv, 0)]) {
    assert.throws(() => p256Sign(digest, bad), isInvalid);
    assert.throws(() => p256PublicKey(bad), isInvalid);
  }
  assert.doesNotThrow(() => p256Sign(digest, bigintToBytes32(P256_N - 1n)));
  for (const bad of [digest.subarray(1), Uint8Array.of(...digest, 0), new Uint8Array()]) assert.throws(() => p256Sign(bad, priv), isInvalid);
});

test('verifySignature dispatches on the key type', () => {
  const rand = prng('p256-dispatch');
  const priv = privateKeyFrom(rand);
  const digest = rand(32);
  const kPub = secp256k1.publicKey(priv);
  const kSig = secp256k1.sign(digest, priv).signature;
  const rPub = p256PublicKey(priv);
  const rSig = p256Sign(digest, priv);
  assert.equal(verifySignature('secp256k1', digest, kSig, kPub), true);
  assert.equal(verifySignature('p256', digest, rSig, rPub), true);
  assert.equal(verifySignature('p256', digest, kSig, kPub), false, 'a secp256k1 key under the P-256 rule');
  assert.equal(verifySignature('secp256k1', digest, rSig, rPub), false, 'a P-256 key under the secp256k1 rule');
  assert.equal(verifySignature('p256', digest, kSig, rPub), false);
  assert.equal(verifySignature('secp256k1', digest, rSig, kPub), false);
  // secp256k1 signs the raw digest: a signature over sha256(digest) is of another message.
  assert.equal(verifySignature('secp256k1', digest, secp256k1.sign(sha256(digest), priv).signature, kPub), false);
  assert.equal(verifySignature('p256', digest.subarray(1), rSig, rPub), false);
  assert.equal(verifySignature('secp256k1', digest.subarray(1), kSig, kPub), false);
  assert.throws(() => verifySignature('ed25519' as KeyType, digest, rSig, rPub), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'));
});

test('keyAddress: Ethereum address for secp256k1, the same derivation for P-256', () => {
  const rand = prng('p256-address');
  for (let i = 0; i < 10; i++) {
    const priv = privateKeyFrom(rand);
    assert.equal(keyAddress(secp256k1.publicKey(priv)), computeAddress(bytesToHex(secp256k1.publicKey(priv))).toLowerCase());
    const pub = p256PublicKey(priv);
    const expected = bytesToHex(keccak256(pub.subarray(1)).subarray(12));
    assert.equal(keyAddress(pub), expected);
    assert.match(keyAddress(pub), /^0x[0-9a-f]{40}$/);
    assert.notEqual(keyAddress(pub), keyAddress(secp256k1.publicKey(priv)));
  }
  const priv = privateKeyFrom(rand);
  for (const bad of [p256PublicKey(priv, true), p256PublicKey(priv).subarray(1), Uint8Array.of(5, ...p256PublicKey(priv).subarray(1))]) {
    assert.throws(() => keyAddress(bad), (e) => hasCode(e, 'CRYPTO_INVALID_INPUT'));
  }
});

test('native: more keys than the KeyObject cache holds still verify correctly', { skip: NATIVE_SKIP }, () => {
  const rand = prng('p256-cache');
  const entries = Array.from({ length: 300 }, () => {
    const priv = privateKeyFrom(rand);
    const digest = rand(32);
    return { digest, pub: p256PublicKey(priv), sig: p256Sign(digest, priv) };
  });
  for (const e of entries) assert.equal(p256Verify(e.digest, e.sig, e.pub, native!), true);
  // The first keys were evicted; verifying them again rebuilds their KeyObjects.
  for (const e of entries.slice(0, 20)) assert.equal(p256Verify(e.digest, e.sig, e.pub, native!), true);
  assert.equal(p256Verify(entries[0]!.digest, entries[1]!.sig, entries[0]!.pub, native!), false);
});

test('backend selection', () => {
  assert.equal(chooseP256Backend('noble'), nobleP256);
  assert.equal(chooseP256Backend('NOBLE'), nobleP256);
  assert.equal(chooseP256Backend(undefined).name, native ? 'native' : 'noble');
  assert.equal(chooseP256Backend('').name, native ? 'native' : 'noble');
  if (native) assert.equal(chooseP256Backend('native'), native);
  else assert.throws(() => chooseP256Backend('native'), /DATAGATE_CRYPTO=native/);
  assert.throws(() => chooseP256Backend('fast'), /DATAGATE_CRYPTO must be one of/);
  assert.equal(p256BackendName(), p256Backend.name);
});

test('DATAGATE_CRYPTO=noble forces the noble P-256 backend in a fresh process', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = "import('./chain/crypto/index.ts').then((m) => console.log(m.p256BackendName()))";
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, DATAGATE_CRYPTO: 'noble' },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'noble');
});

test('Wycheproof ECDSA P-256 SHA-256 P1363: both backends match the expected verdict under the low-s rule', (t) => {
  const file = JSON.parse(readFileSync(new URL('../vectors/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json', import.meta.url), 'utf8'));
  assert.equal(file.algorithm, 'ECDSA');
  assert.equal(file.schema, 'ecdsa_p1363_verify_schema_v1.json');
  const counts = { valid: 0, validHighS: 0, invalid: 0, wrongSize: 0 };
  let total = 0;
  /** backend.verify (any message length: Wycheproof's messages are not 32-byte digests) on every backend. */
  const verdict = (what: string, msg: Uint8Array, sig: Uint8Array, pub: Uint8Array): boolean => {
    const vs = backends.map((b) => b.verify(msg, sig, pub));
    for (const v of vs.slice(1)) assert.equal(v, vs[0], `${what}: backends disagree`);
    return vs[0]!;
  };
  for (const group of file.testGroups) {
    assert.equal(group.sha, 'SHA-256');
    assert.equal(group.publicKey.curve, 'secp256r1');
    const pub = hexToBytes(group.publicKey.uncompressed);
    const pub33 = nobleCurve.Point.fromBytes(pub).toBytes(true);
    for (const tc of group.tests) {
      total++;
      const what = `tcId ${tc.tcId} (${tc.comment})`;
      const msg = hexToBytes(tc.msg);
      const sig = hexToBytes(tc.sig);
      const got = verdict(what, msg, sig, pub);
      assert.equal(verdict(`${what}, compressed key`, msg, sig, pub33), got, `${what}: compressed key gives another verdict`);
      if (sig.length !== 64) {
        counts.wrongSize++;
        counts.invalid++;
        assert.equal(tc.result, 'invalid', `${what}: a valid vector of ${sig.length} bytes`);
        assert.equal(got, false, what);
        continue;
      }
      const { r, s } = rs(sig);
      if (tc.result === 'valid') {
        if (s > P256_HALF_N) {
          // Documented rule: verification accepts low-s only. Wycheproof counts the high-s form valid, so it
          // must be refused as it stands and its twin (r, n - s) accepted.
          counts.validHighS++;
          assert.equal(got, false, `${what}: high-s must be rejected`);
          assert.equal(verdict(`${what} low-s twin`, msg, signatureBytes(r, P256_N - s), pub), true, `${what}: low-s twin`);
        } else {
          counts.valid++;
          assert.equal(got, true, what);
        }
      } else if (tc.result === 'invalid') {
        counts.invalid++;
        assert.equal(got, false, what);
        if (s > P256_HALF_N && s < P256_N && r > 0n && r < P256_N) {
          // An invalid high-s vector stays invalid in low-s form (it was not rejected only for being high).
          assert.equal(verdict(`${what} low-s form`, msg, signatureBytes(r, P256_N - s), pub), false, `${what}: low-s form`);
        }
      } else {
        t.diagnostic(`${what}: result ${tc.result}, backends agree on ${String(got)}`);
      }
    }
  }
  assert.equal(total, file.numberOfTests);
  t.diagnostic(`${total} vectors in ${file.testGroups.length} key groups on ${backends.map((b) => b.name).join(' and ')}: ` +
    `${counts.valid} valid low-s accepted, ${counts.validHighS} valid high-s rejected (low-s twin accepted), ` +
    `${counts.invalid} invalid rejected, of which ${counts.wrongSize} not 64 bytes`);
});
