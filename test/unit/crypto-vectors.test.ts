// chain/crypto against public vectors (test/vectors, see its README): Wycheproof's ECDSA secp256k1/SHA-256
// verification tests, and Ethereum transactions with known senders from ethereumjs. Every vector runs on
// both backends; they must agree with each other and with the expected result. The native half skips when
// the addon is not installed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DER } from '@noble/curves/abstract/weierstrass.js';
import { secp256k1 as nobleCurve } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { Transaction, computeAddress, decodeRlp } from 'ethers';
import {
  SECP256K1_HALF_N,
  SECP256K1_N,
  bytesToHex,
  hexToBytes,
  loadNativeSecp256k1,
  nativeLoadError,
  nobleSecp256k1,
  recoverAddress,
  signatureBytes,
  type Secp256k1Backend,
} from '../../chain/crypto/index.ts';
import { hasCode } from '../../chain/errors.ts';

const native = loadNativeSecp256k1();
const NATIVE_SKIP = native ? false : `native secp256k1 addon not available (${String(nativeLoadError()).split('\n')[0]}); vectors run on noble only`;
const backends: Secp256k1Backend[] = native ? [nobleSecp256k1, native] : [nobleSecp256k1];

test('the native backend runs every vector below', { skip: NATIVE_SKIP }, () => {
  assert.deepEqual(backends.map((b) => b.name), ['noble', 'native']);
});

function loadJson(path: string): any {
  return JSON.parse(readFileSync(new URL(`../vectors/${path}`, import.meta.url), 'utf8'));
}

/** Result of a call on every backend; asserts they are all the same and returns it. */
function agreed(what: string, fn: (b: Secp256k1Backend) => unknown): unknown {
  const results = backends.map((b) => {
    try {
      const v = fn(b);
      return v instanceof Uint8Array ? bytesToHex(v) : v;
    } catch (err) {
      assert.ok(hasCode(err, 'CRYPTO_INVALID_INPUT'), `${what} (${b.name}): unexpected error ${String(err)}`);
      return 'throws' as const;
    }
  });
  for (const r of results.slice(1)) assert.deepEqual(r, results[0], `${what}: backends disagree`);
  return results[0];
}

test('Wycheproof ECDSA secp256k1 SHA-256: both backends match the expected verdict', (t) => {
  const file = loadJson('wycheproof/ecdsa_secp256k1_sha256_test.json');
  assert.equal(file.algorithm, 'ECDSA');
  const P = nobleCurve.Point.Fp.ORDER;
  const counts = { valid: 0, validHighS: 0, invalid: 0, unparsable: 0, outOfRange: 0, recovered: 0 };
  let total = 0;
  for (const group of file.testGroups) {
    assert.equal(group.sha, 'SHA-256');
    const pub = hexToBytes(group.publicKey.uncompressed);
    for (const tc of group.tests) {
      total++;
      const what = `tcId ${tc.tcId} (${tc.comment})`;
      const digest = sha256(hexToBytes(tc.msg));
      const der = hexToBytes(tc.sig);
      // Strict DER through noble's parser: anything it refuses (BER, wrong types, r or s outside [1, n-1])
      // is invalid to us. A Wycheproof "valid" vector must always parse.
      let rs: { r: bigint; s: bigint };
      try {
        const sig = nobleCurve.Signature.fromBytes(der, 'der');
        rs = { r: sig.r, s: sig.s };
      } catch {
        assert.notEqual(tc.result, 'valid', `${what}: valid vector does not parse`);
        counts.unparsable++;
        // Well-formed DER with out-of-range r or s (0, n, p, ...) still reaches the backends, which must say false.
        try {
          const raw = DER.toSig(der);
          if (raw.r < 1n << 256n && raw.s < 1n << 256n) {
            const sig64 = signatureBytes(raw.r, raw.s);
            counts.outOfRange++;
            assert.equal(agreed(`${what} raw verify`, (b) => b.verify(digest, sig64, pub)), false, what);
            for (const recid of [0, 1] as const) agreed(`${what} raw recover ${recid}`, (b) => b.recoverPublicKey(digest, sig64, recid));
          }
        } catch {
          // Not DER at all: nothing more to feed the backends.
        }
        continue;
      }
      const sig64 = signatureBytes(rs.r, rs.s);
      const verdict = agreed(`${what} verify`, (b) => b.verify(digest, sig64, pub));
      const highS = rs.s > SECP256K1_HALF_N;
      if (tc.result === 'valid') {
        // Documented rule: verify rejects high-s. Wycheproof counts such signatures valid, so check that
        // they are rejected as they stand and accepted in their low-s form (r, n - s).
        if (highS) {
          counts.validHighS++;
          assert.equal(verdict, false, `${what}: high-s must be rejected`);
          const low = signatureBytes(rs.r, SECP256K1_N - rs.s);
          assert.equal(agreed(`${what} low-s verify`, (b) => b.verify(digest, low, pub)), true, `${what}: low-s twin`);
        } else {
          counts.valid++;
          assert.equal(verdict, true, what);
        }
      } else if (tc.result === 'invalid') {
        counts.invalid++;
        assert.equal(verdict, false, what);
      } else {
        t.diagnostic(`${what}: result ${tc.result}, backends agree on ${String(verdict)}`);
      }
      // Recovery on the same edge cases: both backends must return the same key or both refuse. For a valid
      // signature whose R.x cannot exceed n (r + n >= p), one of recid 0/1 must give the group's key.
      const found = ([0, 1] as const).map((recid) => agreed(`${what} recover ${recid}`, (b) => b.recoverPublicKey(digest, sig64, recid)));
      if (tc.result === 'valid' && rs.r + SECP256K1_N >= P) {
        assert.ok(found.includes(`0x${group.publicKey.uncompressed}`), `${what}: no recid recovers the public key`);
        counts.recovered++;
      }
    }
  }
  assert.equal(total, file.numberOfTests);
  t.diagnostic(`${total} vectors: ${counts.valid} valid, ${counts.validHighS} valid high-s (rejected; low-s twin accepted), ` +
    `${counts.invalid} invalid; ${counts.unparsable} refused by strict DER parsing, of which ${counts.outOfRange} well-formed with ` +
    `r or s out of range were rejected by the backends; ${counts.recovered} valid keys recovered`);
});

