// JSON shapes of blocks, transactions, receipts and logs as Ethereum clients (ethers, viem) expect them.
// Header timestamps are milliseconds on this chain; `timestamp` is given in seconds as Ethereum tools
// require, with the exact value beside it as `timestampMs`.
import type { Block } from '../block.ts';
import { bytesToHex } from '../crypto/index.ts';
import type { Receipt, SignedTx } from '../types.ts';
import { effectiveGasPrice } from '../tx.ts';
import type { JsonLog } from './subscriptions.ts';
import { Transaction } from 'ethers';

export const quantity = (n: bigint | number): string => '0x' + n.toString(16);

const EMPTY_UNCLES = '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347';
const ZERO32 = '0x' + '00'.repeat(32);

/** Header fields of `block` in eth_getBlockBy* / newHeads form. */
export function formatHeader(block: Block): Record<string, unknown> {
  const h = block.header;
  return {
    number: quantity(h.number),
    hash: block.hash,
    parentHash: h.parentHash,
    timestamp: quantity(Math.floor(h.timestamp / 1000)),
    timestampMs: quantity(h.timestamp),
    miner: h.proposer,
    stateRoot: h.stateRoot,
    transactionsRoot: h.txRoot,
    receiptsRoot: h.receiptRoot,
    logsBloom: bytesToHex(h.logsBloom),
    gasUsed: quantity(h.gasUsed),
    gasLimit: quantity(h.gasLimit),
    baseFeePerGas: quantity(h.baseFee),
    extraData: '0x',
    nonce: '0x0000000000000000',
    mixHash: ZERO32,
    difficulty: '0x0',
    totalDifficulty: '0x0',
    sha3Uncles: EMPTY_UNCLES,
    term: quantity(h.term),
    round: quantity(h.round),
    seal: bytesToHex(h.seal),
  };
}

export function formatBlock(block: Block, fullTxs: boolean): Record<string, unknown> {
  return {
    ...formatHeader(block),
    size: quantity(block.txs.reduce((n, tx) => n + tx.raw.length, 600)),
    uncles: [],
    transactions: fullTxs ? block.txs.map((tx, i) => formatTx(tx, { block, index: i })) : block.txs.map((tx) => tx.hash),
  };
}

/** A transaction, with its position when it is in a block (null fields while pending). */
export function formatTx(tx: SignedTx, where: { block: Block; index: number } | null): Record<string, unknown> {
  const out: Record<string, unknown> = {
    hash: tx.hash,
    type: quantity(tx.type),
    chainId: quantity(tx.chainId),
    nonce: quantity(tx.nonce),
    from: tx.from,
    to: tx.to,
    value: quantity(tx.value),
    gas: quantity(tx.gasLimit),
    input: bytesToHex(tx.data),
    v: quantity(tx.v),
    r: quantity(tx.r),
    s: quantity(tx.s),
    blockHash: where === null ? null : where.block.hash,
    blockNumber: where === null ? null : quantity(where.block.header.number),
    transactionIndex: where === null ? null : quantity(where.index),
  };
  if (tx.type === 0) {
    out.gasPrice = quantity(tx.gasPrice!);
  } else {
    out.yParity = quantity(tx.yParity);
    out.maxFeePerGas = quantity(tx.maxFeePerGas);
    out.maxPriorityFeePerGas = quantity(tx.maxPriorityFeePerGas);
    out.gasPrice = quantity(where === null ? tx.maxFeePerGas : effectiveGasPrice(tx, where.block.header.baseFee));
    // The access list is only decoded again when there is one: it is rare and only served here.
    out.accessList = tx.accessListCost === 0n ? [] : (Transaction.from(bytesToHex(tx.raw)).accessList ?? []);
  }
  return out;
}

export function formatLogs(block: Block, receipts: readonly Receipt[]): JsonLog[] {
  const logs: JsonLog[] = [];
  let logIndex = 0;
  receipts.forEach((receipt, txIndex) => {
    for (const log of receipt.logs) {
      logs.push({
        address: log.address,
        topics: [...log.topics],
        data: bytesToHex(log.data),
        blockNumber: quantity(block.header.number),
        blockHash: block.hash,
        transactionHash: block.txs[txIndex]!.hash,
        transactionIndex: quantity(txIndex),
        logIndex: quantity(logIndex++),
        removed: false,
      });
    }
  });
  return logs;
}

export function formatReceipt(block: Block, receipts: readonly Receipt[], index: number): Record<string, unknown> {
  const tx = block.txs[index]!;
  const r = receipts[index]!;
  const firstLog = receipts.slice(0, index).reduce((n, x) => n + x.logs.length, 0);
  return {
    transactionHash: tx.hash,
    transactionIndex: quantity(index),
    blockHash: block.hash,
    blockNumber: quantity(block.header.number),
    from: tx.from,
    to: tx.to,
    type: quantity(tx.type),
    status: quantity(r.status),
    gasUsed: quantity(r.gasUsed),
    cumulativeGasUsed: quantity(r.cumulativeGasUsed),
    effectiveGasPrice: quantity(r.effectiveGasPrice),
    contractAddress: r.contractAddress,
    logsBloom: bytesToHex(r.logsBloom),
    logs: formatLogs(block, receipts).slice(firstLog, firstLog + r.logs.length),
  };
}
