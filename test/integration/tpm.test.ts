// The PKCS#11 signer against a TPM: a software TPM (swtpm) with a tpm2-pkcs11 token holding a P-256 key,
// reached through the same module (libtpm2_pkcs11.so) a gateway with a TPM chip loads. Signs 50 digests in
// the TPM and verifies each under the chain's P-256 convention. Skips when swtpm or tpm2-pkcs11 is missing,
// unless DATAGATE_REQUIRE_SYSTEM=1 (CI), when it fails instead. deploy/tpm/README.md has the real-chip steps.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { SignPurpose } from '../../chain/index.ts';
import { P256_HALF_N, bytesToBigint, keyAddress, verifySignature } from '../../chain/crypto/index.ts';
import { Pkcs11Signer } from '../../device/pkcs11.ts';
import { startSwtpmToken, tpmSkipReason, type SwtpmToken } from '../helpers/swtpm.ts';

const skip = tpmSkipReason();
// Top-level tests, each skipped on its own, so a skip shows in the runner's skipped count.
const opts = { skip: skip ?? false };
const PURPOSES: readonly SignPurpose[] = ['proposal', 'prepare', 'commit', 'round-change', 'seal'];

let tok: SwtpmToken;
let signer: Pkcs11Signer | undefined;

function opened(): Pkcs11Signer {
  assert.ok(signer !== undefined, 'the signer was opened in before()');
  return signer;
}

function openSigner(pin: string): Promise<Pkcs11Signer> {
  return Pkcs11Signer.open({ modulePath: tok.modulePath, tokenLabel: tok.tokenLabel, objectLabel: tok.objectLabel, pin });
}

before(async () => {
  if (skip !== null) return;
  tok = await startSwtpmToken();
  // libtpm2_pkcs11.so reads its TCTI (which TPM) and store location from this process's environment.
  Object.assign(process.env, tok.env);
  signer = await openSigner(tok.pin);
});

after(async () => {
  await signer?.close();
  await tok?.stop();
});

test('opens the TPM-held P-256 key and reports its public key and address', opts, () => {
  const key = opened();
  assert.equal(key.keyType, 'p256');
  assert.equal(key.publicKey.length, 65);
  assert.deepEqual(Buffer.from(key.publicKey), Buffer.from(tok.publicKey), 'public key is the one pkcs11-tool read from the token');
  assert.equal(key.address, keyAddress(tok.publicKey));
});

test('signs 50 digests in the TPM; each is 64 bytes r || s, low-s, and verifies under the P-256 convention', opts, async () => {
  const key = opened();
  let height = 1n;
  for (let i = 0; i < 50; i++) {
    const digest = new Uint8Array(randomBytes(32));
    const purpose = PURPOSES[i % PURPOSES.length]!;
    const sig = await key.sign(digest, purpose, { height, round: i % 3, hash: new Uint8Array(randomBytes(32)) });
    if (purpose === 'seal') height++;
    assert.equal(sig.length, 64, `signature ${i} is 64 bytes`);
    assert.ok(bytesToBigint(sig.subarray(32, 64)) <= P256_HALF_N, `signature ${i} has low s`);
    assert.ok(verifySignature('p256', digest, sig, key.publicKey), `signature ${i} verifies`);
    const other = Uint8Array.from(digest);
    other[0]! ^= 1;
    assert.equal(verifySignature('p256', other, sig, key.publicKey), false, `signature ${i} does not verify another digest`);
  }
});

test('refuses a wrong PIN, and the right one still works after it', opts, async () => {
  // Closed first: while a signer of this process is logged in, the token would not check another PIN.
  // One wrong PIN only: the TPM's dictionary-attack counter locks all PIN checks out after 3 (swtpm's
  // default). The TSS prints "Esys_Unseal ... authorization HMAC check failed" to stderr here: expected.
  await signer?.close();
  signer = undefined;
  await assert.rejects(openSigner('000000'), { code: 'PKCS11_PIN_INCORRECT' });
  const again = await openSigner(tok.pin);
  signer = again;
  assert.deepEqual(Buffer.from(again.publicKey), Buffer.from(tok.publicKey));
  const digest = new Uint8Array(randomBytes(32));
  assert.ok(verifySignature('p256', digest, await again.sign(digest, 'message'), again.publicKey));
});
