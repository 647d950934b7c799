// EC details of PKCS#11 keys, kept apart from the token calls so they can be checked without a token:
// which curve a CKA_EC_PARAMS names, the public point inside CKA_EC_POINT, low-s normalisation of a raw
// token signature and the recovery id of a secp256k1 one. Nothing here is constant-time; none of it
// touches a secret (signatures and public keys are public).
import type { KeyType } from '../chain/index.ts';
import { P256_HALF_N, P256_N, SECP256K1_HALF_N, SECP256K1_N, bigintToBytes32, bytesToBigint, bytesToHex, secp256k1 } from '../chain/index.ts';

/** DER of the named-curve OIDs as CKA_EC_PARAMS holds them. */
const EC_PARAMS_HEX: Record<KeyType, string> = {
  secp256k1: '06052b8104000a', // 1.3.132.0.10
  p256: '06082a8648ce3d030107', // 1.2.840.10045.3.1.7 (prime256v1)
};

/** CKA_EC_PARAMS (DER OID) for a key type. */
export function ecParamsOf(keyType: KeyType): Uint8Array {
  return Uint8Array.from(Buffer.from(EC_PARAMS_HEX[keyType], 'hex'));
}

/** The key type a CKA_EC_PARAMS value names, or null for any other curve or encoding. */
export function curveOfEcParams(params: Uint8Array): KeyType | null {
  const hex = bytesToHex(params).slice(2);
  if (hex === EC_PARAMS_HEX.secp256k1) return 'secp256k1';
  if (hex === EC_PARAMS_HEX.p256) return 'p256';
  return null;
}

/**
 * The 65-byte uncompressed point (04 || x || y) in a CKA_EC_POINT value, which PKCS#11 says is a DER
 * OCTET STRING around it (04 41 04 ..., as SoftHSM returns) but some modules return bare. Accepts both,
 * and the long length form 04 81 41 some encoders emit. Returns null for anything else (compressed points,
 * other sizes).
 */
export function decodeEcPoint(value: Uint8Array): Uint8Array | null {
  let point: Uint8Array;
  if (value.length === 67 && value[0] === 0x04 && value[1] === 0x41) point = value.subarray(2);
  else if (value.length === 68 && value[0] === 0x04 && value[1] === 0x81 && value[2] === 0x41) point = value.subarray(3);
  else if (value.length === 65) point = value;
  else return null;
  return point[0] === 0x04 ? Uint8Array.from(point) : null;
}

const ORDER: Record<KeyType, { n: bigint; half: bigint }> = {
  secp256k1: { n: SECP256K1_N, half: SECP256K1_HALF_N },
  p256: { n: P256_N, half: P256_HALF_N },
};

/**
 * Put a 64-byte r || s signature into low-s form in place: s -> n - s when s > n/2 (both (r, s) and
 * (r, n - s) are valid; the chain accepts only the low one). Returns true when s was changed.
 */
export function normaliseLowS(keyType: KeyType, sig64: Uint8Array): boolean {
  const { n, half } = ORDER[keyType];
  const s = bytesToBigint(sig64.subarray(32, 64));
  if (s <= half) return false;
  sig64.set(bigintToBytes32(n - s), 32);
  return true;
}

/**
 * Recovery id (0 or 1) of a secp256k1 signature: the one for which the chain's secp256k1 backend recovers
 * `publicKey` from (`digest`, `sig64`). Null when neither does, which means the signature is not a valid
 * signature of `digest` by that key (ids 2 and 3 need r >= p - n and never occur in practice).
 */
export function recoveryIdOf(digest: Uint8Array, sig64: Uint8Array, publicKey: Uint8Array): 0 | 1 | null {
  for (const recid of [0, 1] as const) {
    let recovered: Uint8Array;
    try {
      recovered = secp256k1.recoverPublicKey(digest, sig64, recid);
    } catch {
      continue; // no point for this id (e.g. r is not an x coordinate with that parity)
    }
    if (equalBytes(recovered, publicKey)) return recid;
  }
  return null;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
