// Public face of device/: key storage and signing on the gateway.
export { MemoryP256Signer, MemorySigner } from './memory-signer.ts';
export type { GuardedPurpose, GuardedSignerOptions, LastSigned, SignedPoint } from './double-sign-guard.ts';
export { GUARDED_PURPOSES, GuardedSigner } from './double-sign-guard.ts';
export { SIGNED_ON_CHAIN_WINDOW, signedOnChain } from './signed-on-chain.ts';
export type { DeviceErrorCode } from './errors.ts';
export { DeviceError } from './errors.ts';
export type { CreateKeystoreOptions, DecryptedKey, EncryptKeystoreOptions } from './keystore.ts';
export type { PassphraseSource } from './passphrase.ts';
export { readPassphrase } from './passphrase.ts';
export {
  DEFAULT_SCRYPT_N, KEYSTORE_LIMITS, KeystoreSigner, MIN_SCRYPT_N, decryptKeystore, encryptKeystore,
} from './keystore.ts';
export type { ParsePkcs11UriOptions, Pkcs11Uri } from './pkcs11-uri.ts';
export { parsePkcs11Uri, redactPin } from './pkcs11-uri.ts';
export type { Pkcs11Counters, Pkcs11GenerateOptions, Pkcs11KeyInfo, Pkcs11SignStats, Pkcs11SignerOptions, Pkcs11TokenOptions } from './pkcs11.ts';
export { Pkcs11Module, Pkcs11Signer, newPkcs11SignStats } from './pkcs11.ts';
export type { KeySecrets, KeyUri } from './key-uri.ts';
export { PASSPHRASE_ENV, PIN_ENV, openKey, parseKeyUri, pkcs11Access } from './key-uri.ts';
export type { WriteFileAtomicOptions } from './atomic-file.ts';
export { writeFileAtomic } from './atomic-file.ts';
