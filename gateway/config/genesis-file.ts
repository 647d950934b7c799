// The genesis file of a committee chain: everything fixed at genesis (chain id, committee, proposer schedule,
// allocations, fee and timing parameters) plus the peers a new node dials first. `datagate genesis` writes it
// from the operators' enrolment records; `datagate start` reads it into a ChainSpec. Its genesis hash
// (genesisOf(spec).block.hash) is what a data directory is bound to. See docs/architecture.md "Provisioning a
// committee" and "Blocks and genesis".
import { readFile } from 'node:fs/promises';
import type { ChainSpec, ValidatorKey } from '../../chain/index.ts';
import { bytesToHex, genesisOf, hexToBytes, keyAddress } from '../../chain/index.ts';
import { writeFileAtomic } from '../../device/index.ts';
import { peerAddressProblem } from '../multiaddrs.ts';
import type { JsonNode } from './config-json.ts';
import { ConfigError, field, parseConfig, type Infer, type RefineIssue } from './config.ts';

export const DEFAULT_BASE_FEE = 1_000_000_000n;
export const DEFAULT_GAS_LIMIT = 30_000_000;
export const DEFAULT_PERIOD_MS = 1000;
export const DEFAULT_TIMEOUT_MS = 2000;

const wei = (description: string, dflt?: string) =>
  field.string({ pattern: /0|[1-9][0-9]{0,77}/, patternHint: 'an amount in wei as a decimal string, e.g. "1000000000000000000"', description, ...(dflt !== undefined ? { default: dflt } : {}) });

const memberSchema = field.object(
  {
    address: field.address(),
    keyType: field.string({ enum: ['secp256k1', 'p256'] }),
    publicKey: field.string({ pattern: /0x04[0-9a-fA-F]{128}/, patternHint: 'an uncompressed public key (0x04 and 64 bytes of hex)' }),
  },
  {
    refine(v) {
      let derived: string;
      try {
        derived = keyAddress(hexToBytes(v.publicKey)).toLowerCase();
      } catch (err) {
        return `publicKey is not a ${v.keyType} public key (${(err as Error).message})`;
      }
      return derived === v.address ? undefined : `address ${v.address} is not the address of publicKey (${derived})`;
    },
  },
);

function items(node: JsonNode): JsonNode[] {
  return node.type === 'array' ? node.items : [];
}

function duplicates(values: readonly string[], node: JsonNode, path: string, what: string): RefineIssue[] {
  const seen = new Map<string, number>();
  const out: RefineIssue[] = [];
  values.forEach((v, i) => {
    const first = seen.get(v);
    if (first !== undefined) out.push({ node: items(node)[i], path: `${path}[${i}]`, text: `${path}[${i}]: ${what} ${v} is already ${path}[${first}]` });
    else seen.set(v, i);
  });
  return out;
}

/** The genesis file's shape. */
export const genesisFileSchema = field.object({
  version: field.integer({ min: 1, max: 1, description: 'Format version' }),
  chainId: field.integer({ min: 1, max: Number.MAX_SAFE_INTEGER, description: 'EIP-155 chain id' }),
  committee: field.refined(field.array(memberSchema, { minLength: 1, description: 'Validators, in committee order' }), (v, node, path) =>
    duplicates(v.map((m) => m.address), node, path, 'validator'),
  ),
  proposers: field.refined(field.array(field.address(), { minLength: 1, description: 'Proposer schedule: P(h) = proposers[h mod length]' }), (v, node, path) =>
    duplicates(v, node, path, 'proposer'),
  ),
  alloc: field.refined(field.record(wei('Initial balance'), { default: {}, description: 'Initial balances by address (wei)' }), (v, node, path) => {
    const out: RefineIssue[] = [];
    const seen = new Set<string>();
    for (const key of Object.keys(v)) {
      const member = node.type === 'object' ? node.members.get(key) : undefined;
      const where = member === undefined ? node : { type: 'string' as const, value: key, ...(member.keyStart !== undefined ? { start: member.keyStart } : {}) };
      if (!/^0x[0-9a-fA-F]{40}$/.test(key)) out.push({ node: where, path: `${path}.${key}`, text: `${path}: key ${JSON.stringify(key)} must be a 0x-prefixed 20-byte hex address` });
      else if (seen.has(key.toLowerCase())) out.push({ node: where, path: `${path}.${key}`, text: `${path}: ${key} appears twice (addresses are case-insensitive)` });
      seen.add(key.toLowerCase());
    }
    return out;
  }),
  baseFee: wei('Constant base fee per gas (wei)', DEFAULT_BASE_FEE.toString()),
  gasLimit: field.integer({ min: 21_000, max: Number.MAX_SAFE_INTEGER, default: DEFAULT_GAS_LIMIT, description: 'Gas limit of each block' }),
  periodMs: field.integer({ min: 1, default: DEFAULT_PERIOD_MS, description: 'Target time between blocks (ms)' }),
  timeoutMs: field.integer({ min: 10, default: DEFAULT_TIMEOUT_MS, description: 'Wait past the period before impeaching the scheduled proposer (ms)' }),
  genesisTimestamp: field.integer({ min: 0, max: Number.MAX_SAFE_INTEGER, default: 0, description: 'Timestamp of the genesis block (ms since 1970)' }),
  bootstrap: field.refined(field.array(field.string({ minLength: 1 }), { default: [], description: 'Peers a new node dials first, each ending in /p2p/<peer id>' }), (v, node, path) =>
    v.flatMap((addr, i) => {
      const problem = peerAddressProblem(addr);
      return problem === undefined ? [] : [{ node: items(node)[i], path: `${path}[${i}]`, text: `${path}[${i}]: ${addr}: ${problem}` }];
    }),
  ),
});

