// Transaction execution: the state transition of plain value transfers with Ethereum gas accounting.
// Fee policy (fixed): every transaction pays at least the chain's constant base fee per gas; the whole
// fee (gas used x effective price) goes to the block's proposer. There is no EVM: a call to an address
// is a value transfer, its data is charged as intrinsic gas and otherwise ignored.
import { ChainError } from './errors.ts';
import { logsBloom } from './block.ts';
import type { StateOverlay, StateReader } from './state/world.ts';
import { effectiveGasPrice, intrinsicGas } from './tx.ts';
import type { Address, Receipt, SignedTx } from './types.ts';

/** What a transaction sees of the block it runs in. */
export interface BlockContext {
  readonly number: bigint;
  readonly timestamp: number;
  readonly proposer: Address;
  readonly gasLimit: bigint;
  readonly baseFee: bigint;
}

/**
 * Check that `tx` can run on `state` now: fee at least `baseFee`, enough gas for its intrinsic cost,
 * the sender's next nonce, and funds for gasLimit x fee cap + value (Ethereum's up-front rule).
 * `nonce: 'exact' | 'not-below'` chooses whether a future nonce is acceptable (pool admission).
 */
export function checkTx(tx: SignedTx, state: StateReader, baseFee: bigint, nonce: 'exact' | 'not-below'): void {
  if (tx.to === null) {
    throw new ChainError('TX_UNSUPPORTED_TYPE', 'contract creation is not supported on this chain (no EVM); send to an address');
  }
  if (tx.maxFeePerGas < baseFee) {
    throw new ChainError('TX_FEE_TOO_LOW', `fee per gas ${tx.maxFeePerGas} is below the base fee ${baseFee}`, { fee: tx.maxFeePerGas, baseFee });
  }
  if (tx.maxPriorityFeePerGas > tx.maxFeePerGas) {
    throw new ChainError('TX_FEE_TOO_LOW', 'max priority fee per gas is higher than max fee per gas', {});
  }
  const intrinsic = intrinsicGas(tx);
  if (tx.gasLimit < intrinsic) {
    throw new ChainError('TX_INTRINSIC_GAS_TOO_LOW', `intrinsic gas too low: gas limit ${tx.gasLimit}, needed ${intrinsic}`, {
      gasLimit: tx.gasLimit,
      needed: intrinsic,
    });
  }
  const account = state.account(tx.from);
  if (tx.nonce < account.nonce) {
    throw new ChainError('TX_NONCE_TOO_LOW', `nonce too low: next nonce of ${tx.from} is ${account.nonce}, tx has ${tx.nonce}`, {
      address: tx.from,
      next: account.nonce,
      got: tx.nonce,
    });
  }
  if (nonce === 'exact' && tx.nonce > account.nonce) {
    throw new ChainError('TX_NONCE_TOO_HIGH', `nonce too high: next nonce of ${tx.from} is ${account.nonce}, tx has ${tx.nonce}`, {
      address: tx.from,
      next: account.nonce,
      got: tx.nonce,
    });
  }
  const cost = tx.gasLimit * tx.maxFeePerGas + tx.value;
  if (account.balance < cost) {
    throw new ChainError(
      'TX_INSUFFICIENT_FUNDS',
      `insufficient funds for gas * price + value: balance ${account.balance}, tx cost ${cost}, overshot ${cost - account.balance}`,
      { address: tx.from, balance: account.balance, cost },
    );
  }
}

/** Run `tx` on `state` (which it mutates) and return its receipt; throws ChainError if it cannot run. */
export function applyTx(state: StateOverlay, tx: SignedTx, ctx: BlockContext, cumulativeGasBefore: bigint): Receipt {
  if (cumulativeGasBefore + tx.gasLimit > ctx.gasLimit) {
    throw new ChainError('TX_GAS_LIMIT_EXCEEDED', `transaction gas limit ${tx.gasLimit} does not fit the block's remaining gas`, {
      gasLimit: tx.gasLimit,
      remaining: ctx.gasLimit - cumulativeGasBefore,
    });
  }
  checkTx(tx, state, ctx.baseFee, 'exact');
  const gasUsed = intrinsicGas(tx);
  const price = effectiveGasPrice(tx, ctx.baseFee);
  const fee = gasUsed * price;
  const sender = state.account(tx.from);
  state.setAccount(tx.from, { nonce: sender.nonce + 1n, balance: sender.balance - fee - tx.value });
  const to = tx.to!;
  const recipient = state.account(to);
  state.setAccount(to, { nonce: recipient.nonce, balance: recipient.balance + tx.value });
  const proposer = state.account(ctx.proposer);
  state.setAccount(ctx.proposer, { nonce: proposer.nonce, balance: proposer.balance + fee });
  return {
    status: 1,
    gasUsed,
    cumulativeGasUsed: cumulativeGasBefore + gasUsed,
    effectiveGasPrice: price,
    logs: [],
    logsBloom: logsBloom([]),
    contractAddress: null,
  };
}

export interface ExecutionResult {
  readonly included: SignedTx[];
  readonly receipts: Receipt[];
  readonly gasUsed: bigint;
  /** Transactions left out while building, with the reason. */
  readonly rejected: { tx: SignedTx; error: ChainError }[];
}

/**
 * Execute `txs` in order on `state`. In 'build' mode a transaction that cannot run is left out (and
 * reported); in 'validate' mode it makes the whole block invalid (BLOCK_INVALID).
 */
export function executeTxs(state: StateOverlay, ctx: BlockContext, txs: readonly SignedTx[], mode: 'build' | 'validate'): ExecutionResult {
  const included: SignedTx[] = [];
  const receipts: Receipt[] = [];
  const rejected: { tx: SignedTx; error: ChainError }[] = [];
  let gasUsed = 0n;
  for (const tx of txs) {
    try {
      const receipt = applyTx(state, tx, ctx, gasUsed);
      gasUsed = receipt.cumulativeGasUsed;
      included.push(tx);
      receipts.push(receipt);
    } catch (err) {
      if (!(err instanceof ChainError)) throw err;
      if (mode === 'validate') {
        throw new ChainError('BLOCK_INVALID', `block ${ctx.number}: transaction ${tx.hash} cannot run: ${err.message}`, { tx: tx.hash, reason: err.code }, { cause: err });
      }
      rejected.push({ tx, error: err });
    }
  }
  return { included, receipts, gasUsed, rejected };
}
