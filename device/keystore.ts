// Encrypted key files in Ethereum's Web3 Secret Storage v3 format (what geth and ethers write), the Signer
// that holds a key decrypted from one, and where its passphrase comes from.
//
// Format (a contract): JSON {address: 40 lowercase hex digits, no 0x; crypto: {cipher: 'aes-128-ctr',
// cipherparams: {iv}, ciphertext, kdf: 'scrypt', kdfparams: {dklen: 32, n, r: 8, p: 1, salt}, mac}; id: a
// UUID v4; version: 3}. derivedKey = scrypt(passphrase, salt); ciphertext = AES-128-CTR(derivedKey[0..16],
// iv, privateKey); mac = keccak256(derivedKey[16..32] || ciphertext). Reading also takes kdf 'pbkdf2' with
// prf 'hmac-sha256' (some wallets write it), 'Crypto' for 'crypto' (MyEtherWallet), and ciphertexts shorter
// than 32 bytes, which old geth wrote for keys with leading zero bytes (left-padded again, as geth does).
// P-256 keys add the non-standard top-level field "x-datagate-keytype": "p256". ethers and geth ignore
// unknown fields, decrypt such a file as if it held a secp256k1 key, and then refuse it because the
// secp256k1 address of the key is not the stored one: a P-256 key is never taken for an Ethereum account.
//
// The passphrase is bytes, used as given (no Unicode normalisation, as geth does; ethers NFKC-normalises
// string passwords, so give it bytes when a non-ASCII passphrase is not already in NFKC form).
// The MAC is checked, in constant time, before anything is decrypted. The KDF costs a file asks for are
// bounded (KEYSTORE_LIMITS) so a hostile file cannot exhaust memory or hold the process for minutes; scrypt
// and PBKDF2 run in their async forms so the event loop keeps turning meanwhile.
// Crypto comes from @noble/hashes (scrypt, PBKDF2, keccak via chain/) and @noble/ciphers (AES-CTR). Derived
// keys, MAC inputs and plaintext copies are zeroed after use, but JavaScript cannot guarantee erasure (the
// engine may copy buffers, strings are immutable): keep validator keys in hardware (PKCS#11) where you can.
// Signing goes through chain/crypto (libsecp256k1 or noble; noble for P-256): noble aims at constant time,
// but JavaScript engines give no hard timing guarantee.
import { randomUUID, getRandomValues, timingSafeEqual } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { ctr } from '@noble/ciphers/aes.js';
import { p256 } from '@noble/curves/nist.js';
import { pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Address, KeyType, SignPurpose, Signer } from '../chain/index.ts';
import { bytesToHex, hasCode, hexToBytes, keccak256, keyAddress, p256PublicKey, p256Sign, secp256k1 } from '../chain/index.ts';
import { DeviceError } from './errors.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** scrypt N written by default: 2^17 with r = 8, p = 1 (ethers' default; 128 MiB, about a second). */
export const DEFAULT_SCRYPT_N = 2 ** 17;
/** Smallest scrypt N `encryptKeystore` writes (geth's "light" setting); use it in tests only. */
export const MIN_SCRYPT_N = 2 ** 12;

/** What a keystore may ask for before it is refused as hostile (KEYSTORE_CORRUPT). */
export const KEYSTORE_LIMITS = Object.freeze({
  /** Largest scrypt N (geth's standard is 2^18). */
  maxScryptN: 2 ** 20,
  /** Largest scrypt memory, 128 * N * r bytes: 1 GiB, e.g. N = 2^20 with r = 8. */
  maxScryptMemory: 2 ** 30,
  /** Largest scrypt r * p. */
  maxScryptRP: 1024,
  /** Largest scrypt work N * r * p, the time it takes: that of N = 2^20, r = 8, p = 1. */
  maxScryptWork: 2 ** 23,
  /** Largest PBKDF2 iteration count. */
  maxPbkdf2Iterations: 10_000_000,
  /** Largest salt, in bytes. */
  maxSaltBytes: 1024,
});

const KEYTYPE_FIELD = 'x-datagate-keytype';
const HEX = /^(?:0x)?(?:[0-9a-fA-F]{2})*$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A key decrypted from a keystore. `privateKey` is the caller's to zero when done. */
export interface DecryptedKey {
  readonly privateKey: Uint8Array;
  readonly keyType: KeyType;
  /** Uncompressed public key (65 bytes). */
  readonly publicKey: Uint8Array;
  /** keyAddress of the public key (0x lowercase hex). */
  readonly address: Address;
}

