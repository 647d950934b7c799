// Public face of device/: key storage and signing on the gateway.
export { MemorySigner } from './memory-signer.ts';
