// The pure-JS secp256k1 backend on @noble/curves (audited). Always available; the reference the native
// backend is tested against. About 20x slower than libsecp256k1 at recovery, so it is the fallback.
// Signing follows noble's constant-time design, but JavaScript engines give no hard timing guarantee;
// prefer the native backend (or a hardware signer) for long-lived keys.
import { secp256k1 as curve } from '@noble/curves/secp256k1.js';
import {
  checkDigest,
  checkPrivateKey,
  checkRecid,
  checkSignature,
  invalidInput,
  splitSignature,
  verifyInputsUsable,
  type Secp256k1Backend,
} from './backend.ts';

// prehash: false everywhere: the caller hands us the digest, which must not be hashed again.
// lowS: true: sign in low-s form; verify's high-s rejection is also done in verifyInputsUsable.
const VERIFY_OPTS = { prehash: false, lowS: true, format: 'compact' } as const;
const SIGN_OPTS = { prehash: false, lowS: true, format: 'recovered' } as const;

export const nobleSecp256k1: Secp256k1Backend = {
  name: 'noble',

  recoverPublicKey(digest, sig64, recid) {
    checkDigest(digest);
    checkSignature(sig64);
    checkRecid(recid);
    const { r, s } = splitSignature(sig64);
    try {
      return new curve.Signature(r, s, recid).recoverPublicKey(digest).toBytes(false);
    } catch (err) {
      // r is not the x of a curve point, or the result is the point at infinity.
      throw invalidInput('no public key can be recovered from this signature and digest', { recid }, err);
    }
  },

  verify(digest, sig64, publicKey) {
    if (!verifyInputsUsable(digest, sig64, publicKey)) return false;
    try {
      return curve.verify(sig64, digest, publicKey, VERIFY_OPTS);
    } catch {
      return false;
    }
  },

  sign(digest, privateKey) {
    checkDigest(digest);
    checkPrivateKey(privateKey);
    const out = curve.sign(digest, privateKey, SIGN_OPTS);
    const recid = out[0];
    // Ids 2/3 (R.x >= n) occur with probability ~2^-128; Ethereum cannot express them, so refuse loudly.
    if (recid !== 0 && recid !== 1) throw invalidInput(`signature has recovery id ${String(recid)}, which Ethereum cannot express`);
    return { signature: out.slice(1), recid };
  },

  publicKey(privateKey, compressed = false) {
    checkPrivateKey(privateKey);
    return curve.getPublicKey(privateKey, compressed);
  },
};
