// Enrolment records: what an operator sends to whoever writes the genesis file, made by `datagate init` on the
// node's own box. It binds a committee key (address, key type, public key) to the node's libp2p identity (peer
// id) and the addresses it listens on, and is signed by that committee key, so the record proves control of
// the key without the key leaving its keystore or token. See docs/architecture.md "Provisioning a committee".
//
// The signature covers keccak-256 of the RLP list [tag, version, role, address, key type, public key, peer id,
// listen addresses (a list), device address (empty when absent), createdAt], signed with purpose 'message'.
// The tag and the nested list make these bytes unlike any transaction's or consensus message's.
import { readFile } from 'node:fs/promises';
import type { Signer } from '../chain/index.ts';
import { DatagateError, bytesToBigint, bytesToHex, hexToBytes, keccak256, keyAddress, recoverAddress, rlpEncode, verifySignature } from '../chain/index.ts';
import { ConfigError, field, parseConfig } from './config/config.ts';
import { peerAddressProblem, parsePeerId } from './multiaddrs.ts';

export type EnrolmentErrorCode = 'ENROLMENT_INVALID' | 'ENROLMENT_KEY_UNSUITABLE';

/** A record that does not verify (ENROLMENT_INVALID) or a key that cannot serve the role (ENROLMENT_KEY_UNSUITABLE). */
export class EnrolmentError extends DatagateError<EnrolmentErrorCode> {}

export const ENROLMENT_ROLES = ['validator', 'proposer', 'follower'] as const;
export type EnrolmentRole = (typeof ENROLMENT_ROLES)[number];

const TAG = new TextEncoder().encode('datagate/enrolment/v1');

/** The shape of a record file (checked with the config machinery, so errors carry file:line:col and the field). */
export const enrolmentSchema = field.object({
  version: field.integer({ min: 1, max: 1, description: 'Format version' }),
  role: field.string({ enum: ENROLMENT_ROLES }),
  address: field.address(),
  keyType: field.string({ enum: ['secp256k1', 'p256'] }),
  publicKey: field.string({ pattern: /0x04[0-9a-fA-F]{128}/, patternHint: 'an uncompressed public key (0x04 and 64 bytes of hex)' }),
  peerId: field.string({ minLength: 1 }),
  listen: field.array(field.string({ minLength: 1 }), { minLength: 1 }),
  deviceAddress: field.optional(field.address()),
  createdAt: field.string({ pattern: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/, patternHint: 'an ISO 8601 UTC time (2026-01-31T12:00:00.000Z)' }),
  signature: field.string({ pattern: /0x([0-9a-fA-F]{130}|[0-9a-fA-F]{128})/, patternHint: 'a 64- or 65-byte hex signature' }),
});

/** A record as in its JSON file (addresses in lowercase after parsing). */
export interface EnrolmentRecord {
  readonly version: number;
  readonly role: EnrolmentRole;
  readonly address: string;
  readonly keyType: 'secp256k1' | 'p256';
  readonly publicKey: string;
  readonly peerId: string;
  readonly listen: readonly string[];
  readonly deviceAddress?: string;
  readonly createdAt: string;
  readonly signature: string;
}

export type UnsignedEnrolment = Omit<EnrolmentRecord, 'signature'>;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The digest a record's signature covers (see the file comment). */
export function enrolmentDigest(r: UnsignedEnrolment): Uint8Array {
  return keccak256(
    rlpEncode([
      TAG,
      r.version,
      utf8(r.role),
      hexToBytes(r.address),
      utf8(r.keyType),
      hexToBytes(r.publicKey),
      utf8(r.peerId),
      r.listen.map(utf8),
      r.deviceAddress === undefined ? new Uint8Array(0) : hexToBytes(r.deviceAddress),
      utf8(r.createdAt),
    ]),
  );
}

/** Throws ENROLMENT_KEY_UNSUITABLE when a key of `keyType` cannot serve `role`: a proposer seals blocks with secp256k1. */
export function checkRoleKey(role: EnrolmentRole, keyType: string, where: string): void {
  if (role === 'proposer' && keyType !== 'secp256k1') {
    throw new EnrolmentError('ENROLMENT_KEY_UNSUITABLE', `${where}: a proposer seals blocks with a secp256k1 key, and this one is ${keyType}; enrol it as a validator, or make a secp256k1 key (datagate key new --type secp256k1)`, { role, keyType });
  }
}