export interface EncryptKeystoreOptions {
  /** scrypt N, a power of two in [MIN_SCRYPT_N, KEYSTORE_LIMITS.maxScryptN]; default DEFAULT_SCRYPT_N. */
  readonly scryptN?: number;
  /** Curve of the key; default 'secp256k1'. */
  readonly keyType?: KeyType;
}

type Kdf = { kdf: 'scrypt'; salt: Uint8Array; n: number; r: number; p: number } | { kdf: 'pbkdf2'; salt: Uint8Array; c: number };
interface Parsed {
  kdf: Kdf;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  mac: Uint8Array;
  keyType: KeyType;
  address: string | null;
}

function checkKeyType(keyType: unknown, argument: string): asserts keyType is KeyType {
  if (keyType !== 'secp256k1' && keyType !== 'p256') throw new TypeError(`${argument} must be 'secp256k1' or 'p256', got ${JSON.stringify(keyType)}`);
}

function publicKeyOf(keyType: KeyType, privateKey: Uint8Array): Uint8Array {
  return keyType === 'p256' ? p256PublicKey(privateKey, false) : secp256k1.publicKey(privateKey, false);
}

/** keccak256(derivedKey[16..32] || ciphertext), the v3 MAC; the copy of the key half is zeroed. */
function macOf(derivedKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const input = new Uint8Array(16 + ciphertext.length);
  input.set(derivedKey.subarray(16, 32), 0);
  input.set(ciphertext, 16);
  try {
    return keccak256(input);
  } finally {
    input.fill(0);
  }
}

function scryptMaxmem(n: number, r: number, p: number): number {
  return 128 * r * (n + p + 1); // exactly what @noble/hashes allocates, so its own limit never trips first
}

/**
 * Encrypt a 32-byte `privateKey` under `passphrase` (non-empty bytes) into keystore JSON text (scrypt
 * N = opts.scryptN, r = 8, p = 1, a fresh salt, IV and UUID). Throws TypeError or RangeError naming the bad
 * argument, and CRYPTO_INVALID_INPUT for a key that is not a valid scalar of its curve.
 */
export async function encryptKeystore(privateKey: Uint8Array, passphrase: Uint8Array, opts: EncryptKeystoreOptions = {}): Promise<string> {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) throw new TypeError('encryptKeystore: privateKey must be 32 bytes');
  if (!(passphrase instanceof Uint8Array)) throw new TypeError('encryptKeystore: passphrase must be a Uint8Array');
  if (passphrase.length === 0) throw new RangeError('encryptKeystore: passphrase is empty; anyone with the file could read the key');
  const { scryptN: n = DEFAULT_SCRYPT_N, keyType = 'secp256k1' } = opts;
  checkKeyType(keyType, 'encryptKeystore: opts.keyType');
  if (!Number.isSafeInteger(n) || n < MIN_SCRYPT_N || n > KEYSTORE_LIMITS.maxScryptN || (n & (n - 1)) !== 0) {
    throw new RangeError(`encryptKeystore: opts.scryptN must be a power of two from 2^12 to 2^20, got ${n}`);
  }
  const address = keyAddress(publicKeyOf(keyType, privateKey));
  const salt = getRandomValues(new Uint8Array(32));
  const iv = getRandomValues(new Uint8Array(16));
  const derivedKey = await scryptAsync(passphrase, salt, { N: n, r: 8, p: 1, dkLen: 32, maxmem: scryptMaxmem(n, 8, 1) });
  let ciphertext: Uint8Array;
  let mac: Uint8Array;
  try {
    ciphertext = ctr(derivedKey.subarray(0, 16), iv.slice()).encrypt(privateKey);
    mac = macOf(derivedKey, ciphertext);
  } finally {
    derivedKey.fill(0);
  }
  const hex = (b: Uint8Array): string => bytesToHex(b).slice(2);
  const doc: Record<string, unknown> = {
    address: address.slice(2),
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: hex(iv) },
      ciphertext: hex(ciphertext),
      kdf: 'scrypt',
      kdfparams: { dklen: 32, n, r: 8, p: 1, salt: hex(salt) },
      mac: hex(mac),
    },
    id: randomUUID(),
    version: 3,
  };
  if (keyType === 'p256') doc[KEYTYPE_FIELD] = 'p256';
  return JSON.stringify(doc, null, 2);
}

