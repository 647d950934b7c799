// From enrolment records to the chain they found: the committee and proposer schedule in the order the records
// are given, the bootstrap peers from their listen addresses, and the refusals an operator needs before a
// chain exists rather than after (a committee too small to tolerate a fault, a key enrolled twice, the dev
// chain id). See docs/architecture.md "Provisioning a committee".
import { getAddress } from 'ethers';
import type { ChainSpec, ValidatorKey } from '../chain/index.ts';
import { DatagateError, hexToBytes } from '../chain/index.ts';
import { DEV_CHAIN_ID } from './config/dev-config.ts';
import type { EnrolmentRecord } from './enrolment.ts';

export type GenesisErrorCode = 'GENESIS_COMMITTEE_TOO_SMALL' | 'GENESIS_NO_PROPOSER' | 'GENESIS_DUPLICATE' | 'GENESIS_DEV_CHAIN_ID' | 'GENESIS_ALLOC_INVALID';

/** A set of records or parameters that must not become a chain. */
export class GenesisError extends DatagateError<GenesisErrorCode> {}

/** Validators LBFT needs to tolerate one faulty one: n >= 3f + 1 with f = 1. */
export const MIN_COMMITTEE = 4;

export interface SourcedRecord {
  /** Where the record came from (its file), for errors. */
  readonly source: string;
  readonly record: EnrolmentRecord;
}

export interface GenesisParams {
  readonly chainId: bigint;
  readonly alloc: ReadonlyMap<string, bigint>;
  readonly baseFee: bigint;
  readonly gasLimit: bigint;
  readonly periodMs: number;
  readonly timeoutMs: number;
  readonly genesisTimestamp: number;
  /** Accept fewer than MIN_COMMITTEE validators (a test chain that tolerates no fault). */
  readonly allowSmallCommittee?: boolean;
  /** Accept the dev chain's id. */
  readonly dev?: boolean;
}

/** Parse `ADDR=WEI` allocations (several per argument when comma-separated). Throws GENESIS_ALLOC_INVALID. */
export function parseAllocs(args: readonly string[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const entry of args.flatMap((a) => a.split(',')).filter((e) => e.trim() !== '')) {
    const m = /^\s*(0x[0-9a-fA-F]{40})=(\d+)\s*$/.exec(entry);
    if (m === null) throw new GenesisError('GENESIS_ALLOC_INVALID', `--alloc ${entry}: expected ADDRESS=WEI, e.g. 0x70997970c51812dc3a010c7d01b50e0d17dc79c8=1000000000000000000`, { entry });
    let address: string;
    try {
      address = getAddress(m[1]!).toLowerCase();
    } catch {
      throw new GenesisError('GENESIS_ALLOC_INVALID', `--alloc ${entry}: ${m[1]} has a bad EIP-55 checksum; check for a typo or write it in lowercase`, { entry });
    }
    if (out.has(address)) throw new GenesisError('GENESIS_ALLOC_INVALID', `--alloc: ${address} is given twice; give each address once`, { address });
    out.set(address, BigInt(m[2]!));
  }
  return out;
}

/**
 * The chain spec and bootstrap peers of verified `records` (validators and proposers in the order given;
 * follower records add bootstrap peers only). Throws GENESIS_* errors that name the record files.
 */
export function buildGenesis(records: readonly SourcedRecord[], params: GenesisParams): { spec: ChainSpec; bootstrap: string[] } {
  if (params.chainId === BigInt(DEV_CHAIN_ID) && params.dev !== true) {
    throw new GenesisError('GENESIS_DEV_CHAIN_ID', `chain id ${DEV_CHAIN_ID} is the dev chain's (datagate dev), where wallets expect the public dev keys; pick another --chain-id, or pass --dev for a development chain`, { chainId: DEV_CHAIN_ID });
  }
  const committee: ValidatorKey[] = [];
  const proposers: string[] = [];
  const validatorOf = new Map<string, string>();
  const proposerOf = new Map<string, string>();
  const validatorPeer = new Map<string, string>();
  const bootstrap: string[] = [];
  for (const { source, record } of records) {
    const address = record.address.toLowerCase();
    if (record.role === 'validator') {
      const before = validatorOf.get(address);
      if (before !== undefined) throw new GenesisError('GENESIS_DUPLICATE', `${source}: validator ${address} is already enrolled by ${before}; give each record once`, { source, address });
      const samePeer = validatorPeer.get(record.peerId);
      if (samePeer !== undefined) {
        throw new GenesisError('GENESIS_DUPLICATE', `${source}: peer ${record.peerId} already runs a validator (${samePeer}); validators on one node fail together, so each needs its own node (its own data directory)`, { source, peerId: record.peerId });
      }
      validatorOf.set(address, source);
      validatorPeer.set(record.peerId, source);
      committee.push({ address, keyType: record.keyType, publicKey: hexToBytes(record.publicKey) });
    } else if (record.role === 'proposer') {
      const before = proposerOf.get(address);
      if (before !== undefined) throw new GenesisError('GENESIS_DUPLICATE', `${source}: proposer ${address} is already enrolled by ${before}; give each record once`, { source, address });
      proposerOf.set(address, source);
      proposers.push(address);
    }
    for (const addr of record.listen) if (!bootstrap.includes(addr)) bootstrap.push(addr);
  }
  const n = committee.length;
  if (n < MIN_COMMITTEE && params.allowSmallCommittee !== true) {
    throw new GenesisError(
      'GENESIS_COMMITTEE_TOO_SMALL',
      `${n} validator record${n === 1 ? '' : 's'}: LBFT tolerates f faulty validators only with n >= 3f + 1, so ${MIN_COMMITTEE} are needed to survive one fault; add validator records, or pass --allow-small-committee for a chain that stops when any validator does`,
      { validators: n },
    );
  }
  if (n === 0) throw new GenesisError('GENESIS_COMMITTEE_TOO_SMALL', 'no validator record: a chain needs at least one validator to finalize blocks', { validators: 0 });
  if (proposers.length === 0) throw new GenesisError('GENESIS_NO_PROPOSER', 'no proposer record: nobody would build blocks; add a record made with datagate init --role proposer', {});
  const spec: ChainSpec = {
    chainId: params.chainId,
    baseFee: params.baseFee,
    gasLimit: params.gasLimit,
    committee,
    proposers,
    periodMs: params.periodMs,
    timeoutMs: params.timeoutMs,
    genesisTimestamp: params.genesisTimestamp,
    alloc: params.alloc,
  };
  return { spec, bootstrap };
}
