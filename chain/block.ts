// Blocks: the header (docs/architecture.md "Blocks and genesis"), its byte encoding and hashes, and the receipts and logs bloom.
// The proposer's seal is inside the header (and so inside the block hash); the commit certificate
// travels beside the block and is not hashed (chain/certificate.ts).
import { bytesToHex, hexToBytes, keccak256 } from './crypto/index.ts';
import { ChainError } from './errors.ts';
import type { RlpInput, RlpItem } from './rlp.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList, rlpUint } from './rlp.ts';
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

function headerFields(h: BlockHeader, withSeal: boolean): RlpInput[] {
  const fields: RlpInput[] = [
    hexToBytes(h.parentHash),
    h.number,
    h.timestamp,
    hexToBytes(h.proposer),
    hexToBytes(h.stateRoot),
    hexToBytes(h.txRoot),
    hexToBytes(h.receiptRoot),
    h.logsBloom,
    h.gasUsed,
    h.gasLimit,
    h.baseFee,
    h.term,
    h.round,
  ];
  if (withSeal) fields.push(h.seal);
  return fields;
}

/** Hash the proposer signs: the header without its seal. */
export function sealHash(h: BlockHeader): Uint8Array {
  return keccak256(rlpEncode(headerFields(h, false)));
}

/** Canonical bytes of a header, seal included. */
export function encodeHeader(h: BlockHeader): Uint8Array {
  return rlpEncode(headerFields(h, true));
}

/** Block hash: keccak of the encoded header (seal included, certificate excluded). */
export function headerHash(h: BlockHeader): Hash {
  return bytesToHex(keccak256(encodeHeader(h)));
}

function fixed(item: RlpItem | undefined, length: number, field: string): Uint8Array {
  const bytes = rlpBytes(item);
  if (bytes === null || bytes.length !== length) throw corrupt(field);
  return bytes;
}

function quantity(item: RlpItem | undefined, field: string): bigint {
  const n = rlpUint(item);
  if (n === null) throw corrupt(field);
  return n;
}

function corrupt(field: string): ChainError {
  return new ChainError('BLOCK_INVALID', `block header field ${field} is malformed`, { field });
}

/** Decode a header from its canonical bytes; throws BLOCK_INVALID on malformed input. */
export function decodeHeader(bytes: Uint8Array): BlockHeader {
  let fields: RlpItem;
  try {
    fields = rlpDecode(bytes);
  } catch (err) {
    throw new ChainError('BLOCK_INVALID', 'block header is not valid RLP', {}, { cause: err });
  }
  return headerFromFields(fields);
}

/** @internal header from already-decoded RLP fields. */
export function headerFromFields(item: RlpItem): BlockHeader {
  const fields = rlpList(item);
  if (fields === null || fields.length !== 14) throw new ChainError('BLOCK_INVALID', 'block header must have 14 fields');
  const timestamp = quantity(fields[2], 'timestamp');
  const round = quantity(fields[12], 'round');
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER) || round > 0xffffffffn) throw corrupt('timestamp/round');
  const seal = rlpBytes(fields[13]);
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
  return rlpEncode([
    r.status,
    r.gasUsed,
    r.cumulativeGasUsed,
    r.effectiveGasPrice,
    r.logs.map((l) => [hexToBytes(l.address), l.topics.map(hexToBytes), l.data]),
  ]);
}

/** Decode a stored receipt; throws STORE_CORRUPT on malformed bytes. */
export function decodeReceipt(bytes: Uint8Array): Receipt {
  const bad = () => new ChainError('STORE_CORRUPT', 'stored receipt is malformed');
  let f: RlpItem[] | null;
  try {
    f = rlpList(rlpDecode(bytes));
  } catch (err) {
    throw new ChainError('STORE_CORRUPT', 'stored receipt is not valid RLP', {}, { cause: err });
  }
  const logItems = rlpList(f?.[4]);
  if (f === null || f.length !== 5 || logItems === null) throw bad();
  const logs: Log[] = logItems.map((entry) => {
    const parts = rlpList(entry);
    const address = rlpBytes(parts?.[0]);
    const topics = rlpList(parts?.[1]);
    const data = rlpBytes(parts?.[2]);
    if (address === null || topics === null || data === null) throw bad();
    return {
      address: bytesToHex(address),
      topics: topics.map((t) => {
        const b = rlpBytes(t);
        if (b === null) throw bad();
        return bytesToHex(b);
      }),
      data,
    };
  });
  const [status, gasUsed, cumulative, price] = [0, 1, 2, 3].map((i) => rlpUint(f[i]));
  if (status == null || gasUsed == null || cumulative == null || price == null) throw bad();
  return {
    status: status === 1n ? 1 : 0,
    gasUsed,
    cumulativeGasUsed: cumulative,
    effectiveGasPrice: price,
    logs,
    logsBloom: logsBloom(logs),
    contractAddress: null,
  };
}

/** Where an item sets its bits in a logs bloom: [byte index, bit mask] pairs. */
export type BloomProbe = readonly (readonly [number, number])[];

/**
 * The bloom bits of `item`: Ethereum's three 11-bit indices taken from the first six bytes of keccak(item).
 * A filter computes its probes once and tests each block with bloomHas, instead of hashing per block.
 */
export function bloomProbe(item: Uint8Array): BloomProbe {
  const h = keccak256(item);
  const probe: [number, number][] = [];
  for (let i = 0; i < 6; i += 2) {
    const bit = ((h[i]! << 8) | h[i + 1]!) & 2047;
    probe.push([BLOOM_BYTES - 1 - (bit >> 3), 1 << (bit & 7)]);
  }
  return probe;
}

function addToBloom(bloom: Uint8Array, item: Uint8Array): void {
  for (const [index, mask] of bloomProbe(item)) bloom[index]! |= mask;
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

/** True when every bit of `probe` is set in `bloom` (false means certainly absent). */
export function bloomHas(bloom: Uint8Array, probe: BloomProbe): boolean {
  return probe.every(([index, mask]) => (bloom[index]! & mask) === mask);
}

/** True when every bit of `item`'s bloom is set in `bloom` (false means certainly absent). */
export function bloomMayContain(bloom: Uint8Array, item: Uint8Array): boolean {
  return bloomHas(bloom, bloomProbe(item));
}

export const EMPTY_BLOOM = new Uint8Array(BLOOM_BYTES);
