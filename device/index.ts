// Public face of device/: key storage and signing on the gateway.
export { MemoryP256Signer, MemorySigner } from './memory-signer.ts';
export type { GuardedPurpose, GuardedSignerOptions, LastSigned } from './double-sign-guard.ts';
export { GUARDED_PURPOSES, GuardedSigner } from './double-sign-guard.ts';
