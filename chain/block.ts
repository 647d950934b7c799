// Blocks: the header of DESIGN.md, its byte encoding and hashes, and the receipts and logs bloom.
// The proposer's seal is inside the header (and so inside the block hash); the commit certificate
// travels beside the block and is not hashed (chain/certificate.ts).
import { decodeRlp, encodeRlp, getBytes, toBeArray } from 'ethers';
import { bytesToBigint, bytesToHex, hexToBytes, keccak256 } from './crypto/index.ts';
import { ChainError } from './errors.ts';
import type { Address, Hash, Log, Receipt, SignedTx } from './types.ts';

/** Block header. `number`, gas and fee fields are bigints; `timestamp` is milliseconds since the epoch. */
export interface BlockHeader {
  readonly parentHash: Hash;
  readonly number: bigint;
  readonly timestamp: number;
  readonly proposer: Address;
  readonly stateRoot: Hash;
  readonly txRoot: Hash;
  readonly receiptRoot: Hash;
  readonly logsBloom: Uint8Array;
  readonly gasUsed: bigint;
  readonly gasLimit: bigint;
  readonly baseFee: bigint;
  /** Proposer term the block belongs to (0 until terms exist). */
  readonly term: bigint;
  /** Consensus round in which the block was proposed (0 = scheduled proposer). */
  readonly round: number;
  /** Proposer's signature over the seal digest: 65 bytes r || s || recid; empty for genesis. */
  readonly seal: Uint8Array;
}

export interface Block {
  readonly header: BlockHeader;
  readonly hash: Hash;
  readonly txs: readonly SignedTx[];
}

export const ZERO_HASH: Hash = '0x' + '00'.repeat(32);
export const ZERO_ADDRESS: Address = '0x' + '00'.repeat(20);
const BLOOM_BYTES = 256;

function headerFields(h: BlockHeader, withSeal: boolean): Uint8Array[] {
  const fields = [
    hexToBytes(h.parentHash),
    toBeArray(h.number),
    toBeArray(h.timestamp),
    hexToBytes(h.proposer),
    hexToBytes(h.stateRoot),
    hexToBytes(h.txRoot),
    hexToBytes(h.receiptRoot),
    h.logsBloom,
    toBeArray(h.gasUsed),
    toBeArray(h.gasLimit),
    toBeArray(h.baseFee),
    toBeArray(h.term),
    toBeArray(h.round),
  ];
  if (withSeal) fields.push(h.seal);
  return fields;
}

/** Hash the proposer signs: the header without its seal. */
export function sealHash(h: BlockHeader): Uint8Array {
  return keccak256(getBytes(encodeRlp(headerFields(h, false))));
}

/** Canonical bytes of a header, seal included. */
export function encodeHeader(h: BlockHeader): Uint8Array {
  return getBytes(encodeRlp(headerFields(h, true)));
}

/** Block hash: keccak of the encoded header (seal included, certificate excluded). */
export function headerHash(h: BlockHeader): Hash {
  return bytesToHex(keccak256(encodeHeader(h)));
}

function fixed(value: unknown, length: number, field: string): Uint8Array {
  if (typeof value !== 'string') throw corrupt(field);
  const bytes = hexToBytes(value);
  if (bytes.length !== length) throw corrupt(field);
  return bytes;
}

function quantity(value: unknown, field: string): bigint {
  if (typeof value !== 'string') throw corrupt(field);
  const bytes = hexToBytes(value);
  if (bytes.length > 32 || (bytes.length > 0 && bytes[0] === 0)) throw corrupt(field);
  return bytesToBigint(bytes);
}

function corrupt(field: string): ChainError {
  return new ChainError('BLOCK_INVALID', `block header field ${field} is malformed`, { field });
}

/** Decode a header from its canonical bytes; throws BLOCK_INVALID on malformed input. */
export function decodeHeader(bytes: Uint8Array): BlockHeader {
  let fields: unknown;
  try {
    fields = decodeRlp(bytes);
  } catch (err) {
    throw new ChainError('BLOCK_INVALID', 'block header is not valid RLP', {}, { cause: err });
  }
  return headerFromFields(fields);
}