function corrupt(field: string, reason: string): DeviceError {
  return new DeviceError(
    'KEYSTORE_CORRUPT',
    `keystore ${field} ${reason}; this is not a Web3 Secret Storage v3 file datagate can read (restore the file from a backup)`,
    { field, reason },
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function recordAt(obj: Record<string, unknown>, key: string, path: string): Record<string, unknown> {
  const v = obj[key];
  if (!isRecord(v)) throw corrupt(path, v === undefined ? 'is missing' : 'is not an object');
  return v;
}

function hexAt(obj: Record<string, unknown>, key: string, path: string, min: number, max: number): Uint8Array {
  const v = obj[key];
  if (v === undefined) throw corrupt(path, 'is missing');
  if (typeof v !== 'string' || !HEX.test(v)) throw corrupt(path, 'is not a hex string');
  const b = hexToBytes(v);
  if (b.length < min || b.length > max) throw corrupt(path, `is ${b.length} bytes, expected ${min === max ? min : `${min} to ${max}`}`);
  return b;
}

function intAt(obj: Record<string, unknown>, key: string, path: string, min: number, max: number, why = ''): number {
  const v = obj[key];
  if (v === undefined) throw corrupt(path, 'is missing');
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw corrupt(path, 'is not an integer');
  if (v < min || v > max) throw corrupt(path, `is ${v}, outside [${min}, ${max}]${why}`);
  return v;
}

function parseKdf(c: Record<string, unknown>): Kdf {
  const params = recordAt(c, 'kdfparams', 'crypto.kdfparams');
  const salt = hexAt(params, 'salt', 'crypto.kdfparams.salt', 1, KEYSTORE_LIMITS.maxSaltBytes);
  intAt(params, 'dklen', 'crypto.kdfparams.dklen', 32, 32);
  if (c['kdf'] === 'pbkdf2') {
    if (params['prf'] !== 'hmac-sha256') throw corrupt('crypto.kdfparams.prf', `is ${JSON.stringify(params['prf'])}; only "hmac-sha256" is supported`);
    return { kdf: 'pbkdf2', salt, c: intAt(params, 'c', 'crypto.kdfparams.c', 1, KEYSTORE_LIMITS.maxPbkdf2Iterations, '; refusing a file this costly to open') };
  }
  if (c['kdf'] !== 'scrypt') throw corrupt('crypto.kdf', `is ${JSON.stringify(c['kdf'])}; expected "scrypt" or "pbkdf2"`);
  const hostile = '; refusing a file that could exhaust memory or time';
  const n = intAt(params, 'n', 'crypto.kdfparams.n', 2, KEYSTORE_LIMITS.maxScryptN, hostile);
  if ((n & (n - 1)) !== 0) throw corrupt('crypto.kdfparams.n', `is ${n}, not a power of two`);
  const r = intAt(params, 'r', 'crypto.kdfparams.r', 1, KEYSTORE_LIMITS.maxScryptRP, hostile);
  const p = intAt(params, 'p', 'crypto.kdfparams.p', 1, KEYSTORE_LIMITS.maxScryptRP, hostile);
  if (r * p > KEYSTORE_LIMITS.maxScryptRP) throw corrupt('crypto.kdfparams', `r * p = ${r * p} exceeds ${KEYSTORE_LIMITS.maxScryptRP}${hostile}`);
  if (128 * n * r > KEYSTORE_LIMITS.maxScryptMemory) throw corrupt('crypto.kdfparams', `needs ${128 * n * r} bytes of memory (128 * n * r), over 1 GiB${hostile}`);
  if (n * r * p > KEYSTORE_LIMITS.maxScryptWork) throw corrupt('crypto.kdfparams', `n * r * p = ${n * r * p} exceeds 2^23${hostile}`);
  return { kdf: 'scrypt', salt, n, r, p };
}

/** Check every field of keystore JSON text; throws KEYSTORE_CORRUPT naming the first bad one. */
function parseKeystore(json: string): Parsed {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw corrupt('(file)', 'is not JSON');
  }
  if (!isRecord(doc)) throw corrupt('(file)', 'is not a JSON object');
  if (doc['version'] !== 3) throw corrupt('version', `is ${JSON.stringify(doc['version'])}, expected 3`);
  if (doc['id'] !== undefined && (typeof doc['id'] !== 'string' || !UUID.test(doc['id']))) throw corrupt('id', 'is not a UUID');
  const cryptoKey = doc['crypto'] === undefined && doc['Crypto'] !== undefined ? 'Crypto' : 'crypto';
  const c = recordAt(doc, cryptoKey, 'crypto');
  if (c['cipher'] !== 'aes-128-ctr') throw corrupt('crypto.cipher', `is ${JSON.stringify(c['cipher'])}; only "aes-128-ctr" is supported`);
  const iv = hexAt(recordAt(c, 'cipherparams', 'crypto.cipherparams'), 'iv', 'crypto.cipherparams.iv', 16, 16);
  const ciphertext = hexAt(c, 'ciphertext', 'crypto.ciphertext', 1, 32);
  const mac = hexAt(c, 'mac', 'crypto.mac', 32, 32);
  const kdf = parseKdf(c);
  const keyType = doc[KEYTYPE_FIELD] ?? 'secp256k1';
  if (keyType !== 'secp256k1' && keyType !== 'p256') throw corrupt(KEYTYPE_FIELD, `is ${JSON.stringify(keyType)}; expected "secp256k1" or "p256"`);
  let address: string | null = null;
  if (doc['address'] !== undefined) {
    const a = doc['address'];
    if (typeof a !== 'string' || !/^(?:0x)?[0-9a-fA-F]{40}$/.test(a)) throw corrupt('address', 'is not 20 bytes of hex');
    address = `0x${a.slice(-40).toLowerCase()}`;
  }
  return { kdf, iv, ciphertext, mac, keyType, address };
}

async function deriveKey(kdf: Kdf, passphrase: Uint8Array): Promise<Uint8Array> {
  if (kdf.kdf === 'pbkdf2') return pbkdf2Async(sha256, passphrase, kdf.salt, { c: kdf.c, dkLen: 32 });
  const { n, r, p, salt } = kdf;
  return scryptAsync(passphrase, salt, { N: n, r, p, dkLen: 32, maxmem: scryptMaxmem(n, r, p) });
}

/**
 * Decrypt keystore JSON text with `passphrase`. Returns the key (32 bytes; the caller zeroes it), its curve
 * ("x-datagate-keytype", default secp256k1), public key and address. Throws DeviceError
 * KEYSTORE_BAD_PASSPHRASE when the MAC does not match (wrong passphrase, or ciphertext or MAC altered: the
 * two cannot be told apart), KEYSTORE_CORRUPT {field, reason} for an invalid or over-costly file, a key
 * that is not valid on its curve, or an address that is not the key's.
 */
export async function decryptKeystore(json: string, passphrase: Uint8Array): Promise<DecryptedKey> {
  if (typeof json !== 'string') throw new TypeError('decryptKeystore: json must be the keystore file text');
  if (!(passphrase instanceof Uint8Array)) throw new TypeError('decryptKeystore: passphrase must be a Uint8Array');
  const ks = parseKeystore(json);
  const derivedKey = await deriveKey(ks.kdf, passphrase);
  const privateKey = new Uint8Array(32);
  try {
    if (!timingSafeEqual(macOf(derivedKey, ks.ciphertext), ks.mac)) {
      throw new DeviceError(
        'KEYSTORE_BAD_PASSPHRASE',
        'keystore MAC mismatch: the passphrase is wrong, or the file was altered; check the passphrase source',
      );
    }
    const plain = ctr(derivedKey.subarray(0, 16), ks.iv).decrypt(ks.ciphertext);
    privateKey.set(plain, 32 - plain.length);
    plain.fill(0);
  } finally {
    derivedKey.fill(0);
  }
  try {
    let publicKey: Uint8Array;
    try {
      publicKey = publicKeyOf(ks.keyType, privateKey);
    } catch (err) {
      if (!hasCode(err, 'CRYPTO_INVALID_INPUT')) throw err;
      throw corrupt('crypto.ciphertext', `decrypts to a number that is not a ${ks.keyType} private key`);
    }
    const address = keyAddress(publicKey);
    if (ks.address !== null && ks.address !== address) {
      const hint = ks.keyType === 'secp256k1' ? ` (a P-256 key needs "${KEYTYPE_FIELD}": "p256")` : '';
      throw corrupt('address', `is ${ks.address} but the key's address is ${address}${hint}`);
    }
    return { privateKey, keyType: ks.keyType, publicKey, address };
  } catch (err) {
    privateKey.fill(0);
    throw err;
  }
}

/** A random valid private key of `keyType`. */
function generateKey(keyType: KeyType): Uint8Array {
  if (keyType === 'p256') return p256.utils.randomSecretKey();
  for (;;) {
    const key = getRandomValues(new Uint8Array(32));
    try {
      secp256k1.publicKey(key); // the backend's range check: 0 < key < n (fails with probability 2^-128)
      return key;
    } catch (err) {
      key.fill(0);
      if (!hasCode(err, 'CRYPTO_INVALID_INPUT')) throw err;
    }
  }
}

function exists(path: string): DeviceError {
  return new DeviceError('KEYSTORE_EXISTS', `${path} already exists; refusing to overwrite a key file (move it aside or pick another path)`, { path });
}

/** Write `text` to `path`, which must not exist (atomic-file.ts; KEYSTORE_EXISTS when it does). */
async function writeNewFile(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text, { mode: 0o600, exclusive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists(path);
    throw err;
  }
}

export interface CreateKeystoreOptions {
  readonly keyType: KeyType;
  /** scrypt N (see EncryptKeystoreOptions); default DEFAULT_SCRYPT_N. */
  readonly scryptN?: number;
}

/** A Signer whose key was decrypted from a keystore file. The key stays in a private field. */
export class KeystoreSigner implements Signer {
  readonly keyType: KeyType;
  readonly publicKey: Uint8Array;
  readonly address: Address;
  /** The keystore file the key came from. */
  readonly path: string;
  readonly #privateKey: Uint8Array;

  private constructor(path: string, keyType: KeyType, privateKey: Uint8Array, publicKey: Uint8Array, address: Address) {
    this.path = path;
    this.keyType = keyType;
    this.#privateKey = Uint8Array.from(privateKey);
    this.publicKey = publicKey;
    this.address = address;
  }

  /**
   * Read and decrypt the keystore at `path`. Throws DeviceError KEY_NOT_FOUND when there is no file, and
   * decryptKeystore's errors (with `path` added to their fields) for a bad passphrase or file.
   */
  static async open(path: string, passphrase: Uint8Array): Promise<KeystoreSigner> {
    if (typeof path !== 'string' || path === '') throw new TypeError('KeystoreSigner.open: path must be a non-empty path');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new DeviceError('KEY_NOT_FOUND', `no keystore file at ${path}; check the key URI in the config`, { path });
    }
    let key: DecryptedKey;
    try {
      key = await decryptKeystore(text, passphrase);
    } catch (err) {
      if (!(err instanceof DeviceError)) throw err;
      throw new DeviceError(err.code, `${path}: ${err.message}`, { ...err.fields, path }, { cause: err });
    }
    try {
      return new KeystoreSigner(path, key.keyType, key.privateKey, key.publicKey, key.address);
    } finally {
      key.privateKey.fill(0);
    }
  }

  /**
   * Generate a `keyType` key, encrypt it under `passphrase` and write it to `path` (mode 0600, atomically).
   * Throws DeviceError KEYSTORE_EXISTS if `path` exists: a key file is never overwritten.
   */
  static async create(path: string, passphrase: Uint8Array, opts: CreateKeystoreOptions): Promise<KeystoreSigner> {
    if (typeof path !== 'string' || path === '') throw new TypeError('KeystoreSigner.create: path must be a non-empty path');
    checkKeyType(opts?.keyType, 'KeystoreSigner.create: opts.keyType');
    const { keyType, scryptN } = opts;
    if (await access(path).then(() => true, () => false)) throw exists(path); // early, before scrypt; link() decides
    const privateKey = generateKey(keyType);
    try {
      const json = await encryptKeystore(privateKey, passphrase, scryptN === undefined ? { keyType } : { keyType, scryptN });
      await writeNewFile(path, `${json}\n`);
      const publicKey = publicKeyOf(keyType, privateKey);
      return new KeystoreSigner(path, keyType, privateKey, publicKey, keyAddress(publicKey));
    } finally {
      privateKey.fill(0);
    }
  }

  /** secp256k1: 65 bytes r || s || recid (low s). P-256: 64 bytes r || s (low s) over sha256(digest). */
  async sign(digest: Uint8Array, _purpose: SignPurpose): Promise<Uint8Array> {
    if (this.keyType === 'p256') return p256Sign(digest, this.#privateKey);
    const { signature, recid } = secp256k1.sign(digest, this.#privateKey);
    const out = new Uint8Array(65);
    out.set(signature, 0);
    out[64] = recid;
    return out;
  }
}
