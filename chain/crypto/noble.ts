// The pure-JS secp256k1 backend on @noble/secp256k1 (audited, dependency-free: the small single-curve sibling of
// @noble/curves, which stays for P-256). Always available; the reference the native backend is tested against.
// About 40x slower than libsecp256k1 at recovery (bench:ledger), so it is the fallback.
// Signing follows noble's constant-time design, but JavaScript engines give no hard timing guarantee;
// prefer the native backend (or a hardware signer) for long-lived keys.
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as curve from '@noble/secp256k1';
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
const SIGN_OPTS = { prehash: false, lowS: true, format: 'recovered', extraEntropy: false } as const;
const RECOVER_OPTS = { prehash: false, isCompressed: false } as const;

// Synchronous RFC 6979 signing needs HMAC-SHA256; @noble/secp256k1 ships without hashes of its own.
curve.hashes.sha256 = sha256;
curve.hashes.hmacSha256 = (key, message) => hmac(sha256, key, message);

export const nobleSecp256k1: Secp256k1Backend = {
  name: 'noble',

  recoverPublicKey(digest, sig64, recid) {
    checkDigest(digest);
    checkSignature(sig64);
    checkRecid(recid);
    const { r, s } = splitSignature(sig64);
    try {
      return curve.recoverPublicKey(new curve.Signature(r, s, recid).toBytes('recovered'), digest, RECOVER_OPTS);
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
