// What the peer protocols carry inside their frames (see docs/architecture.md, "Peers"): consensus
// messages in the consensus WAL's codec, transactions as an RLP list of their signed bytes, sync requests
// as RLP [from, to]. Everything from a peer is checked for shape before it reaches the driver, so that a
// malformed message costs the sender its score instead of stopping the node.
import { encodeEvent, decodeEvent } from '../lbft/codec.ts';
import type { EngineBlock } from '../lbft/codec.ts';
import type { Message } from '../lbft/types.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList, rlpUint } from '../rlp.ts';
import { decodeSignedTx } from '../tx.ts';
import type { SignedTx } from '../types.ts';
import { NetError } from './errors.ts';

export function encodeMessage(message: Message<EngineBlock>): Uint8Array {
  return encodeEvent({ type: 'message', now: 0, message });
}

/** A consensus message from a peer. Throws NET_FRAME_MALFORMED for anything the driver must not see. */
export function decodeMessage(bytes: Uint8Array, chainId: bigint): Message<EngineBlock> {
  let event;
  try {
    event = decodeEvent(bytes, chainId);
  } catch (err) {
    throw new NetError('NET_FRAME_MALFORMED', 'a consensus frame does not decode', {}, { cause: err });
  }
  const message = (event as { type?: unknown; message?: unknown }).type === 'message' ? (event as { message: unknown }).message : undefined;
  if (!isMessage(message)) throw new NetError('NET_FRAME_MALFORMED', 'a consensus frame does not hold a well-formed LBFT message');
  // Blocks are rebuilt from their RLP (hash recomputed); a block spelled out field by field would skip that:
  // only the canonical encoding of what was decoded is accepted.
  if (!sameBytes(encodeMessage(message), bytes)) throw new NetError('NET_FRAME_MALFORMED', 'a consensus frame is not in canonical form');
  return message;
}

export function encodeTxs(txs: readonly SignedTx[]): Uint8Array {
  return rlpEncode(txs.map((t) => t.raw));
}

/** Transactions from a peer, each decoded and its signature recovered. Throws NET_FRAME_MALFORMED or the tx's ChainError. */
export function decodeTxs(bytes: Uint8Array, chainId: bigint, maxCount: number): SignedTx[] {
  let list;
  try {
    list = rlpList(rlpDecode(bytes));
  } catch (err) {
    throw new NetError('NET_FRAME_MALFORMED', 'a transactions frame is not RLP', {}, { cause: err });
  }
  if (list === null || list.length > maxCount) throw new NetError('NET_FRAME_MALFORMED', `a transactions frame must be a list of at most ${maxCount} transactions`);
  return list.map((item) => {
    const raw = rlpBytes(item);
    if (raw === null) throw new NetError('NET_FRAME_MALFORMED', 'a transactions frame holds a list where a transaction was expected');
    return decodeSignedTx(raw, chainId);
  });
}

export function encodeSyncRequest(from: bigint, to: bigint): Uint8Array {
  return rlpEncode([from, to]);
}

export function decodeSyncRequest(bytes: Uint8Array): { from: bigint; to: bigint } {
  let list;
  try {
    list = rlpList(rlpDecode(bytes));
  } catch (err) {
    throw new NetError('NET_FRAME_MALFORMED', 'a sync request is not RLP', {}, { cause: err });
  }
  const from = rlpUint(list?.[0]);
  const to = rlpUint(list?.[1]);
  if (list?.length !== 2 || from === null || to === null || to < from) throw new NetError('NET_FRAME_MALFORMED', 'a sync request must be RLP [from, to] with from <= to');
  return { from, to };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRound = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHash = (v: unknown): boolean => typeof v === 'string' && /^0x[0-9a-f]{64}$/.test(v);
const isAddress = (v: unknown): boolean => typeof v === 'string' && /^0x[0-9a-f]{40}$/.test(v);

function isBlock(v: unknown): boolean {
  return isObj(v) && isObj(v.header) && Array.isArray(v.txs) && isHash(v.hash) && typeof v.number === 'bigint' && isHash(v.parentHash);
}

function isSigned(m: Obj): boolean {
  return typeof m.height === 'bigint' && isRound(m.round) && isAddress(m.sender) && m.signature instanceof Uint8Array;
}

function isPrepare(v: unknown): boolean {
  return isObj(v) && v.type === 'prepare' && isSigned(v) && isHash(v.hash);
}

function isRoundChange(v: unknown): boolean {
  if (!isObj(v) || v.type !== 'round-change' || !isSigned(v)) return false;
  const p = v.prepared;
  return p === null || (isObj(p) && isRound(p.round) && isBlock(p.block) && Array.isArray(p.prepares) && p.prepares.every(isPrepare));
}

function isCertificate(v: unknown): boolean {
  return isObj(v) && typeof v.height === 'bigint' && isRound(v.round) && isHash(v.blockHash) && Array.isArray(v.signatures) && v.signatures.every((s) => isObj(s) && isAddress(s.signer) && s.signature instanceof Uint8Array);
}

function isMessage(v: unknown): v is Message<EngineBlock> {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'decided':
      return typeof v.height === 'bigint' && isBlock(v.block) && isCertificate(v.certificate);
    case 'prepare':
      return isPrepare(v);
    case 'commit':
      return isSigned(v) && isHash(v.hash);
    case 'proposal':
      return isSigned(v) && isBlock(v.block) && Array.isArray(v.justification) && v.justification.every(isRoundChange);
    case 'round-change':
      return isRoundChange(v);
    default:
      return false;
  }
}
