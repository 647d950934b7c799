// Keystore files (Web3 Secret Storage v3): interop with ethers both ways and with the public geth/wiki
// vectors, wrong passphrases and corrupt or hostile files, P-256 keys, KeystoreSigner (signatures, create's
// mode and refusal to overwrite, inside a GuardedSigner) and the passphrase sources.
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SigningKey, Wallet, computeAddress, encryptKeystoreJson, recoverAddress } from 'ethers';
import { bytesToHex, hasCode, hexToBytes, keccak256, verifySignature } from '../../chain/index.ts';
import {
  GuardedSigner, KeystoreSigner, MIN_SCRYPT_N, decryptKeystore, encryptKeystore, readPassphrase,
} from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';
import { expectCode as rejectsWith } from '../helpers/expect-code.ts';

const PASS = new TextEncoder().encode('correct horse battery staple');
const KEY = hexToBytes('0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318');
const FAST = { scryptN: MIN_SCRYPT_N } as const;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);


/** A fast keystore of KEY, parsed, for tests that alter fields. */
async function fastDoc(): Promise<Record<string, any>> {
  return JSON.parse(await encryptKeystore(KEY, PASS, FAST));
}

test('our keystore has the v3 shape and ethers decrypts it to the same key and address', async () => {
  const json = await encryptKeystore(KEY, PASS, FAST);
  const doc = JSON.parse(json);
  assert.equal(doc.version, 3);
  assert.match(doc.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(doc.address, /^[0-9a-f]{40}$/);
  assert.deepEqual(Object.keys(doc.crypto).sort(), ['cipher', 'cipherparams', 'ciphertext', 'kdf', 'kdfparams', 'mac']);
  assert.equal(doc.crypto.cipher, 'aes-128-ctr');
  assert.equal(doc.crypto.kdf, 'scrypt');
  assert.deepEqual({ ...doc.crypto.kdfparams, salt: undefined }, { dklen: 32, n: 4096, r: 8, p: 1, salt: undefined });
  assert.equal(doc['x-datagate-keytype'], undefined);
  const wallet = await Wallet.fromEncryptedJson(json, PASS);
  assert.equal(wallet.privateKey, bytesToHex(KEY));
  assert.equal(`0x${doc.address}`, wallet.address.toLowerCase());
  const ours = await decryptKeystore(json, PASS);
  assert.deepEqual(ours.privateKey, KEY);
  assert.equal(ours.address, wallet.address.toLowerCase());
  assert.equal(ours.keyType, 'secp256k1');
  // A fresh salt, IV and id every time.
  assert.notEqual(JSON.parse(await encryptKeystore(KEY, PASS, FAST)).crypto.ciphertext, doc.crypto.ciphertext);
});

test('default scrypt N (2^17) interoperates with ethers', async () => {
  const json = await encryptKeystore(KEY, PASS);
  assert.equal(JSON.parse(json).crypto.kdfparams.n, 2 ** 17);
  const wallet = await Wallet.fromEncryptedJson(json, PASS);
  assert.equal(wallet.privateKey, bytesToHex(KEY));
});

test('a keystore written by ethers decrypts with ours', async () => {
  // ethers 6's Wallet.encrypt takes no scrypt options; encryptKeystoreJson is what it calls underneath.
  const wallet = Wallet.createRandom();
  const account = { address: wallet.address, privateKey: wallet.privateKey, mnemonic: { entropy: wallet.mnemonic!.entropy, path: wallet.path! } };
  const json = await encryptKeystoreJson(account, PASS, { scrypt: { N: 4096 } });
  assert.ok(JSON.parse(json)['x-ethers'], 'an HD wallet keystore, with ethers\' own extra field');
  const key = await decryptKeystore(json, PASS);
  assert.equal(bytesToHex(key.privateKey), wallet.privateKey);
  assert.equal(key.address, wallet.address.toLowerCase());
  // ethers writes a string password as NFKC UTF-8 bytes; an ASCII passphrase is the same either way.
  const json2 = await encryptKeystoreJson(account, 'plain ascii', { scrypt: { N: 4096 } });
  assert.equal((await decryptKeystore(json2, utf8('plain ascii'))).address, wallet.address.toLowerCase());
});

test('public vectors: Web3 Secret Storage PBKDF2, geth 31- and 30-byte keys', async () => {
  // go-ethereum accounts/keystore/testdata/v3_test_vector.json (the PBKDF2 one is the Web3 Secret Storage wiki's).
  const vectors = [
    {
      password: 'testpassword',
      priv: '7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d',
      json: {
        crypto: {
          cipher: 'aes-128-ctr', cipherparams: { iv: '6087dab2f9fdbbfaddc31a909735c1e6' },
          ciphertext: '5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46', kdf: 'pbkdf2',
          kdfparams: { c: 262144, dklen: 32, prf: 'hmac-sha256', salt: 'ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd' },
          mac: '517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2',
        },
        id: '3198bc9c-6672-5ab3-d995-4942343ae5b6', version: 3,
      },
    },
    {
      password: 'foo',
      priv: 'fa7b3db73dc7dfdf8c5fbdb796d741e4488628c41fc4febd9160a866ba0f35',
      json: {
        crypto: {
          cipher: 'aes-128-ctr', cipherparams: { iv: 'e0c41130a323adc1446fc82f724bca2f' },
          ciphertext: '9517cd5bdbe69076f9bf5057248c6c050141e970efa36ce53692d5d59a3984', kdf: 'scrypt',
          kdfparams: { dklen: 32, n: 2, r: 8, p: 1, salt: '711f816911c92d649fb4c84b047915679933555030b3552c1212609b38208c63' },
          mac: 'd5e116151c6aa71470e67a7d42c9620c75c4d23229847dcc127794f0732b0db5',
        },
        id: 'fecfc4ce-e956-48fd-953b-30f8b52ed66c', version: 3,
      },
    },
    {
      password: 'foo',
      priv: '81c29e8142bb6a81bef5a92bda7a8328a5c85bb2f9542e76f9b0f94fc018',
      json: {
        crypto: {
          cipher: 'aes-128-ctr', cipherparams: { iv: '3ca92af36ad7c2cd92454c59cea5ef00' },
          ciphertext: '108b7d34f3442fc26ab1ab90ca91476ba6bfa8c00975a49ef9051dc675aa', kdf: 'scrypt',
          kdfparams: { dklen: 32, n: 2, r: 8, p: 1, salt: 'd0769e608fb86cda848065642a9c6fa046845c928175662b8e356c77f914cd3b' },
          mac: '75d0e6759f7b3cefa319c3be41680ab6beea7d8328653474bd06706d4cc67420',
        },
        id: 'a37e1559-5955-450d-8075-7b8931b392b2', version: 3,
      },
    },
  ];
  for (const v of vectors) {
    const key = await decryptKeystore(JSON.stringify(v.json), utf8(v.password));
    assert.equal(bytesToHex(key.privateKey), `0x${v.priv.padStart(64, '0')}`, v.json.id);
    assert.equal(key.address, computeAddress(bytesToHex(key.privateKey)).toLowerCase());
  }
});

test('a wrong passphrase, or an altered ciphertext or MAC, is KEYSTORE_BAD_PASSPHRASE', async () => {
  const doc = await fastDoc();
  await rejectsWith(decryptKeystore(JSON.stringify(doc), utf8('wrong')), 'KEYSTORE_BAD_PASSPHRASE');
  await rejectsWith(decryptKeystore(JSON.stringify(doc), new Uint8Array(0)), 'KEYSTORE_BAD_PASSPHRASE');
  // The MAC cannot tell a wrong passphrase from an altered file: both get the same code.
  const flip = (hex: string): string => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
  await rejectsWith(decryptKeystore(JSON.stringify({ ...doc, crypto: { ...doc.crypto, ciphertext: flip(doc.crypto.ciphertext) } }), PASS), 'KEYSTORE_BAD_PASSPHRASE');
  await rejectsWith(decryptKeystore(JSON.stringify({ ...doc, crypto: { ...doc.crypto, mac: flip(doc.crypto.mac) } }), PASS), 'KEYSTORE_BAD_PASSPHRASE');
});

test('corrupt and hostile files are KEYSTORE_CORRUPT naming the field, refused before any KDF work', async () => {
  const doc = await fastDoc();
  const kdfp = (params: Record<string, unknown>) => ({ ...doc, crypto: { ...doc.crypto, kdfparams: { ...doc.crypto.kdfparams, ...params } } });
  const cryptoWith = (fields: Record<string, unknown>) => ({ ...doc, crypto: { ...doc.crypto, ...fields } });
  const cases: [name: string, text: string, field: string][] = [
    ['bad JSON', '{"version": 3,', '(file)'],
    ['an array', '[]', '(file)'],
    ['version 2', JSON.stringify({ ...doc, version: 2 }), 'version'],
    ['bad id', JSON.stringify({ ...doc, id: 'not-a-uuid' }), 'id'],
    ['missing crypto', JSON.stringify({ ...doc, crypto: undefined }), 'crypto'],
    ['other cipher', JSON.stringify(cryptoWith({ cipher: 'aes-128-cbc' })), 'crypto.cipher'],
    ['missing iv', JSON.stringify(cryptoWith({ cipherparams: {} })), 'crypto.cipherparams.iv'],
    ['short iv', JSON.stringify(cryptoWith({ cipherparams: { iv: 'abcd' } })), 'crypto.cipherparams.iv'],
    ['missing ciphertext', JSON.stringify(cryptoWith({ ciphertext: undefined })), 'crypto.ciphertext'],
    ['non-hex mac', JSON.stringify(cryptoWith({ mac: 'zz'.repeat(32) })), 'crypto.mac'],
    ['other kdf', JSON.stringify(cryptoWith({ kdf: 'argon2id' })), 'crypto.kdf'],
    ['missing salt', JSON.stringify(kdfp({ salt: undefined })), 'crypto.kdfparams.salt'],
    ['dklen 16', JSON.stringify(kdfp({ dklen: 16 })), 'crypto.kdfparams.dklen'],
    ['huge N', JSON.stringify(kdfp({ n: 2 ** 30 })), 'crypto.kdfparams.n'],
    ['N = 2^21', JSON.stringify(kdfp({ n: 2 ** 21 })), 'crypto.kdfparams.n'],
    ['N not a power of two', JSON.stringify(kdfp({ n: 5000 })), 'crypto.kdfparams.n'],
    ['N a string', JSON.stringify(kdfp({ n: '4096' })), 'crypto.kdfparams.n'],
    ['r * p too large', JSON.stringify(kdfp({ n: 16, r: 64, p: 64 })), 'crypto.kdfparams'],
    ['memory over 1 GiB', JSON.stringify(kdfp({ n: 2 ** 20, r: 16 })), 'crypto.kdfparams'],
    ['work too large', JSON.stringify(kdfp({ n: 2 ** 20, r: 1, p: 16 })), 'crypto.kdfparams'],
    ['pbkdf2 sha512', JSON.stringify(cryptoWith({ kdf: 'pbkdf2', kdfparams: { c: 1, dklen: 32, prf: 'hmac-sha512', salt: 'aa' } })), 'crypto.kdfparams.prf'],
    ['pbkdf2 c huge', JSON.stringify(cryptoWith({ kdf: 'pbkdf2', kdfparams: { c: 1e9, dklen: 32, prf: 'hmac-sha256', salt: 'aa' } })), 'crypto.kdfparams.c'],
    ['bad key type', JSON.stringify({ ...doc, 'x-datagate-keytype': 'ed25519' }), 'x-datagate-keytype'],
    ['bad address', JSON.stringify({ ...doc, address: '1234' }), 'address'],
  ];
  const started = performance.now();
  for (const [name, text, field] of cases) {
    const fields = await rejectsWith(decryptKeystore(text, PASS), 'KEYSTORE_CORRUPT');
    assert.equal(fields['field'], field, name);
  }
  assert.ok(performance.now() - started < 1000, 'hostile parameters are refused without running the KDF');
  // An address that is not the key's is refused after decryption (the MAC is fine).
  const other = JSON.stringify({ ...doc, address: 'ab'.repeat(20) });
  assert.equal((await rejectsWith(decryptKeystore(other, PASS), 'KEYSTORE_CORRUPT'))['field'], 'address');
  // Without an address, and with 'Crypto' (MyEtherWallet) and 0x-prefixed hex, the file still reads.
  const loose = { ...doc, address: undefined, crypto: undefined, Crypto: { ...doc.crypto, mac: `0x${doc.crypto.mac}` } };
  assert.deepEqual((await decryptKeystore(JSON.stringify(loose), PASS)).privateKey, KEY);
});

test('encryptKeystore checks its arguments', async () => {
  await assert.rejects(encryptKeystore(KEY.subarray(1), PASS, FAST), TypeError);
  await assert.rejects(encryptKeystore(KEY, new Uint8Array(0), FAST), RangeError);
  await assert.rejects(encryptKeystore(KEY, PASS, { scryptN: 1024 }), RangeError);
  await assert.rejects(encryptKeystore(KEY, PASS, { scryptN: 5000 }), RangeError);
  await assert.rejects(encryptKeystore(KEY, PASS, { scryptN: 2 ** 21 }), RangeError);
  await assert.rejects(encryptKeystore(KEY, PASS, { ...FAST, keyType: 'ed25519' as never }), TypeError);
  await assert.rejects(encryptKeystore(new Uint8Array(32), PASS, FAST), (err) => hasCode(err, 'CRYPTO_INVALID_INPUT'));
});

test('P-256 keystores round-trip, are marked, and ethers refuses them rather than misreading the key', async () => {
  const json = await encryptKeystore(KEY, PASS, { ...FAST, keyType: 'p256' });
  const doc = JSON.parse(json);
  assert.equal(doc['x-datagate-keytype'], 'p256');
  const key = await decryptKeystore(json, PASS);
  assert.equal(key.keyType, 'p256');
  assert.deepEqual(key.privateKey, KEY);
  assert.equal(key.address, `0x${doc.address}`);
  assert.notEqual(key.address, computeAddress(bytesToHex(KEY)).toLowerCase());
  await assert.rejects(Wallet.fromEncryptedJson(json, PASS), /address/);
  // Dropping the marker makes the stored address disagree with the secp256k1 reading: refused.
  const unmarked = JSON.stringify({ ...doc, 'x-datagate-keytype': undefined });
  assert.equal((await rejectsWith(decryptKeystore(unmarked, PASS), 'KEYSTORE_CORRUPT'))['field'], 'address');
});

test('P-256 KeystoreSigner: created, reopened, and its signatures verify', async (t) => {
  const path = join(tempDir(t), 'p256.json');
  const created = await KeystoreSigner.create(path, PASS, { keyType: 'p256', ...FAST });
  const signer = await KeystoreSigner.open(path, PASS);
  assert.equal(signer.keyType, 'p256');
  assert.equal(signer.address, created.address);
  assert.deepEqual(signer.publicKey, created.publicKey);
  const digest = keccak256(utf8('a block'));
  const sig = await signer.sign(digest, 'message');
  assert.equal(sig.length, 64);
  assert.ok(verifySignature('p256', digest, sig, signer.publicKey));
  assert.ok(!verifySignature('p256', keccak256(utf8('another block')), sig, signer.publicKey));
});

test('secp256k1 KeystoreSigner signatures recover to its address with ethers', async (t) => {
  const path = join(tempDir(t), 'k1.json');
  writeFileSync(path, await encryptKeystore(KEY, PASS, FAST));
  const signer = await KeystoreSigner.open(path, PASS);
  assert.equal(signer.keyType, 'secp256k1');
  assert.equal(signer.address, new Wallet(bytesToHex(KEY)).address.toLowerCase());
  assert.equal(signer.path, path);
  assert.equal(Object.keys(signer).includes('privateKey'), false);
  const digest = keccak256(utf8('a block'));
  const sig = await signer.sign(digest, 'message');
  assert.equal(sig.length, 65);
  const ethSig = { r: bytesToHex(sig.subarray(0, 32)), s: bytesToHex(sig.subarray(32, 64)), v: 27 + sig[64]! };
  assert.equal(computeAddress(SigningKey.recoverPublicKey(digest, ethSig)).toLowerCase(), signer.address);
  assert.equal(recoverAddress(digest, ethSig).toLowerCase(), signer.address);
  assert.ok(verifySignature('secp256k1', digest, sig.subarray(0, 64), signer.publicKey));
});

test('create writes mode 0600, leaves no temp file, and never overwrites', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'validator.json');
  const signer = await KeystoreSigner.create(path, PASS, { keyType: 'secp256k1', ...FAST });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['validator.json']);
  const before = readFileSync(path, 'utf8');
  assert.equal(JSON.parse(before).address, signer.address.slice(2));
  assert.equal((await Wallet.fromEncryptedJson(before, PASS)).address.toLowerCase(), signer.address);
  const fields = await rejectsWith(KeystoreSigner.create(path, PASS, { keyType: 'p256', ...FAST }), 'KEYSTORE_EXISTS');
  assert.equal(fields['path'], path);
  assert.equal(readFileSync(path, 'utf8'), before);
  assert.deepEqual(readdirSync(dir), ['validator.json']);
  await assert.rejects(KeystoreSigner.create(join(dir, 'x.json'), PASS, { keyType: 'rsa' as never }), TypeError);
});

