// Public face of chain/crypto: hashing, secp256k1 signatures (native libsecp256k1 with an @noble
// fallback that gives identical results), Ethereum addresses, the recovery cache and byte helpers.
// The rest of the ledger imports crypto only from here.
export { bigintToBytes32, bytesToBigint, bytesToHex, hexToBytes } from './bytes.ts';
export { keccak256 } from './hash.ts';
export type { Secp256k1Backend } from './backend.ts';
export { SECP256K1_HALF_N, SECP256K1_N, isLowS } from './backend.ts';
export { nobleSecp256k1 } from './noble.ts';
export { loadNativeSecp256k1, nativeLoadError } from './native.ts';
export type { Secp256k1Preference } from './secp256k1.ts';
export { chooseSecp256k1Backend, secp256k1, secp256k1BackendName } from './secp256k1.ts';
export { publicKeyToAddress, recoverAddress, signatureBytes } from './address.ts';
export type { RecoveryCacheStats } from './cache.ts';
export { DEFAULT_RECOVERY_CACHE_SIZE, RecoveryCache, defaultRecoveryCache, recoverAddressCached } from './cache.ts';
export type { KeyType, P256Backend } from './p256.ts';
export {
  P256_HALF_N, P256_N, chooseP256Backend, keyAddress, loadNativeP256, nativeP256LoadError, nobleP256, p256Backend,
  p256BackendName, p256PublicKey, p256Sign, p256Verify, verifySignature,
} from './p256.ts';
export type { SealedBox } from './sealed-box.ts';
export { SEALED_BOX_VERSION, openSealedBox, parseReaderPublicKey, readerKeyPair, sealToReader } from './sealed-box.ts';
