// Signers whose keys are held in process memory (secp256k1, and P-256 as TPMs hold). For development
// chains and tests only:
// production validators sign through a keystore or PKCS#11 signer (hardware keys), where the key never
// enters the process.
import type { Address, SignPurpose, Signer } from '../chain/index.ts';
import { keyAddress, p256PublicKey, p256Sign, publicKeyToAddress, secp256k1 } from '../chain/index.ts';

export class MemorySigner implements Signer {
  readonly keyType = 'secp256k1' as const;
  readonly publicKey: Uint8Array;
  readonly address: Address;
  readonly #privateKey: Uint8Array;

  /** `privateKey`: 32 bytes; copied, so the caller may wipe its own copy. */
  constructor(privateKey: Uint8Array) {
    if (privateKey.length !== 32) throw new RangeError('a secp256k1 private key is 32 bytes');
    this.#privateKey = Uint8Array.from(privateKey);
    this.publicKey = secp256k1.publicKey(this.#privateKey, false);
    this.address = publicKeyToAddress(this.publicKey);
  }

  async sign(digest: Uint8Array, _purpose: SignPurpose): Promise<Uint8Array> {
    const { signature, recid } = secp256k1.sign(digest, this.#privateKey);
    const out = new Uint8Array(65);
    out.set(signature, 0);
    out[64] = recid;
    return out;
  }
}

/**
 * A P-256 signer whose key is held in process memory, standing in for a TPM or secure element in tests
 * and dev chains. Signs ECDSA-P256-SHA256 over the digest (the convention of chain/crypto/p256.ts) and
 * returns 64 bytes r || s with low s.
 */
export class MemoryP256Signer implements Signer {
  readonly keyType = 'p256' as const;
  readonly publicKey: Uint8Array;
  readonly address: Address;
  readonly #privateKey: Uint8Array;

  constructor(privateKey: Uint8Array) {
    if (privateKey.length !== 32) throw new RangeError('a P-256 private key is 32 bytes');
    this.#privateKey = Uint8Array.from(privateKey);
    this.publicKey = p256PublicKey(this.#privateKey, false);
    this.address = keyAddress(this.publicKey);
  }

  async sign(digest: Uint8Array, _purpose: SignPurpose): Promise<Uint8Array> {
    return p256Sign(digest, this.#privateKey);
  }
}
