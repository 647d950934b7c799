// Decoding and admission checks for signed Ethereum transactions (legacy EIP-155 and EIP-1559).
// The RLP and transaction codecs are ethers'; this module adds the chain's rules (chain id, size,
// low-s, supported types) and recovers the sender through chain/crypto with its cache.
import { Transaction } from 'ethers';
import {
  SECP256K1_HALF_N,
  bytesToHex,
  hexToBytes,
  keccak256,
  recoverAddressCached,
} from './crypto/index.ts';
import { ChainError } from './errors.ts';
import type { RlpItem } from './rlp.ts';
import { rlpDecode, rlpEncode } from './rlp.ts';
import type { SignedTx } from './types.ts';

/** Largest encoded transaction accepted (geth's txpool uses the same bound). */
export const MAX_TX_BYTES = 128 * 1024;

const TX_GAS = 21_000n;
const TX_DATA_ZERO_GAS = 4n;
const TX_DATA_NONZERO_GAS = 16n;
const ACCESS_LIST_ADDRESS_GAS = 2_400n;
const ACCESS_LIST_STORAGE_KEY_GAS = 1_900n;

/**
 * Decode `raw` (the bytes given to eth_sendRawTransaction), check it against the chain's rules and
 * recover its sender. Throws ChainError: TX_TOO_LARGE, TX_MALFORMED, TX_UNSUPPORTED_TYPE,
 * TX_UNPROTECTED, TX_WRONG_CHAIN_ID, TX_HIGH_S, TX_BAD_SIGNATURE.
 */
export function decodeSignedTx(raw: Uint8Array, chainId: bigint): SignedTx {
  if (raw.length > MAX_TX_BYTES) {
    throw new ChainError('TX_TOO_LARGE', `transaction of ${raw.length} bytes exceeds the limit of ${MAX_TX_BYTES} bytes`, {
      size: raw.length,
      limit: MAX_TX_BYTES,
    });
  }
  if (raw.length === 0) throw new ChainError('TX_MALFORMED', 'empty transaction');
  const first = raw[0]!;
  // A typed envelope starts with its type byte (< 0x80); a legacy transaction is an RLP list (>= 0xc0);
  // 0x80-0xbf would be an RLP string, which is no transaction at all.
  if (first < 0x80 && first !== 2) {
    throw new ChainError('TX_UNSUPPORTED_TYPE', `transaction type ${first} is not supported; send a legacy (EIP-155) or EIP-1559 (type 2) transaction`, {
      type: first,
    });
  }
  if (first < 0xc0 && first !== 2) throw new ChainError('TX_MALFORMED', 'malformed transaction: not an RLP list or typed envelope');
  let tx: Transaction;
  try {
    tx = Transaction.from(bytesToHex(raw));
  } catch (err) {
    throw new ChainError('TX_MALFORMED', `malformed transaction: ${shortReason(err)}`, {}, { cause: err });
  }
  const sig = tx.signature;
  if (sig === null) throw new ChainError('TX_MALFORMED', 'transaction is not signed');
  if (tx.type === 0 && tx.chainId === 0n) {
    throw new ChainError('TX_UNPROTECTED', 'transaction has no chain id (pre-EIP-155 signature); sign it with chain id ' + chainId, {
      expected: chainId,
    });
  }
  if (tx.chainId !== chainId) {
    throw new ChainError('TX_WRONG_CHAIN_ID', `transaction is signed for chain id ${tx.chainId}, this chain is ${chainId}`, {
      got: tx.chainId,
      expected: chainId,
    });
  }
  const r = BigInt(sig.r);
  // `_s` is the raw value; ethers' `s` getter throws for a non-canonical one, which we report as TX_HIGH_S.
  const s = BigInt(sig._s);
  if (s > SECP256K1_HALF_N) throw highS();
  // ethers' decoder tolerates non-canonical RLP (leading zeros, long-form lengths). The signature covers the
  // canonical encoding, so such bytes would give one signed transaction many hashes: refuse them.
  const fields = canonicalFields(raw);
  if (fields === null) throw new ChainError('TX_MALFORMED', 'malformed transaction: non-canonical RLP encoding');
  const hash = bytesToHex(keccak256(raw));
  const digest = signingDigest(raw[0] === 2, fields, tx.chainId);
  let from: string;
  try {
    from = recoverAddressCached(hash, digest, r, s, sig.yParity);
  } catch (err) {
    throw new ChainError('TX_BAD_SIGNATURE', 'invalid transaction signature: the sender cannot be recovered', { hash }, { cause: err });
  }
  const legacy = tx.type === 0;
  return {
    hash,
    raw,
    type: legacy ? 0 : 2,
    chainId: tx.chainId,
    nonce: BigInt(tx.nonce),
    gasLimit: tx.gasLimit,
    maxFeePerGas: legacy ? tx.gasPrice! : tx.maxFeePerGas!,
    maxPriorityFeePerGas: legacy ? tx.gasPrice! : tx.maxPriorityFeePerGas!,
    gasPrice: legacy ? tx.gasPrice! : null,
    to: tx.to === null ? null : tx.to.toLowerCase(),
    value: tx.value,
    data: hexToBytes(tx.data),
    accessListCost: accessListCost(tx),
    from,
    yParity: sig.yParity,
    v: legacy ? BigInt(sig.networkV ?? sig.v) : BigInt(sig.yParity),
    r,
    s,
  };
}

