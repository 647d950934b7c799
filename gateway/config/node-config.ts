// Configuration of `datagate start --config FILE`: one gateway of a committee whose chain is fixed by a genesis
// file (genesis-file.ts). The rpc, txpool, sensors, pipeline and log sections are the ones `datagate dev` has
// (dev-config.ts); what is new is the node's role, its keys by URI, and its libp2p peer settings. Role and keys
// are checked against each other here, so a validator without a validator key fails at load, not at its first
// vote. See docs/architecture.md "Provisioning a committee".
import type { JsonNode } from './config-json.ts';
import { field, type Infer } from './config.ts';
import { logSchema, pipelineSchema, rpcSchema, txpoolSchema } from './dev-config.ts';
import { sensorsSchema } from './sensors-config.ts';
import { parseMultiaddr, peerAddressProblem } from '../multiaddrs.ts';

/** Where a node listens for its peers unless told otherwise (loopback: nothing is exposed by default). */
export const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/30340';
export const DEFAULT_NODE_DATA_DIR = './data/node';

export const NODE_ROLES = ['validator', 'proposer', 'validator+proposer', 'follower'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

const keyUri = (description: string) =>
  field.optional(field.string({ pattern: /(keystore|pkcs11):.+/, patternHint: 'a key URI: keystore:<path> or pkcs11:token=...;object=...', description }));
const path = (description: string) => field.optional(field.string({ minLength: 1, description }));

const keysSchema = field.object({
  validator: keyUri('Key that votes (PREPARE, COMMIT, ROUND-CHANGE); required for roles validator and validator+proposer'),
  proposer: keyUri('Key that seals blocks (secp256k1); required for roles proposer and validator+proposer'),
  device: keyUri('Key that signs the segments of this gateway'),
  seller: keyUri('Account that sells segments on the chain'),
  passphraseFile: path('Keystore passphrase file (mode 0600); default: the DATAGATE_KEYSTORE_PASSPHRASE environment variable'),
  pinFile: path("PKCS#11 user PIN file (mode 0600); default: a URI's pin-source, then DATAGATE_PKCS11_PIN"),
  pkcs11Module: path('PKCS#11 module for key URIs without a module-path'),
});

const itemsOf = (node: JsonNode): JsonNode[] => (node.type === 'array' ? node.items : []);

const p2pSchema = field.object({
  listen: field.refined(field.array(field.string({ minLength: 1 }), { minLength: 1, default: [DEFAULT_LISTEN], description: 'Multiaddrs this node listens on for its peers' }), (v, node, path) =>
    v.flatMap((addr, i) => {
      const parsed = parseMultiaddr(addr);
      const problem = !parsed.ok ? `is not a multiaddr (${parsed.reason})` : parsed.components.some((c) => c.name === 'tcp') ? undefined : 'needs a /tcp/<port> part (the committee transport is TCP)';
      return problem === undefined ? [] : [{ node: itemsOf(node)[i], path: `${path}[${i}]`, text: `${path}[${i}]: ${addr} ${problem}` }];
    }),
  ),
  bootstrap: field.refined(field.array(field.string({ minLength: 1 }), { default: [], description: "Peers dialled at start besides the genesis file's bootstrap list, each ending in /p2p/<peer id>" }), (v, node, path) =>
    v.flatMap((addr, i) => {
      const problem = peerAddressProblem(addr);
      return problem === undefined ? [] : [{ node: itemsOf(node)[i], path: `${path}[${i}]`, text: `${path}[${i}]: ${addr}: ${problem}` }];
    }),
  ),
  maxPeers: field.integer({ min: 1, max: 1000, default: 50, description: 'Most connected peers' }),
});

/** What each role needs and must not have: a key a role does not use is a mistake in the file, not a spare. */
function roleProblem(role: NodeRole, keys: { validator?: string | undefined; proposer?: string | undefined }): string | undefined {
  const votes = role === 'validator' || role === 'validator+proposer';
  const seals = role === 'proposer' || role === 'validator+proposer';
  if (votes && keys.validator === undefined) return `role ${role} needs keys.validator (the key this node votes with, as enrolled in the genesis committee)`;
  if (seals && keys.proposer === undefined) return `role ${role} needs keys.proposer (the secp256k1 key this node seals blocks with, as listed in the genesis proposers)`;
  if (!votes && keys.validator !== undefined) return `keys.validator is set but role ${role} does not vote; remove it, or set role to validator or validator+proposer`;
  if (!seals && keys.proposer !== undefined) return `keys.proposer is set but role ${role} does not seal blocks; remove it, or set role to proposer or validator+proposer`;
  return undefined;
}

/** Config of `datagate start`: one gateway of a committee. */
export const nodeConfigSchema = field.object(
  {
    dataDir: field.string({ minLength: 1, default: DEFAULT_NODE_DATA_DIR, description: 'Data directory: chain, WAL, double-sign guard state, peer key, pipeline' }),
    genesis: field.string({ minLength: 1, description: 'Path of the genesis file (made by datagate genesis); a relative path is taken from the working directory' }),
    role: field.string({ enum: NODE_ROLES, description: 'validator (votes), proposer (seals blocks), validator+proposer, or follower (checks certificates, serves JSON-RPC)' }),
    keys: keysSchema,
    p2p: p2pSchema,
    rpc: rpcSchema,
    txpool: txpoolSchema,
    sensors: sensorsSchema,
    pipeline: pipelineSchema,
    log: logSchema,
  },
  { refine: (v) => roleProblem(v.role, v.keys) },
);

export type NodeConfig = Infer<typeof nodeConfigSchema>;