export interface EnrolmentInput {
  readonly role: EnrolmentRole;
  readonly signer: Signer;
  readonly peerId: string;
  /** Multiaddrs ending in /p2p/<peerId>. */
  readonly listen: readonly string[];
  readonly deviceAddress?: string;
  readonly createdAt?: Date;
}

/** Make and sign a record with the committee key `signer`. Throws ENROLMENT_KEY_UNSUITABLE, ENROLMENT_INVALID. */
export async function createEnrolment(input: EnrolmentInput): Promise<EnrolmentRecord> {
  checkRoleKey(input.role, input.signer.keyType, `the ${input.role} key ${input.signer.address}`);
  const unsigned: UnsignedEnrolment = {
    version: 1,
    role: input.role,
    address: input.signer.address.toLowerCase(),
    keyType: input.signer.keyType,
    publicKey: bytesToHex(input.signer.publicKey),
    peerId: input.peerId,
    listen: [...input.listen],
    ...(input.deviceAddress !== undefined ? { deviceAddress: input.deviceAddress.toLowerCase() } : {}),
    createdAt: (input.createdAt ?? new Date()).toISOString(),
  };
  const signature = await input.signer.sign(enrolmentDigest(unsigned), 'message');
  const record: EnrolmentRecord = { ...unsigned, signature: bytesToHex(signature) };
  checkEnrolment(record, 'the new record');
  return record;
}

function invalid(source: string, path: string, text: string): EnrolmentError {
  return new EnrolmentError('ENROLMENT_INVALID', `${source}: ${path}: ${text}; make the record again with datagate init on the node`, { source, field: path });
}

/** Check a parsed record's meaning: peer id, addresses, key against address, role against key, signature. */
export function checkEnrolment(r: EnrolmentRecord, source: string): void {
  const id = parsePeerId(r.peerId);
  if (!id.ok || id.value !== r.peerId) throw invalid(source, 'peerId', `not a libp2p peer id (${id.ok ? `write ${id.value}` : id.reason})`);
  r.listen.forEach((addr, i) => {
    const problem = peerAddressProblem(addr, r.peerId);
    if (problem !== undefined) throw invalid(source, `listen[${i}]`, `${addr}: ${problem}`);
  });
  const publicKey = hexToBytes(r.publicKey);
  let derived: string;
  try {
    derived = keyAddress(publicKey).toLowerCase();
  } catch (err) {
    throw invalid(source, 'publicKey', `not a public key (${(err as Error).message})`);
  }
  if (derived !== r.address.toLowerCase()) throw invalid(source, 'address', `${r.address} is not the address of publicKey (${derived})`);
  checkRoleKey(r.role, r.keyType, `${source}: role`);
  const sig = hexToBytes(r.signature);
  const digest = enrolmentDigest(r);
  let ok: boolean;
  try {
    ok = verifySignature(r.keyType, digest, sig.subarray(0, 64), publicKey);
    if (ok && r.keyType === 'secp256k1') {
      const recid = sig[64];
      ok = sig.length === 65 && (recid === 0 || recid === 1) && recoverAddress(digest, bytesToBigint(sig.subarray(0, 32)), bytesToBigint(sig.subarray(32, 64)), recid).toLowerCase() === derived;
    } else if (ok) {
      ok = sig.length === 64;
    }
  } catch {
    ok = false;
  }
  if (!ok) throw invalid(source, 'signature', `does not verify against publicKey over the record's fields (the record was changed after signing, or signed by another key)`);
}

/** Parse and verify record text; `source` names it in errors. Throws CONFIG_PARSE, CONFIG_INVALID, ENROLMENT_*. */
export function parseEnrolment(text: string, source: string): EnrolmentRecord {
  // The schema's type has deviceAddress as `string | undefined`; an absent member stays absent in its value.
  const record: EnrolmentRecord = parseConfig(text, source, enrolmentSchema);
  checkEnrolment(record, source);
  return record;
}

/** Read and verify the record file `path`. Throws CONFIG_NOT_FOUND and parseEnrolment's errors. */
export async function readEnrolmentFile(path: string): Promise<EnrolmentRecord> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError('CONFIG_NOT_FOUND', `cannot read enrolment record ${path}: ${(err as Error).message}`, { source: path }, { cause: err });
  }
  return parseEnrolment(text, path);
}