/** Gas charged before execution: base cost, call data, and access-list entries. */
export function intrinsicGas(tx: Pick<SignedTx, 'data' | 'accessListCost'>): bigint {
  let zero = 0n;
  for (const b of tx.data) if (b === 0) zero++;
  const nonzero = BigInt(tx.data.length) - zero;
  return TX_GAS + zero * TX_DATA_ZERO_GAS + nonzero * TX_DATA_NONZERO_GAS + tx.accessListCost;
}

/** What a transaction pays per gas at `baseFee`: min(fee cap, base fee + tip cap). */
export function effectiveGasPrice(tx: Pick<SignedTx, 'maxFeePerGas' | 'maxPriorityFeePerGas'>, baseFee: bigint): bigint {
  const capped = baseFee + tx.maxPriorityFeePerGas;
  return capped < tx.maxFeePerGas ? capped : tx.maxFeePerGas;
}

function accessListCost(tx: Transaction): bigint {
  let cost = 0n;
  for (const entry of tx.accessList ?? []) {
    cost += ACCESS_LIST_ADDRESS_GAS + ACCESS_LIST_STORAGE_KEY_GAS * BigInt(entry.storageKeys.length);
  }
  return cost;
}

function highS(): ChainError {
  return new ChainError('TX_HIGH_S', 'signature s value is in the upper half of the curve order (EIP-2); re-sign with a canonical low-s signature');
}

// Positions of the integer fields, which must have no leading zero byte: type 2 [chainId, nonce, tip, fee cap,
// gas, to, value, data, access list, yParity, r, s]; legacy [nonce, gas price, gas, to, value, data, v, r, s].
const TYPED_INTS = [0, 1, 2, 3, 4, 6, 9, 10, 11];
const LEGACY_INTS = [0, 1, 2, 4, 6, 7, 8];

/**
 * The transaction's RLP fields when `raw` is the canonical encoding (what re-encoding gives back, integers
 * without leading zeros), null otherwise. Checked on bytes with @ethereumjs/rlp: re-serialising through
 * ethers cost a tenth of the admission time.
 */
function canonicalFields(raw: Uint8Array): RlpItem[] | null {
  const typed = raw[0] === 2;
  const body = typed ? raw.subarray(1) : raw;
  let items: RlpItem;
  try {
    items = rlpDecode(body);
  } catch {
    return null;
  }
  if (!Array.isArray(items) || items.length !== (typed ? 12 : 9)) return null;
  const again = rlpEncode(items);
  if (again.length !== body.length || !again.every((b, i) => b === body[i])) return null;
  for (const i of typed ? TYPED_INTS : LEGACY_INTS) {
    const item = items[i];
    if (!(item instanceof Uint8Array) || (item.length > 0 && item[0] === 0)) return null;
  }
  return items;
}

/** The hash the sender signed: type 2 over 0x02 || rlp(first 9 fields); EIP-155 over rlp(6 fields, chainId, 0, 0). */
function signingDigest(typed: boolean, fields: RlpItem[], chainId: bigint): Uint8Array {
  if (!typed) return keccak256(rlpEncode([...fields.slice(0, 6), chainId, 0, 0]));
  const body = rlpEncode(fields.slice(0, 9));
  const out = new Uint8Array(body.length + 1);
  out[0] = 2;
  out.set(body, 1);
  return keccak256(out);
}

function shortReason(err: unknown): string {
  const msg = err instanceof Error ? (err as { shortMessage?: string }).shortMessage ?? err.message : String(err);
  return msg.length > 200 ? msg.slice(0, 200) + '...' : msg;
}