export type GenesisFile = Infer<typeof genesisFileSchema>;

/** A genesis file read and turned into what a node runs on. */
export interface Genesis {
  readonly spec: ChainSpec;
  readonly bootstrap: readonly string[];
  readonly genesisHash: string;
}

/** The ChainSpec and genesis hash of a checked genesis file. */
export function genesisFromFile(file: GenesisFile): Genesis {
  const committee: ValidatorKey[] = file.committee.map((m) => ({ address: m.address, keyType: m.keyType, publicKey: hexToBytes(m.publicKey) }));
  const spec: ChainSpec = {
    chainId: BigInt(file.chainId),
    baseFee: BigInt(file.baseFee),
    gasLimit: BigInt(file.gasLimit),
    committee,
    proposers: [...file.proposers],
    periodMs: file.periodMs,
    timeoutMs: file.timeoutMs,
    genesisTimestamp: file.genesisTimestamp,
    alloc: new Map(Object.entries(file.alloc).map(([address, balance]) => [address.toLowerCase(), BigInt(balance)])),
  };
  return { spec, bootstrap: [...file.bootstrap], genesisHash: genesisOf(spec).block.hash };
}

/** Parse genesis file text (`source` names it in errors: file:line:col). Throws CONFIG_PARSE, CONFIG_INVALID. */
export function parseGenesisFile(text: string, source: string): Genesis {
  return genesisFromFile(parseConfig(text, source, genesisFileSchema));
}

/** Read and parse the genesis file `path`. Throws CONFIG_NOT_FOUND and parseGenesisFile's errors. */
export async function loadGenesisFile(path: string): Promise<Genesis> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const message = errno === 'ENOENT' ? `genesis file not found: ${path} (get it from whoever ran datagate genesis for this chain)` : `cannot read genesis file ${path}: ${(err as Error).message}`;
    throw new ConfigError('CONFIG_NOT_FOUND', message, { source: path, errno }, { cause: err });
  }
  return parseGenesisFile(text, path);
}

/** The genesis file text of `spec` with `bootstrap` peers (what parseGenesisFile reads back to the same spec). */
export function genesisFileText(spec: ChainSpec, bootstrap: readonly string[]): string {
  const file: GenesisFile = {
    version: 1,
    chainId: Number(spec.chainId),
    committee: spec.committee.map((m) => ({ address: m.address.toLowerCase(), keyType: m.keyType, publicKey: bytesToHex(m.publicKey) })),
    proposers: spec.proposers.map((p) => p.toLowerCase()),
    alloc: Object.fromEntries([...spec.alloc].map(([a, b]) => [a.toLowerCase(), b.toString()])),
    baseFee: spec.baseFee.toString(),
    gasLimit: Number(spec.gasLimit),
    periodMs: spec.periodMs,
    timeoutMs: spec.timeoutMs,
    genesisTimestamp: spec.genesisTimestamp,
    bootstrap: [...bootstrap],
  };
  return JSON.stringify(file, null, 2) + '\n';
}

/** Write the genesis file atomically (readable by all: it holds no secret). */
export async function writeGenesisFile(path: string, spec: ChainSpec, bootstrap: readonly string[]): Promise<void> {
  await writeFileAtomic(path, genesisFileText(spec, bootstrap), { mode: 0o644 });
}
