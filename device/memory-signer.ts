// A signer whose secp256k1 key is held in process memory. For development chains and tests only:
// production validators sign through a keystore or PKCS#11 signer (hardware keys), where the key never
// enters the process.
import type { Address, SignPurpose, Signer } from '../chain/index.ts';
import { publicKeyToAddress, secp256k1 } from '../chain/index.ts';

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
