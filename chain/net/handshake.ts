// Binding a libp2p peer to a committee key (see docs/architecture.md, "Peers"). Noise proves who holds a
// peer id; this proves which chain key stands behind it. Each side sends a fresh 32-byte nonce, then a
// proof: its chain key signs a digest of the domain string, the chain id, the genesis hash, its own
// peer id, the other's peer id and both nonces. The other side's nonce makes a proof useless in any other
// handshake, and the two peer ids make it useless on any other Noise session.
import { randomBytes } from 'node:crypto';
import type { ValidatorKey } from '../certificate.ts';
import { memberSigned } from '../certificate.ts';
import { hexToBytes, keccak256, keyAddress } from '../crypto/index.ts';
import type { KeyType } from '../crypto/index.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList } from '../rlp.ts';
import type { Signer } from '../signing.ts';
import type { Address, Hash } from '../types.ts';
import { NetError } from './errors.ts';

export const AUTH_DOMAIN = 'datagate/peer-auth/1';
export const NONCE_BYTES = 32;

/** What both ends of one handshake agree on, seen from one of them. */
export interface AuthSession {
  readonly chainId: bigint;
  readonly genesisHash: Hash;
  /** Peer ids as Noise authenticated them (base58 strings). */
  readonly localPeerId: string;
  readonly remotePeerId: string;
  readonly localNonce: Uint8Array;
  readonly remoteNonce: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/** The digest a prover signs: bound to the chain, both peer ids (prover first) and both nonces (the verifier's first). */
export function authDigest(chainId: bigint, genesisHash: Hash, proverPeerId: string, verifierPeerId: string, verifierNonce: Uint8Array, proverNonce: Uint8Array): Uint8Array {
  return keccak256(rlpEncode([enc.encode(AUTH_DOMAIN), chainId, hexToBytes(genesisHash), enc.encode(proverPeerId), enc.encode(verifierPeerId), verifierNonce, proverNonce]));
}

/** This side's proof for `session`: its key type, public key and signature; an empty list for a node without a key. */
export async function makeProof(signer: Signer | null, session: AuthSession): Promise<Uint8Array> {
  if (signer === null) return rlpEncode([]);
  const digest = authDigest(session.chainId, session.genesisHash, session.localPeerId, session.remotePeerId, session.remoteNonce, session.localNonce);
  const signature = await signer.sign(digest, 'message');
  return rlpEncode([enc.encode(signer.keyType), signer.publicKey, signature]);
}

/**
 * The chain address the remote side proved in `session`, or null when it sent no key (a follower).
 * A committee member's proof is checked against the key the committee records for its address.
 * Throws NET_AUTH_FAILED when the proof is malformed or does not verify.
 */
export function checkProof(proof: Uint8Array, session: AuthSession, committee: readonly ValidatorKey[]): Address | null {
  let fields;
  try {
    fields = rlpList(rlpDecode(proof));
  } catch (err) {
    throw new NetError('NET_AUTH_FAILED', 'the peer sent an authentication proof that is not RLP', {}, { cause: err });
  }
  if (fields === null) throw new NetError('NET_AUTH_FAILED', 'the peer sent an authentication proof that is not a list');
  if (fields.length === 0) return null;
  const [keyTypeBytes, publicKey, signature] = fields.map((f) => rlpBytes(f));
  if (fields.length !== 3 || keyTypeBytes == null || publicKey == null || signature == null) {
    throw new NetError('NET_AUTH_FAILED', 'the peer sent an authentication proof without key type, public key and signature');
  }
  const keyType = dec.decode(keyTypeBytes);
  if (keyType !== 'secp256k1' && keyType !== 'p256') throw new NetError('NET_AUTH_FAILED', `the peer proved a ${JSON.stringify(keyType)} key; only secp256k1 and p256 keys take part`);
  let address: Address;
  try {
    address = keyAddress(publicKey);
  } catch (err) {
    throw new NetError('NET_AUTH_FAILED', 'the peer sent a public key that is not 65 bytes uncompressed', {}, { cause: err });
  }
  const member = committee.find((m) => m.address === address);
  const key: ValidatorKey = member ?? { address, keyType: keyType as KeyType, publicKey };
  const digest = authDigest(session.chainId, session.genesisHash, session.remotePeerId, session.localPeerId, session.localNonce, session.remoteNonce);
  let ok: boolean;
  try {
    ok = memberSigned(key, digest, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new NetError('NET_AUTH_FAILED', `the peer's proof for ${address} does not verify for this chain, these peer ids and these nonces; it is replayed, for another chain or another peer`, { address });
  return address;
}