/** @internal header from already-decoded RLP fields. */
export function headerFromFields(fields: unknown): BlockHeader {
  if (!Array.isArray(fields) || fields.length !== 14) throw new ChainError('BLOCK_INVALID', 'block header must have 14 fields');
  const timestamp = quantity(fields[2], 'timestamp');
  const round = quantity(fields[12], 'round');
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER) || round > 0xffffffffn) throw corrupt('timestamp/round');
  const seal = typeof fields[13] === 'string' ? hexToBytes(fields[13]) : null;
  if (seal === null || (seal.length !== 0 && seal.length !== 65)) throw corrupt('seal');
  return {
    parentHash: bytesToHex(fixed(fields[0], 32, 'parentHash')),
    number: quantity(fields[1], 'number'),
    timestamp: Number(timestamp),
    proposer: bytesToHex(fixed(fields[3], 20, 'proposer')),
    stateRoot: bytesToHex(fixed(fields[4], 32, 'stateRoot')),
    txRoot: bytesToHex(fixed(fields[5], 32, 'txRoot')),
    receiptRoot: bytesToHex(fixed(fields[6], 32, 'receiptRoot')),
    logsBloom: fixed(fields[7], BLOOM_BYTES, 'logsBloom'),
    gasUsed: quantity(fields[8], 'gasUsed'),
    gasLimit: quantity(fields[9], 'gasLimit'),
    baseFee: quantity(fields[10], 'baseFee'),
    term: quantity(fields[11], 'term'),
    round: Number(round),
    seal,
  };
}

/** Bytes of a receipt as committed in the receipt root and stored. */
export function encodeReceipt(r: Receipt): Uint8Array {
  return getBytes(
    encodeRlp([
      toBeArray(r.status),
      toBeArray(r.gasUsed),
      toBeArray(r.cumulativeGasUsed),
      toBeArray(r.effectiveGasPrice),
      r.logs.map((l) => [hexToBytes(l.address), l.topics.map(hexToBytes), l.data]),
    ]),
  );
}

export function decodeReceipt(bytes: Uint8Array): Receipt {
  const f = decodeRlp(bytes);
  if (!Array.isArray(f) || f.length !== 5 || !Array.isArray(f[4])) throw new ChainError('STORE_CORRUPT', 'stored receipt is malformed');
  const logs: Log[] = (f[4] as unknown[]).map((entry) => {
    const [address, topics, data] = entry as [string, string[], string];
    return { address, topics: [...topics], data: hexToBytes(data) };
  });
  return {
    status: quantity(f[0], 'status') === 1n ? 1 : 0,
    gasUsed: quantity(f[1], 'gasUsed'),
    cumulativeGasUsed: quantity(f[2], 'cumulativeGasUsed'),
    effectiveGasPrice: quantity(f[3], 'effectiveGasPrice'),
    logs,
    logsBloom: logsBloom(logs),
    contractAddress: null,
  };
}

function addToBloom(bloom: Uint8Array, item: Uint8Array): void {
  const h = keccak256(item);
  // Ethereum's bloom: three 11-bit indices taken from the first six bytes of keccak(item).
  for (let i = 0; i < 6; i += 2) {
    const bit = ((h[i]! << 8) | h[i + 1]!) & 2047;
    bloom[BLOOM_BYTES - 1 - (bit >> 3)]! |= 1 << (bit & 7);
  }
}

/** Ethereum logs bloom (256 bytes) over the addresses and topics of `logs`. */
export function logsBloom(logs: readonly Log[]): Uint8Array {
  const bloom = new Uint8Array(BLOOM_BYTES);
  for (const log of logs) {
    addToBloom(bloom, hexToBytes(log.address));
    for (const topic of log.topics) addToBloom(bloom, hexToBytes(topic));
  }
  return bloom;
}

/** OR `other` into `into` (block bloom = OR of receipt blooms). */
export function orBloom(into: Uint8Array, other: Uint8Array): void {
  for (let i = 0; i < BLOOM_BYTES; i++) into[i]! |= other[i]!;
}

/** True when every bit of `item`'s bloom is set in `bloom` (false means certainly absent). */
export function bloomMayContain(bloom: Uint8Array, item: Uint8Array): boolean {
  const probe = new Uint8Array(BLOOM_BYTES);
  addToBloom(probe, item);
  for (let i = 0; i < BLOOM_BYTES; i++) if ((probe[i]! & bloom[i]!) !== probe[i]) return false;
  return true;
}

export const EMPTY_BLOOM = new Uint8Array(BLOOM_BYTES);
