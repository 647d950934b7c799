// The native secp256k1 backend: libsecp256k1 (Bitcoin Core's library, constant-time signing) through the
// optional `secp256k1` npm addon. We load the compiled binding ourselves with node-gyp-build instead of
// requiring the package: the package's entry point silently swaps in its pure-JS `elliptic` code when the
// binary is missing, which would be slow and is not the implementation we test. No binary -> null.
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  checkDigest,
  checkPrivateKey,
  checkRecid,
  checkSignature,
  invalidInput,
  verifyInputsUsable,
  type Secp256k1Backend,
} from './backend.ts';

/**
 * The raw N-API object of secp256k1-node 5 (src/secp256k1.cc). Each call returns a status code:
 * 0 = success, other values name the step that failed. Outputs are written into the arrays passed in,
 * whose length (33 or 65) selects the public key encoding.
 */
interface NativeBinding {
  publicKeyCreate(output: Uint8Array, privateKey: Uint8Array): number;
  ecdsaSign(out: { signature: Uint8Array; recid: number | null }, digest: Uint8Array, privateKey: Uint8Array): number;
  ecdsaVerify(sig64: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): number;
  ecdsaRecover(output: Uint8Array, sig64: Uint8Array, recid: number, digest: Uint8Array): number;
}

/** Private key 1 and its public key G (uncompressed): a known answer that proves the binding works. */
const ONE = Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0));
const G_X = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';

function backendOf(binding: NativeBinding): Secp256k1Backend {
  return {
    name: 'native',

    recoverPublicKey(digest, sig64, recid) {
      checkDigest(digest);
      checkSignature(sig64);
      checkRecid(recid);
      const out = new Uint8Array(65);
      const code = binding.ecdsaRecover(out, sig64, recid, digest);
      if (code !== 0) throw invalidInput('no public key can be recovered from this signature and digest', { recid, status: code });
      return out;
    },

    verify(digest, sig64, publicKey) {
      // The shared checks also keep inputs away that would make the binding throw (wrong lengths).
      if (!verifyInputsUsable(digest, sig64, publicKey)) return false;
      return binding.ecdsaVerify(sig64, digest, publicKey) === 0;
    },

    sign(digest, privateKey) {
      checkDigest(digest);
      checkPrivateKey(privateKey);
      const out = { signature: new Uint8Array(64), recid: null as number | null };
      const code = binding.ecdsaSign(out, digest, privateKey);
      if (code !== 0) throw invalidInput('libsecp256k1 could not sign with this private key', { status: code });
      const recid = out.recid;
      if (recid !== 0 && recid !== 1) throw invalidInput(`signature has recovery id ${String(recid)}, which Ethereum cannot express`);
      return { signature: out.signature, recid };
    },

    publicKey(privateKey, compressed = false) {
      checkPrivateKey(privateKey);
      const out = new Uint8Array(compressed ? 33 : 65);
      const code = binding.publicKeyCreate(out, privateKey);
      if (code !== 0) throw invalidInput('libsecp256k1 rejected the private key', { status: code });
      return out;
    },
  };
}

let loaded: Secp256k1Backend | null | undefined;
let loadError: unknown;

/**
 * The libsecp256k1 backend, or null when the addon or its prebuilt binary is missing on this machine.
 * Loads once; later calls return the same object. `nativeLoadError()` says why it is null.
 */
export function loadNativeSecp256k1(): Secp256k1Backend | null {
  if (loaded !== undefined) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const packageJson = require.resolve('secp256k1/package.json');
    // Resolve node-gyp-build from the addon's own folder: it is the addon's dependency, not ours.
    const gypBuild = createRequire(packageJson)('node-gyp-build') as (dir: string) => { Secp256k1: new () => NativeBinding };
    const backend = backendOf(new (gypBuild(path.dirname(packageJson)).Secp256k1)());
    const g = backend.publicKey(ONE);
    let x = '';
    for (let i = 1; i < 33; i++) x += g[i]!.toString(16).padStart(2, '0');
    if (x !== G_X) throw new Error('libsecp256k1 self-test failed: 1*G is not the generator');
    loaded = backend;
  } catch (err) {
    loadError = err;
    loaded = null;
  }
  return loaded;
}

/** Why `loadNativeSecp256k1()` returned null (undefined if it loaded or was not tried). */
export function nativeLoadError(): unknown {
  return loadError;
}
