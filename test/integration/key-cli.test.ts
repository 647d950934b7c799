// `datagate key ...` run as a real process against SoftHSM2 and keystore files: create, list, show, and an
// EIP-191 signature that ethers verifies; secrets come from files; errors exit non-zero with their code.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { verifyMessage } from 'ethers';
import { rpcCall, startDev } from '../helpers/dev-process.ts';
import { setupSoftHsm, softHsmSkipReason, type SoftHsm } from '../helpers/softhsm.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));
const SKIP = softHsmSkipReason();
let hsm: SoftHsm | undefined;
let dir: string;

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'datagate-keycli-'));
  writeFileSync(join(dir, 'pass'), 'correct horse battery\n', { mode: 0o600 });
  if (SKIP === false) {
    hsm = setupSoftHsm({ tokens: ['gw'] });
    writeFileSync(join(dir, 'pin'), `${hsm.pin}\n`, { mode: 0o600 });
  }
});

after(() => {
  hsm?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('keystore keys: new, show, list, sign-message verified by ethers', async () => {
  const file = join(dir, 'validator.json');
  const created = await run(['key', 'new', '--type', 'secp256k1', '--keystore', file, '--passphrase-file', join(dir, 'pass')]);
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { uri: string; type: string; address: string; publicKey: string };
  assert.equal(key.uri, `keystore:${file}`);
  assert.equal(key.type, 'secp256k1');
  const shown = await run(['key', 'show', '--key', key.uri], { DATAGATE_KEYSTORE_PASSPHRASE: 'correct horse battery' });
  assert.equal(shown.code, 0, shown.stderr);
  assert.deepEqual(JSON.parse(shown.stdout), key);
  const signed = await run(['key', 'sign-message', '--key', key.uri, '--passphrase-file', join(dir, 'pass'), '--message', 'I run validator 0']);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(verifyMessage('I run validator 0', signed.stdout.trim()).toLowerCase(), key.address);
  const listed = await run(['key', 'list', '--keystore-dir', dir, '--passphrase-file', join(dir, 'pass')]);
  assert.deepEqual((JSON.parse(listed.stdout) as { address: string }[]).map((k) => k.address), [key.address]);
  const again = await run(['key', 'new', '--type', 'secp256k1', '--keystore', file, '--passphrase-file', join(dir, 'pass')]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /\[KEYSTORE_EXISTS\]/);
  const wrong = await run(['key', 'show', '--key', key.uri], { DATAGATE_KEYSTORE_PASSPHRASE: 'wrong' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /\[KEYSTORE_BAD_PASSPHRASE\]/);
  const p256 = await run(['key', 'new', '--type', 'p256', '--keystore', join(dir, 'tpm-like.json'), '--passphrase-file', join(dir, 'pass')]);
  const p256Key = JSON.parse(p256.stdout) as { uri: string; address?: string };
  assert.equal(p256Key.address, undefined);
  const refused = await run(['key', 'sign-message', '--key', p256Key.uri, '--passphrase-file', join(dir, 'pass'), '--message', 'x']);
  assert.equal(refused.code, 2);
});

test('usage errors exit 2 and name the problem', async () => {
  const bogus = await run(['key', 'new', '--bogus']);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /--bogus/);
  const sub = await run(['key', 'frobnicate']);
  assert.equal(sub.code, 2);
  const help = await run(['key', 'sign-message', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--message/);
});

test('PKCS#11 keys on SoftHSM2: new, list, show, sign-message verified by ethers; bad PIN refused', { skip: SKIP }, async () => {
  const env = { SOFTHSM2_CONF: process.env['SOFTHSM2_CONF']! };
  const created = await run(['key', 'new', '--type', 'secp256k1', '--pkcs11-module', hsm!.modulePath, '--token', 'gw', '--label', 'validator 0', '--pin-file', join(dir, 'pin')], env);
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { uri: string; address: string };
  assert.match(key.uri, /^pkcs11:token=gw;object=validator%200\?module-path=/);
  const listed = await run(['key', 'list', '--pkcs11-module', hsm!.modulePath, '--token', 'gw'], { ...env, DATAGATE_PKCS11_PIN: hsm!.pin });
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as { uri: string }[]).map((k) => k.uri), [key.uri]);
  const shown = await run(['key', 'show', '--key', key.uri, '--pin-file', join(dir, 'pin')], env);
  assert.equal((JSON.parse(shown.stdout) as { address: string }).address, key.address);
  const signed = await run(['key', 'sign-message', '--key', key.uri, '--pin-file', join(dir, 'pin'), '--message', 'hardware says hi'], env);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal(verifyMessage('hardware says hi', signed.stdout.trim()).toLowerCase(), key.address);
  const badPin = await run(['key', 'show', '--key', key.uri], { ...env, DATAGATE_PKCS11_PIN: '0000' });
  assert.equal(badPin.code, 1);
  assert.match(badPin.stderr, /\[PKCS11_PIN_INCORRECT\]/);
  const noToken = await run(['key', 'show', '--key', key.uri.replace('token=gw', 'token=nope'), '--pin-file', join(dir, 'pin')], env);
  assert.match(noToken.stderr, /\[PKCS11_TOKEN_NOT_FOUND\]/);
});

test('datagate dev takes validator 0 by key URI (a P-256 keystore key, as a TPM would hold), and remembers it', { timeout: 170_000 }, async () => {
  const file = join(dir, 'validator-p256.json');
  const created = await run(['key', 'new', '--type', 'p256', '--keystore', file, '--passphrase-file', join(dir, 'pass')]);
  const key = JSON.parse(created.stdout) as { uri: string; publicKey: string };
  const dataDir = join(dir, 'dev');
  const node = await startDev(['--data-dir', dataDir, '--block-period', '100', '--validator-key', key.uri, '--passphrase-file', join(dir, 'pass')]);
  try {
    const committee = (await rpcCall(node.rpcUrl, 'lbft_committee')).result as { validators: { keyType: string; publicKey: string }[] };
    assert.equal(committee.validators[0]!.keyType, 'p256');
    assert.equal(committee.validators[0]!.publicKey, key.publicKey);
    const deadline = Date.now() + 15_000;
    while (Number((await rpcCall(node.rpcUrl, 'eth_blockNumber')).result) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(Number((await rpcCall(node.rpcUrl, 'eth_blockNumber')).result) >= 3);
  } finally {
    await node.stop();
  }
  // The data directory remembers validator-0's key: a restart that forgot --validator-key is refused.
  const forgot = await run(['dev', '--data-dir', dataDir, '--rpc-port', '0']);
  assert.equal(forgot.code, 1);
  assert.match(forgot.stderr, /\[VALIDATOR_KEY_CHANGED\]/);
  const solo = await run(['dev', '--data-dir', join(dir, 'dev-solo'), '--rpc-port', '0', '--solo', '--validator-key', key.uri, '--passphrase-file', join(dir, 'pass')]);
  assert.equal(solo.code, 1);
  assert.match(solo.stderr, /\[DEV_KEY_UNSUITABLE\]/);
});
