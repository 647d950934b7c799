// Integration tests of the PKCS#11 signer against a real SoftHSM2 (no mocks): key generation, 1,000
// signatures per curve checked by chain/crypto and, for secp256k1, by ethers' ecrecover; low-s
// normalisation actually exercised; PIN, token and object errors; the double-sign guard around it; session
// recovery after the session is closed behind the signer's back, and the loud failures when the key is
// gone or replaced. Also the pkcs11: URI parser, which needs no token. Skips (with SOFTHSM_SKIP) when
// SoftHSM2 is not installed, unless DATAGATE_REQUIRE_SYSTEM=1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recoverAddress } from 'ethers';
import { P256_HALF_N, SECP256K1_HALF_N, bytesToBigint, bytesToHex, consensusDigest, hasCode, keccak256, verifySignature } from '../../chain/index.ts';
import { DeviceError, GuardedSigner, Pkcs11Module, Pkcs11Signer, parsePkcs11Uri } from '../../device/index.ts';
import { pkcs11TestHooks } from '../../device/pkcs11.ts';
import { pkcs11Binding, tokenError } from '../../device/pkcs11-module.ts';
import { SOFTHSM_SKIP, hasPkcs11Tool, setupSoftHsm, softHsmSkipReason, type SoftHsm } from '../helpers/softhsm.ts';

const SKIP = softHsmSkipReason();
const N = 1000;

