// Sealing a small secret (a segment key, later a private payload key) to one reader's X25519 public key with
// tweetnacl's `box` and a fresh ephemeral key pair, in the format of EIP-1024 that MetaMask's
// eth_getEncryptionPublicKey / eth_decrypt and @metamask/eth-sig-util use (x25519-xsalsa20-poly1305, base64
// fields), so wallet tooling can open what a gateway delivers. See docs/architecture.md "Sealing to readers".
import nacl from 'tweetnacl';
import { ChainError } from '../errors.ts';

export const SEALED_BOX_VERSION = 'x25519-xsalsa20-poly1305';

/** A message sealed to one reader: only the holder of the reader's X25519 secret key opens it. */
export interface SealedBox {
  readonly version: typeof SEALED_BOX_VERSION;
  /** 24 random bytes, base64. */
  readonly nonce: string;
  /** The sender's one-time X25519 public key, base64. */
  readonly ephemPublicKey: string;
  /** XSalsa20-Poly1305 ciphertext with its 16-byte tag, base64. */
  readonly ciphertext: string;
}

/** An X25519 key pair for reading sealed boxes. */
export function readerKeyPair(secretKey?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  if (secretKey === undefined) return nacl.box.keyPair();
  if (secretKey.length !== nacl.box.secretKeyLength) throw new ChainError('CRYPTO_INVALID_INPUT', `an X25519 secret key has ${nacl.box.secretKeyLength} bytes, not ${secretKey.length}`);
  return nacl.box.keyPair.fromSecretKey(secretKey);
}

/** Decode a base64 X25519 public key (as eth_getEncryptionPublicKey returns it); CRYPTO_INVALID_INPUT if it is not 32 bytes. */
export function parseReaderPublicKey(base64: string): Uint8Array {
  const bytes = fromBase64(base64, 'reader public key');
  if (bytes.length !== nacl.box.publicKeyLength) throw new ChainError('CRYPTO_INVALID_INPUT', `a reader public key is ${nacl.box.publicKeyLength} bytes in base64 (eth_getEncryptionPublicKey's format), got ${bytes.length}`);
  return bytes;
}

/** Seal `message` to `readerPublicKey` (32 bytes). */
export function sealToReader(message: Uint8Array, readerPublicKey: Uint8Array): SealedBox {
  if (readerPublicKey.length !== nacl.box.publicKeyLength) throw new ChainError('CRYPTO_INVALID_INPUT', `a reader public key has ${nacl.box.publicKeyLength} bytes, not ${readerPublicKey.length}`);
  const ephemeral = nacl.box.keyPair();
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const ciphertext = nacl.box(message, nonce, readerPublicKey, ephemeral.secretKey);
  ephemeral.secretKey.fill(0);
  return { version: SEALED_BOX_VERSION, nonce: toBase64(nonce), ephemPublicKey: toBase64(ephemeral.publicKey), ciphertext: toBase64(ciphertext) };
}

/** Open a sealed box with the reader's X25519 secret key; CRYPTO_INVALID_INPUT when it is malformed or not for this key. */
export function openSealedBox(box: unknown, readerSecretKey: Uint8Array): Uint8Array {
  const b = box as Partial<Record<keyof SealedBox, unknown>> | null;
  if (b === null || typeof b !== 'object' || b.version !== SEALED_BOX_VERSION) throw new ChainError('CRYPTO_INVALID_INPUT', `not a sealed box: version must be "${SEALED_BOX_VERSION}"`);
  const nonce = fromBase64(b.nonce, 'nonce');
  const ephem = fromBase64(b.ephemPublicKey, 'ephemPublicKey');
  const ciphertext = fromBase64(b.ciphertext, 'ciphertext');
  if (nonce.length !== nacl.box.nonceLength || ephem.length !== nacl.box.publicKeyLength) throw new ChainError('CRYPTO_INVALID_INPUT', 'sealed box: the nonce must be 24 bytes and ephemPublicKey 32');
  const opened = nacl.box.open(ciphertext, nonce, ephem, readerSecretKey);
  if (opened === null) throw new ChainError('CRYPTO_INVALID_INPUT', 'the sealed box does not open with this reader key (sealed to another key, or altered)');
  return opened;
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function fromBase64(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 === 1) throw new ChainError('CRYPTO_INVALID_INPUT', `sealed box: ${what} must be base64`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}
