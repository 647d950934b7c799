// Sealing to a reader (chain/crypto/sealed-box.ts): the public EIP-1024 vector that MetaMask's eth-sig-util and
// other wallets test against opens, our own boxes open only with the right key, and malformed input is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hexToBytes, openSealedBox, parseReaderPublicKey, readerKeyPair, sealToReader } from '../../chain/index.ts';

// EIP-1024's example: Bob's X25519 secret key, his public key as eth_getEncryptionPublicKey returns it, and a
// message Alice sealed to him.
const BOB_SECRET = hexToBytes('0x7e5374ec2ef0d91761a6e72fdf8f6ac665519bfdf6da0a2329cf0d804514b816');
const BOB_PUBLIC = 'C5YMNdqE4kLgxQhJO1MfuQcHP5hjVSXzamzd/TxlR0U=';
const TO_BOB = {
  version: 'x25519-xsalsa20-poly1305',
  nonce: '1dvWO7uOnBnO7iNDJ9kO9pTasLuKNlej',
  ephemPublicKey: 'FBH1/pAEHOOW14Lu3FWkgV3qOEcuL78Zy+qW1RwzMXQ=',
  ciphertext: 'f8kBcl/NCyf3sybfbwAKk/np2Bzt9lRVkZejr6uh5FgnNlH/ic62DZzy',
};

test('the EIP-1024 vector: the public key of the secret, and the sealed message opens', { timeout: 10_000 }, () => {
  assert.equal(Buffer.from(readerKeyPair(BOB_SECRET).publicKey).toString('base64'), BOB_PUBLIC);
  assert.equal(new TextDecoder().decode(openSealedBox(TO_BOB, BOB_SECRET)), 'My name is Satoshi Buterin');
});

test('a sealed box opens with the reader key only, fresh each time, and refuses any altered byte', { timeout: 10_000 }, () => {
  const reader = readerKeyPair();
  const other = readerKeyPair();
  const secret = new Uint8Array(32).map((_, i) => i);
  const a = sealToReader(secret, parseReaderPublicKey(Buffer.from(reader.publicKey).toString('base64')));
  const b = sealToReader(secret, reader.publicKey);
  assert.notEqual(a.ephemPublicKey, b.ephemPublicKey);
  assert.notEqual(a.ciphertext, b.ciphertext);
  assert.deepEqual(openSealedBox(a, reader.secretKey), secret);
  assert.deepEqual(openSealedBox(JSON.parse(JSON.stringify(b)), reader.secretKey), secret);
  assert.throws(() => openSealedBox(a, other.secretKey), /does not open with this reader key/);
  const ct = Buffer.from(a.ciphertext, 'base64');
  ct[3]! ^= 1;
  assert.throws(() => openSealedBox({ ...a, ciphertext: ct.toString('base64') }, reader.secretKey), /does not open/);
});

test('malformed boxes and keys get CRYPTO_INVALID_INPUT', { timeout: 10_000 }, () => {
  const reader = readerKeyPair();
  const box = sealToReader(new Uint8Array([1, 2, 3]), reader.publicKey);
  const bad: unknown[] = [null, 'x', {}, { ...box, version: 'x25519-chacha' }, { ...box, nonce: 'AAAA' }, { ...box, ephemPublicKey: '!!' }, { ...box, ciphertext: 42 }];
  for (const b of bad) assert.throws(() => openSealedBox(b, reader.secretKey), (err: { code?: string }) => err.code === 'CRYPTO_INVALID_INPUT', JSON.stringify(b));
  assert.throws(() => parseReaderPublicKey('AAAA'), /32 bytes/);
  assert.throws(() => sealToReader(new Uint8Array(1), new Uint8Array(31)), /32 bytes/);
  assert.throws(() => readerKeyPair(new Uint8Array(16)), /32 bytes/);
});