/** Asserts that `fn` rejects with a DeviceError (or DatagateError) carrying `code`; returns it. */
async function rejectsWith(fn: () => Promise<unknown>, code: string): Promise<DeviceError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(hasCode(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${(err as Error).message}`);
    return err as DeviceError;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

function throwsWith(fn: () => unknown, code: string, part?: string): void {
  assert.throws(fn, (err: unknown) => hasCode(err, code) && (part === undefined || (err as DeviceError).fields['part'] === part));
}

describe('parsePkcs11Uri', () => {
  test('token and object, percent-decoded', () => {
    assert.deepEqual(parsePkcs11Uri('pkcs11:token=gw;object=validator'), { token: 'gw', object: 'validator' });
    assert.deepEqual(parsePkcs11Uri('PKCS11:token=My%20token%25;object=val%2Fid%C3%A4tor'), { token: 'My token%', object: 'val/idätor' });
    assert.deepEqual(parsePkcs11Uri("pkcs11:token=:[]@!$'()*+,=&"), { token: ":[]@!$'()*+,=&" });
  });

  test('id is raw bytes; type private/public', () => {
    const uri = parsePkcs11Uri('pkcs11:token=gw;id=%01%02%ff;type=private');
    assert.deepEqual(uri.id, Uint8Array.from([1, 2, 255]));
    assert.equal(uri.type, 'private');
    assert.equal(uri.object, undefined);
  });

  test('query: module-path and pin-source (file:/ and file:///)', () => {
    const uri = parsePkcs11Uri('pkcs11:token=gw;object=v?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/datagate/pin');
    assert.equal(uri.modulePath, '/usr/lib/softhsm/libsofthsm2.so');
    assert.equal(uri.pinSource, '/etc/datagate/pin');
    assert.equal(parsePkcs11Uri('pkcs11:token=gw?pin-source=file:///run/pin%20file').pinSource, '/run/pin file');
  });

  test('pin-value is refused unless allowed, and redacted from errors', () => {
    const uri = 'pkcs11:token=gw;object=v?pin-value=123456';
    assert.throws(
      () => parsePkcs11Uri(uri),
      (err: unknown) => hasCode(err, 'PKCS11_URI_INVALID') && (err as DeviceError).fields['part'] === 'pin-value' && !JSON.stringify((err as DeviceError).fields).includes('123456') && !(err as Error).message.includes('123456'),
    );
    assert.equal(parsePkcs11Uri(uri, { allowPinValue: true }).pinValue, '123456');
    throwsWith(() => parsePkcs11Uri('pkcs11:token=gw?pin-value=1234&pin-source=file:/p', { allowPinValue: true }), 'PKCS11_URI_INVALID', 'pin-value');
  });

  test('errors name the bad part', () => {
    const cases: [string, string][] = [
      ['pkcs12:token=gw', 'scheme'],
      ['pkcs11:object=v', 'token'],
      ['pkcs11:token=gw;serial=1234', 'serial'],
      ['pkcs11:token=gw;x-vendor=1', 'x-vendor'],
      ['pkcs11:token=gw;token=other', 'token'],
      ['pkcs11:token=gw;object=a%G1', 'object'],
      ['pkcs11:token=gw;object=a%2', 'object'],
      ['pkcs11:token=gw;object=%ff', 'object'],
      ['pkcs11:token=gw;object=', 'object'],
      ['pkcs11:token=gw;object=a b', 'object'],
      ['pkcs11:token=gw;type=cert', 'type'],
      ['pkcs11:token=gw#frag', 'fragment'],
      [`pkcs11:token=${'x'.repeat(33)}`, 'token'],
      ['pkcs11:token=gw?module-path=lib.so', 'module-path'],
      ['pkcs11:token=gw?module-name=softhsm2', 'module-name'],
      ['pkcs11:token=gw?pin-source=/etc/pin', 'pin-source'],
      ['pkcs11:token=gw?pin-source=file://host/etc/pin', 'pin-source'],
      ['pkcs11:token=gw?pin-source=https:/x', 'pin-source'],
      ['pkcs11:token=gw;object', 'path attribute #2'],
      ['pkcs11:token=gw?123456', 'query attribute #1'],
    ];
    for (const [uri, part] of cases) {
      assert.throws(() => parsePkcs11Uri(uri), (err: unknown) => {
        assert.ok(hasCode(err, 'PKCS11_URI_INVALID'), `${uri}: ${String(err)}`);
        assert.equal((err as DeviceError).fields['part'], part, uri);
        return true;
      });
    }
  });
});

test('CKR_PIN_LOCKED maps to PKCS11_PIN_LOCKED (SoftHSM2 never locks its PIN, so this uses the binding error class)', { skip: SKIP }, () => {
  const ck = pkcs11Binding();
  const err = tokenError(new ck.Pkcs11Error('CKR_PIN_LOCKED:164', 164, 'C_Login'), 'C_Login');
  assert.equal(err.code, 'PKCS11_PIN_LOCKED');
  assert.equal(err.fields['rv'], 'CKR_PIN_LOCKED');
  const other = tokenError(new ck.Pkcs11Error('CKR_DEVICE_REMOVED:50', 50, 'C_Sign'), 'C_Sign');
  assert.equal(other.code, 'PKCS11_TOKEN_ERROR');
  assert.equal(other.fields['rv'], 'CKR_DEVICE_REMOVED');
  assert.match(other.message, /CKR_DEVICE_REMOVED/);
});

describe('Pkcs11Signer on SoftHSM2', { skip: SKIP }, () => {
  let hsm: SoftHsm;
  let token: { modulePath: string; tokenLabel: string; pin: string };
  const K1 = 'validator-k1';
  const P256 = 'validator-p256';

  before(() => {
    hsm = setupSoftHsm({ tokens: ['datagate-test', 'datagate-pins'] });
    token = { modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin };
  });
  after(() => hsm?.cleanup());

  test('generate secp256k1 and P-256 key pairs; a second generate with one label is refused', async () => {
    const k1 = await Pkcs11Signer.generate({ ...token, objectLabel: K1, keyType: 'secp256k1' });
    assert.equal(k1.keyType, 'secp256k1');
    assert.equal(k1.id.length, 16);
    assert.equal(k1.publicKey?.length, 65);
    const p = await Pkcs11Signer.generate({ ...token, objectLabel: P256, keyType: 'p256' });
    assert.equal(p.keyType, 'p256');
    assert.notDeepEqual(k1.id, p.id);
    await rejectsWith(() => Pkcs11Signer.generate({ ...token, objectLabel: K1, keyType: 'p256' }), 'PKCS11_OBJECT_EXISTS');

    const listed = await Pkcs11Signer.list(token);
    assert.deepEqual(listed.map((k) => [k.label, k.keyType, k.address]).sort(), [[K1, 'secp256k1', k1.address], [P256, 'p256', p.address]].sort());
  });

  test('private keys are sensitive and never extractable (read back by OpenSC pkcs11-tool)', { skip: hasPkcs11Tool() ? false : SOFTHSM_SKIP }, () => {
    const out = execFileSync('pkcs11-tool', ['--module', hsm.modulePath, '--token-label', hsm.tokenLabel, '--login', '--pin', hsm.pin, '--list-objects', '--type', 'privkey'], {
      encoding: 'utf8', env: process.env,
    });
    const blocks = out.split(/\n(?=Private Key Object)/).filter((b) => b.startsWith('Private Key Object'));
    assert.equal(blocks.length, 2, out);
    for (const b of blocks) {
      assert.match(b, /Usage:\s+sign/);
      assert.match(b, /Access:.*\bsensitive\b/);
      assert.match(b, /never extractable/);
    }
  });

  test(`secp256k1: ${N} signatures verify, recover the signer's address in ethers, and are low-s`, async () => {
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: K1 });
    try {
      assert.equal(signer.keyType, 'secp256k1');
      const digests = Array.from({ length: N }, () => new Uint8Array(randomBytes(32)));
      // All at once: the signer must serialise them on its one session.
      const sigs = await Promise.all(digests.map((d) => signer.sign(d, 'message')));
      for (let i = 0; i < N; i++) {
        const digest = digests[i] as Uint8Array;
        const sig = sigs[i] as Uint8Array;
        assert.equal(sig.length, 65);
        const recid = sig[64] as number;
        assert.ok(recid === 0 || recid === 1);
        assert.ok(bytesToBigint(sig.subarray(32, 64)) <= SECP256K1_HALF_N, 'low-s');
        assert.ok(verifySignature('secp256k1', digest, sig.subarray(0, 64), signer.publicKey), `signature ${i} verifies`);
        const address = recoverAddress(bytesToHex(digest), { r: bytesToHex(sig.subarray(0, 32)), s: bytesToHex(sig.subarray(32, 64)), v: 27 + recid });
        assert.equal(address.toLowerCase(), signer.address, `signature ${i} recovers in ethers`);
      }
      const c = signer.counters;
      assert.equal(c.signatures, N);
      // A token signs with random k, so about half of its raw signatures are high-s.
      assert.ok(c.normalised > N / 4 && c.normalised < (3 * N) / 4, `normalised ${c.normalised} of ${N}`);
    } finally {
      await signer.close();
    }
  });

  test(`P-256: ${N} signatures verify (ECDSA-P256-SHA256 over the digest) and are low-s`, async () => {
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: P256, pin: new TextEncoder().encode(hsm.pin) });
    try {
      assert.equal(signer.keyType, 'p256');
      for (let i = 0; i < N; i++) {
        const digest = new Uint8Array(randomBytes(32));
        const sig = await signer.sign(digest, 'message');
        assert.equal(sig.length, 64);
        assert.ok(bytesToBigint(sig.subarray(32, 64)) <= P256_HALF_N, 'low-s');
        assert.ok(verifySignature('p256', digest, sig, signer.publicKey), `signature ${i} verifies`);
      }
      assert.equal(signer.counters.signatures, N);
      assert.ok(signer.counters.normalised > N / 4 && signer.counters.normalised < (3 * N) / 4, `normalised ${signer.counters.normalised}`);
    } finally {
      await signer.close();
    }
  });

  test('wrong PIN -> PKCS11_PIN_INCORRECT, also while another signer holds the login', async () => {
    await rejectsWith(() => Pkcs11Signer.list({ ...token, tokenLabel: 'datagate-pins', pin: '000000' }), 'PKCS11_PIN_INCORRECT');
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: K1 });
    try {
      // The token answers CKR_USER_ALREADY_LOGGED_IN here without checking the PIN; the module must not accept it.
      await rejectsWith(() => Pkcs11Signer.open({ ...token, objectLabel: K1, pin: '000000' }), 'PKCS11_PIN_INCORRECT');
      await signer.sign(new Uint8Array(32).fill(1), 'message');
    } finally {
      await signer.close();
    }
  });

  test('missing token, missing object and an unsupported curve are named', async () => {
    const t = await rejectsWith(() => Pkcs11Signer.open({ ...token, tokenLabel: 'no-such-token', objectLabel: K1 }), 'PKCS11_TOKEN_NOT_FOUND');
    assert.deepEqual([...(t.fields['labels'] as string[])].sort(), [...hsm.tokenLabels].sort());
    const o = await rejectsWith(() => Pkcs11Signer.open({ ...token, objectLabel: 'no-such-key' }), 'PKCS11_OBJECT_NOT_FOUND');
    assert.deepEqual([...(o.fields['labels'] as string[])].sort(), [K1, P256]);

    // A P-384 pair made straight through the binding: found, but refused.
    await withRawSession(async (module, session) => {
      const { ck, lib } = module;
      const label = Buffer.from('p384', 'utf8');
      await lib.C_GenerateKeyPairAsync(session, { mechanism: ck.CKM_EC_KEY_PAIR_GEN },
        [{ type: ck.CKA_TOKEN, value: true }, { type: ck.CKA_LABEL, value: label }, { type: ck.CKA_EC_PARAMS, value: Buffer.from('06052b81040022', 'hex') }],
        [{ type: ck.CKA_TOKEN, value: true }, { type: ck.CKA_LABEL, value: label }, { type: ck.CKA_SIGN, value: true }, { type: ck.CKA_PRIVATE, value: true }]);
    });
    const u = await rejectsWith(() => Pkcs11Signer.open({ ...token, objectLabel: 'p384' }), 'PKCS11_UNSUPPORTED_KEY');
    assert.equal(u.fields['ecParams'], '0x06052b81040022');
    const listed = await Pkcs11Signer.list(token);
    assert.equal(listed.find((k) => k.label === 'p384')?.keyType, 'unsupported');
  });

  test('in a GuardedSigner: signs a proposal, returns it again for the same request, refuses a conflict', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'datagate-pkcs11-guard-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const inner = await Pkcs11Signer.open({ ...token, objectLabel: K1 });
    t.after(() => inner.close());
    const guard = await GuardedSigner.open({ inner, stateFile: join(dir, 'sign-state.json') });
    assert.equal(guard.address, inner.address);
    const hash = keccak256(new TextEncoder().encode('block 7'));
    const digest = consensusDigest('proposal', 1337n, 7n, 0, hash);
    const sig = await guard.sign(digest, 'proposal', { height: 7n, round: 0, hash });
    const address = recoverAddress(bytesToHex(digest), { r: bytesToHex(sig.subarray(0, 32)), s: bytesToHex(sig.subarray(32, 64)), v: 27 + (sig[64] as number) });
    assert.equal(address.toLowerCase(), inner.address);
    assert.deepEqual(await guard.sign(digest, 'proposal', { height: 7n, round: 0, hash }), sig);
    const other = keccak256(new TextEncoder().encode('another block 7'));
    await rejectsWith(() => guard.sign(consensusDigest('proposal', 1337n, 7n, 0, other), 'proposal', { height: 7n, round: 0, hash: other }), 'SIGN_CONFLICT');
    assert.equal(inner.counters.signatures, 1);
  });

  test('session recovery: a session closed behind the signer is reopened and the signature still made', async () => {
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: K1 });
    const other = await Pkcs11Signer.open({ ...token, objectLabel: P256 });
    try {
      const d1 = new Uint8Array(randomBytes(32));
      assert.ok(verifySignature('secp256k1', d1, (await signer.sign(d1, 'message')).subarray(0, 64), signer.publicKey));
      pkcs11TestHooks.closeSessionBehindBack(signer);
      const d2 = new Uint8Array(randomBytes(32));
      assert.ok(verifySignature('secp256k1', d2, (await signer.sign(d2, 'message')).subarray(0, 64), signer.publicKey));
      assert.equal(signer.counters.sessionRecoveries, 1);

      // Every session gone at once (login lost too): both recover.
      pkcs11TestHooks.closeSessionBehindBack(signer);
      pkcs11TestHooks.closeSessionBehindBack(other);
      await signer.sign(d2, 'message');
      assert.ok(verifySignature('p256', d2, await other.sign(d2, 'message'), other.publicKey));
      assert.equal(signer.counters.sessionRecoveries, 2);
      assert.equal(other.counters.sessionRecoveries, 1);

      // Closing one signer keeps the token's login for the other.
      await signer.close();
      await rejectsWith(() => signer.sign(d2, 'message'), 'PKCS11_CLOSED');
      assert.ok(verifySignature('p256', d1, await other.sign(d1, 'message'), other.publicKey));
      assert.equal(other.counters.sessionRecoveries, 1);
    } finally {
      await signer.close();
      await other.close();
    }
  });

  test('a key replaced under the signer is refused (PKCS11_KEY_CHANGED); a deleted one fails loudly every time', async () => {
    await Pkcs11Signer.generate({ ...token, objectLabel: 'rotating', keyType: 'secp256k1' });
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: 'rotating' });
    try {
      await destroyObjects('rotating');
      await rejectsWith(() => signer.sign(new Uint8Array(32).fill(2), 'message'), 'PKCS11_OBJECT_NOT_FOUND');
      await rejectsWith(() => signer.sign(new Uint8Array(32).fill(2), 'message'), 'PKCS11_OBJECT_NOT_FOUND');
      await Pkcs11Signer.generate({ ...token, objectLabel: 'rotating', keyType: 'secp256k1' });
      await rejectsWith(() => signer.sign(new Uint8Array(32).fill(3), 'message'), 'PKCS11_KEY_CHANGED');
    } finally {
      await signer.close();
    }
  });

  test('after Pkcs11Module.finalize a signer fails with PKCS11_CLOSED; a new open works', async () => {
    const signer = await Pkcs11Signer.open({ ...token, objectLabel: P256 });
    Pkcs11Module.finalize(hsm.modulePath);
    await rejectsWith(() => signer.sign(new Uint8Array(32), 'message'), 'PKCS11_CLOSED');
    await signer.close();
    const again = await Pkcs11Signer.open({ ...token, objectLabel: P256 });
    assert.equal(again.address, signer.address);
    await again.close();
  });

  /** A logged-in read-write session of the test's own, for changing the token under a signer. */
  async function withRawSession(fn: (module: Pkcs11Module, session: Buffer) => Promise<void>): Promise<void> {
    const module = Pkcs11Module.get(hsm.modulePath);
    const slot = module.findSlot(hsm.tokenLabel);
    const session = module.openLoggedIn(slot, new TextEncoder().encode(hsm.pin), true);
    try {
      await fn(module, session);
    } finally {
      module.release(slot, session);
    }
  }

  async function destroyObjects(label: string): Promise<void> {
    await withRawSession(async (module, session) => {
      const objects = module.findObjects(session, [{ type: module.ck.CKA_LABEL, value: Buffer.from(label, 'utf8') }]);
      assert.equal(objects.length, 2);
      for (const o of objects) module.lib.C_DestroyObject(session, o);
    });
  }
});
