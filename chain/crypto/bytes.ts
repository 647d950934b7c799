// Hex and big-integer conversions for hashes, addresses and signature scalars. They run for every
// transaction and every state key, so they use lookup tables instead of per-byte toString/parseInt.
import { ChainError } from '../errors.ts';

/** HEX_PAIRS[b] is the two lowercase hex digits of byte b. */
const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** NIBBLE[charCode] is the value of a hex digit, or -1 for any other character. */
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[0x41 + i] = 10 + i; // A-F
  NIBBLE[0x61 + i] = 10 + i; // a-f
}

const TWO_256 = 1n << 256n;

function invalid(message: string, fields: Record<string, unknown> = {}): ChainError {
  return new ChainError('CRYPTO_INVALID_INPUT', message, fields);
}

/** Encode bytes as a lowercase 0x-prefixed hex string ('0x' for no bytes). */
export function bytesToHex(bytes: Uint8Array): string {
  let out = '0x';
  for (let i = 0; i < bytes.length; i++) out += HEX_PAIRS[bytes[i]!]!;
  return out;
}

/**
 * Decode a hex string, with or without a 0x/0X prefix, upper or lower case. '0x' and '' give no bytes.
 * Throws ChainError CRYPTO_INVALID_INPUT on an odd number of digits or a character that is not a hex digit.
 */
export function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== 'string') throw invalid(`hex must be a string, got ${typeof hex}`);
  const start = hex.length >= 2 && hex.charCodeAt(0) === 0x30 && (hex.charCodeAt(1) | 0x20) === 0x78 ? 2 : 0;
  const digits = hex.length - start;
  if (digits % 2 !== 0) {
    throw invalid(`hex string has an odd number of digits (${digits}); pad it with a leading 0`, { length: hex.length });
  }
  const out = new Uint8Array(digits / 2);
  for (let i = 0, j = start; i < out.length; i++, j += 2) {
    const hiCode = hex.charCodeAt(j);
    const loCode = hex.charCodeAt(j + 1);
    const hi = hiCode < 128 ? NIBBLE[hiCode]! : -1;
    const lo = loCode < 128 ? NIBBLE[loCode]! : -1;
    if (hi < 0 || lo < 0) {
      const at = hi < 0 ? j : j + 1;
      throw invalid(`hex string has a non-hex character ${JSON.stringify(hex[at])} at index ${at}`, { index: at });
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/**
 * Encode an unsigned integer below 2^256 as 32 big-endian bytes (a uint256, a secp256k1 scalar).
 * Throws ChainError CRYPTO_INVALID_INPUT if `value` is negative or does not fit.
 */
export function bigintToBytes32(value: bigint): Uint8Array {
  if (typeof value !== 'bigint' || value < 0n || value >= TWO_256) {
    throw invalid('value does not fit in 32 unsigned bytes (0 <= value < 2^256)', { value: String(value) });
  }
  // Four 64-bit limbs through a DataView: no string round trip on the hot path.
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, value >> 192n);
  view.setBigUint64(8, BigInt.asUintN(64, value >> 128n));
  view.setBigUint64(16, BigInt.asUintN(64, value >> 64n));
  view.setBigUint64(24, BigInt.asUintN(64, value));
  return out;
}

/** Decode big-endian bytes of any length as an unsigned integer (no bytes -> 0n). */
export function bytesToBigint(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  // BigInt's own hex parser is native code and beats limb-by-limb arithmetic for 32-byte inputs.
  return BigInt(bytesToHex(bytes));
}
