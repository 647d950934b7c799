// Bytes of LBFT events for the consensus WAL: JSON with tagged bigints, byte arrays and blocks (blocks
// in their stored RLP form), so that a replay feeds the reducer exactly what it saw.
import { headerHash } from '../block.ts';
import type { Block } from '../block.ts';
import { decodeHeader } from '../block.ts';
import { bytesToHex, hexToBytes } from '../crypto/index.ts';
import { ChainError } from '../errors.ts';
import { decodeBlock, encodeBlock } from '../store.ts';
import type { BlockRef, LbftEvent } from './types.ts';
import { rlpBytes, rlpDecode, rlpList } from '../rlp.ts';

/** A ledger block as the engine sees it: the block plus the BlockRef fields. */
export type EngineBlock = Block & BlockRef;

/** The engine's view of a ledger block. */
export function engineBlock(block: Block): EngineBlock {
  return { ...block, number: block.header.number, parentHash: block.header.parentHash };
}

function isBlock(v: object): v is EngineBlock {
  return 'header' in v && 'txs' in v && 'hash' in v;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeEvent(event: LbftEvent<EngineBlock>): Uint8Array {
  const json = JSON.stringify(event, function (this: Record<string, unknown>, key, value: unknown) {
    if (typeof value === 'bigint') return { $b: value.toString() };
    // A Buffer (bytes read from LevelDB) reaches the replacer already turned into {type, data} by its
    // toJSON: look at the value before that.
    const raw = this[key];
    if (raw instanceof Uint8Array) return { $u: bytesToHex(raw) };
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && isBlock(value)) return { $block: bytesToHex(encodeBlock(value)) };
    return value;
  });
  return enc.encode(json);
}

export function decodeEvent(bytes: Uint8Array, chainId: bigint): LbftEvent<EngineBlock> {
  try {
    return JSON.parse(dec.decode(bytes), (_key, value: unknown) => {
      if (value !== null && typeof value === 'object') {
        const o = value as Record<string, unknown>;
        if (typeof o.$b === 'string') return BigInt(o.$b);
        if (typeof o.$u === 'string') return hexToBytes(o.$u);
        if (typeof o.$block === 'string') return blockFromBytes(hexToBytes(o.$block), chainId);
      }
      return value;
    }) as LbftEvent<EngineBlock>;
  } catch (err) {
    throw new ChainError('WAL_CORRUPT', 'a consensus WAL record does not decode', {}, { cause: err });
  }
}

function blockFromBytes(bytes: Uint8Array, chainId: bigint): EngineBlock {
  const header = rlpBytes(rlpList(rlpDecode(bytes))?.[0]);
  if (header === null) throw new ChainError('WAL_CORRUPT', 'a block in the consensus WAL is malformed');
  const hash = headerHash(decodeHeader(header));
  return engineBlock(decodeBlock(bytes, hash, chainId));
}