test('open: a missing file is KEY_NOT_FOUND; a wrong passphrase names the file', async (t) => {
  const dir = tempDir(t);
  assert.equal((await rejectsWith(KeystoreSigner.open(join(dir, 'none.json'), PASS), 'KEY_NOT_FOUND'))['path'], join(dir, 'none.json'));
  const path = join(dir, 'k.json');
  writeFileSync(path, await encryptKeystore(KEY, PASS, FAST));
  assert.equal((await rejectsWith(KeystoreSigner.open(path, utf8('nope')), 'KEYSTORE_BAD_PASSPHRASE'))['path'], path);
  writeFileSync(path, 'garbage');
  assert.deepEqual(await rejectsWith(KeystoreSigner.open(path, PASS), 'KEYSTORE_CORRUPT'), { field: '(file)', reason: 'is not JSON', path });
});

test('readPassphrase: from a file (one newline stripped), refusing loose modes; from the environment', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'pass');
  const read = (body: string | Uint8Array, mode = 0o600, allowWorldReadable = false) => {
    writeFileSync(file, body);
    chmodSync(file, mode);
    return readPassphrase({ file, allowWorldReadable });
  };
  assert.deepEqual(await read('secret\n'), utf8('secret'));
  assert.deepEqual(await read('secret\r\n'), utf8('secret'));
  assert.deepEqual(await read('secret\n\n'), utf8('secret\n'));
  assert.deepEqual(await read('  spaced  '), utf8('  spaced  '));
  assert.deepEqual(await read(new Uint8Array([0xff, 0x00, 0x80])), new Uint8Array([0xff, 0x00, 0x80]));
  await rejectsWith(read('\n'), 'PASSPHRASE_MISSING');
  await rejectsWith(read(''), 'PASSPHRASE_MISSING');
  assert.deepEqual(await rejectsWith(read('secret', 0o644), 'PASSPHRASE_FILE_INSECURE'), { file, mode: '0644' });
  await rejectsWith(read('secret', 0o620), 'PASSPHRASE_FILE_INSECURE');
  assert.deepEqual(await read('secret', 0o644, true), utf8('secret'));
  await rejectsWith(readPassphrase({ file: join(dir, 'none') }), 'PASSPHRASE_MISSING');

  const environment = { DG_PASS: 'from env', DG_EMPTY: '' };
  assert.deepEqual(await readPassphrase({ env: 'DG_PASS', environment }), utf8('from env'));
  assert.deepEqual((await rejectsWith(readPassphrase({ env: 'DG_UNSET', environment }), 'PASSPHRASE_MISSING'))['env'], 'DG_UNSET');
  await rejectsWith(readPassphrase({ env: 'DG_EMPTY', environment }), 'PASSPHRASE_MISSING');
  await rejectsWith(readPassphrase({}), 'PASSPHRASE_MISSING');
  await assert.rejects(readPassphrase({ file, env: 'DG_PASS', environment }), TypeError);
});

test('a KeystoreSigner inside a GuardedSigner signs, re-signs identically and refuses to equivocate', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'validator.json');
  writeFileSync(path, await encryptKeystore(KEY, PASS, FAST));
  const guard = await GuardedSigner.open({ inner: await KeystoreSigner.open(path, PASS), stateFile: join(dir, 'sign-state.json') });
  assert.equal(guard.address, new Wallet(bytesToHex(KEY)).address.toLowerCase());
  const hash = keccak256(utf8('block 7'));
  const digest = keccak256(utf8('prepare 7/0'));
  const sig = await guard.sign(digest, 'prepare', { height: 7n, round: 0, hash });
  assert.equal(recoverAddress(digest, { r: bytesToHex(sig.subarray(0, 32)), s: bytesToHex(sig.subarray(32, 64)), v: 27 + sig[64]! }).toLowerCase(), guard.address);
  assert.deepEqual(await guard.sign(digest, 'prepare', { height: 7n, round: 0, hash }), sig);
  const other = keccak256(utf8('block 7 bis'));
  await rejectsWith(guard.sign(keccak256(utf8('prepare 7/0 bis')), 'prepare', { height: 7n, round: 0, hash: other }), 'SIGN_CONFLICT');
});