type Vector = { name: string; raw: string; sender: string; hash?: string };

/** ethereumjs' copy of ethereum/tests ttTransactionTestEip155VitaliksTests: legacy EIP-155 RLP plus sender. */
function vitalikVectors(): Vector[] {
  return loadJson('ethereumjs/ttTransactionTestEip155VitaliksTests.json').map((v: any, i: number) => ({
    name: `EIP-155 #${i}`,
    raw: v.rlp,
    sender: `0x${v.sender}`,
  }));
}

/**
 * ethereumjs eip1559.json: type-2 transactions. Upstream asserts that signing the fields with `privateKey`
 * gives exactly `signedTransactionRLP`, so the sender is the key's address (derived here by ethers from the
 * key, a path that does not use signature recovery). The file wraps each envelope in an RLP byte string.
 */
function eip1559Vectors(): Vector[] {
  return loadJson('ethereumjs/eip1559.json').map((v: any, i: number) => ({
    name: `EIP-1559 #${i} (nonce ${v.nonce})`,
    raw: decodeRlp(v.signedTransactionRLP) as string,
    sender: computeAddress(v.privateKey).toLowerCase(),
  }));
}

/** ethereum/tests TransactionTests: a valid type-2 transaction with the sender and hash clients agree on. */
function ethereumTestsVectors(): Vector[] {
  const file = loadJson('ethereum-tests/GasLimitPriceProductOverflowtMinusOne.json');
  return Object.entries(file).map(([name, v]: [string, any]) => ({
    name: `ethereum/tests ${name}`,
    raw: v.txbytes,
    sender: v.result.London.sender,
    hash: v.result.London.hash,
  }));
}

test('Ethereum transactions: both backends recover the known sender', (t) => {
  const vectors = [...vitalikVectors(), ...eip1559Vectors(), ...ethereumTestsVectors()];
  const types = new Set<number>();
  for (const { name, raw, sender, hash } of vectors) {
    const tx = Transaction.from(raw);
    const sig = tx.signature;
    assert.ok(sig, `${name}: unsigned`);
    if (hash !== undefined) assert.equal(tx.hash, hash, `${name}: decoded a different transaction`);
    types.add(tx.type ?? 0);
    const digest = hexToBytes(tx.unsignedHash);
    const r = BigInt(sig.r);
    const s = BigInt(sig.s);
    for (const backend of backends) {
      assert.equal(recoverAddress(digest, r, s, sig.yParity, backend), sender, `${name} on ${backend.name}`);
    }
  }
  assert.deepEqual([...types].sort(), [0, 2], 'legacy and EIP-1559 transactions are both covered');
  t.diagnostic(`${vectors.length} transactions recovered to their known sender on ${backends.map((b) => b.name).join(' and ')}`);
});
