// RLP, the byte codec of headers, receipts, certificates and stored blocks, through @ethereumjs/rlp
// (byte-array native, unlike ethers' hex-string codec, which dominated block encoding time).
import { RLP } from '@ethereumjs/rlp';
import { bytesToBigint } from './crypto/index.ts';

export type RlpInput = Uint8Array | bigint | number | readonly RlpInput[];
export type RlpItem = Uint8Array | RlpItem[];

/** Encode nested byte strings and unsigned integers (minimal big-endian, 0 as the empty string). */
export function rlpEncode(input: RlpInput): Uint8Array {
  return RLP.encode(input as Parameters<typeof RLP.encode>[0]);
}

/** Decode one RLP item that must span all of `bytes`; throws on malformed input. */
export function rlpDecode(bytes: Uint8Array): RlpItem {
  return RLP.decode(bytes) as RlpItem;
}

/** The byte string at `item`, or null when it is a list. */
export function rlpBytes(item: RlpItem | undefined): Uint8Array | null {
  return item instanceof Uint8Array ? item : null;
}

/** The list at `item`, or null when it is a byte string. */
export function rlpList(item: RlpItem | undefined): RlpItem[] | null {
  return Array.isArray(item) ? item : null;
}

/** A canonical unsigned integer (no leading zero byte, at most 32 bytes), or null. */
export function rlpUint(item: RlpItem | undefined): bigint | null {
  if (!(item instanceof Uint8Array) || item.length > 32 || (item.length > 0 && item[0] === 0)) return null;
  return bytesToBigint(item);
}
