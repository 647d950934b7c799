// Plain data types shared across the ledger: addresses, transactions, blocks, receipts, logs.
// Addresses and hashes are lowercase 0x-prefixed hex strings so they can key Maps directly.

/** Lowercase 0x-prefixed 20-byte hex address. */
export type Address = string;
/** Lowercase 0x-prefixed 32-byte hex hash. */
export type Hash = string;

/** A decoded, signature-checked Ethereum transaction (legacy EIP-155 or EIP-1559 type 2). */
export interface SignedTx {
  readonly hash: Hash;
  /** The exact bytes the sender signed and sent (typed envelope for type 2). */
  readonly raw: Uint8Array;
  readonly type: 0 | 2;
  readonly chainId: bigint;
  readonly nonce: bigint;
  readonly gasLimit: bigint;
  /** Legacy: the gas price. Type 2: the fee cap. */
  readonly maxFeePerGas: bigint;
  /** Legacy: the gas price. Type 2: the tip cap. */
  readonly maxPriorityFeePerGas: bigint;
  /** Legacy only: the gas price as sent; null for type 2. */
  readonly gasPrice: bigint | null;
  readonly to: Address | null;
  readonly value: bigint;
  readonly data: Uint8Array;
  /** Intrinsic gas of the EIP-2930 access list carried by a type 2 transaction (0 when empty). */
  readonly accessListCost: bigint;
  readonly from: Address;
  readonly yParity: 0 | 1;
  readonly v: bigint;
  readonly r: bigint;
  readonly s: bigint;
}

/** An Ethereum log entry as emitted by a native contract. */
export interface Log {
  readonly address: Address;
  readonly topics: readonly Hash[];
  readonly data: Uint8Array;
}

/** Outcome of one transaction in a block. */
export interface Receipt {
  readonly status: 0 | 1;
  readonly gasUsed: bigint;
  readonly cumulativeGasUsed: bigint;
  readonly effectiveGasPrice: bigint;
  readonly logs: readonly Log[];
  /** 256-byte Ethereum logs bloom of `logs`. */
  readonly logsBloom: Uint8Array;
  /** Address of a created contract; always null until contract creation exists. */
  readonly contractAddress: Address | null;
}

/** Account state held by the ledger. */
export interface Account {
  readonly nonce: bigint;
  readonly balance: bigint;
}
