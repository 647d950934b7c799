// Commit certificates: Q distinct committee signatures over the commit digest of (chain id, height,
// round, block hash). A node inserts a block only with a certificate it has verified itself.
import { bytesToBigint, bytesToHex, hexToBytes, recoverAddress, verifySignature } from './crypto/index.ts';
import type { KeyType } from './crypto/index.ts';
import { ChainError } from './errors.ts';
import { rlpBytes, rlpDecode, rlpEncode, rlpList, rlpUint } from './rlp.ts';
import { consensusDigest } from './signing.ts';
import type { Address, Hash } from './types.ts';

export interface CommitSignature {
  readonly signer: Address;
  /** 65 bytes: r || s || recid. */
  readonly signature: Uint8Array;
}

export interface CommitCertificate {
  readonly height: bigint;
  readonly round: number;
  readonly blockHash: Hash;
  readonly signatures: readonly CommitSignature[];
}

/** A committee member: its identity and the public key its consensus signatures verify against. */
export interface ValidatorKey {
  readonly address: Address;
  readonly keyType: KeyType;
  /** Uncompressed SEC1 public key (65 bytes). */
  readonly publicKey: Uint8Array;
}

/** The committee entry of a signer. */
export function validatorKeyOf(signer: { readonly address: Address; readonly keyType: KeyType; readonly publicKey: Uint8Array }): ValidatorKey {
  return { address: signer.address, keyType: signer.keyType, publicKey: signer.publicKey };
}

/**
 * True when `signature` (64 bytes r || s, or 65 with a recovery id 0 or 1, otherwise unused) is `member`'s over
 * `digest`. secp256k1 signs the digest itself; P-256 signs it with SHA-256 (see crypto/p256.ts).
 */
export function memberSigned(member: ValidatorKey, digest: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 && (signature.length !== 65 || signature[64]! > 1)) return false;
  return verifySignature(member.keyType, digest, signature.subarray(0, 64), member.publicKey);
}

/** Quorum of a committee of `n`: ceil((n + f + 1) / 2) with f = floor((n - 1) / 3). */
export function quorum(n: number): number {
  const f = Math.floor((n - 1) / 3);
  return Math.ceil((n + f + 1) / 2);
}

/** Address that made `signature` (65 bytes r||s||recid) over `digest`. Throws CERT_INVALID. */
export function signerOf(digest: Uint8Array, signature: Uint8Array): Address {
  if (signature.length !== 65 || (signature[64] !== 0 && signature[64] !== 1)) {
    throw new ChainError('CERT_INVALID', 'a consensus signature must be 65 bytes r || s || recid (0 or 1)');
  }
  try {
    return recoverAddress(digest, bytesToBigint(signature.subarray(0, 32)), bytesToBigint(signature.subarray(32, 64)), signature[64] as 0 | 1);
  } catch (err) {
    throw new ChainError('CERT_INVALID', 'a consensus signature does not verify', {}, { cause: err });
  }
}

/**
 * Check that `cert` commits `blockHash` at `height` on `chainId` with a quorum of distinct members of
 * `committee`. Throws CERT_INVALID naming what is wrong.
 */
export function verifyCertificate(cert: CommitCertificate, chainId: bigint, height: bigint, blockHash: Hash, committee: readonly ValidatorKey[]): void {
  if (cert.height !== height || cert.blockHash !== blockHash) {
    throw new ChainError('CERT_INVALID', `certificate is for block ${cert.blockHash} at height ${cert.height}, expected ${blockHash} at ${height}`);
  }
  const digest = consensusDigest('commit', chainId, height, cert.round, hexToBytes(blockHash));
  const members = new Map(committee.map((m) => [m.address, m]));
  const seen = new Set<Address>();
  for (const { signer, signature } of cert.signatures) {
    const member = members.get(signer);
    if (member === undefined) throw new ChainError('CERT_INVALID', `certificate signer ${signer} is not a committee member`);
    if (seen.has(signer)) throw new ChainError('CERT_INVALID', `certificate counts ${signer} twice`);
    if (!memberSigned(member, digest, signature)) throw new ChainError('CERT_INVALID', `certificate signature of ${signer} does not verify`);
    seen.add(signer);
  }
  const q = quorum(committee.length);
  if (seen.size < q) throw new ChainError('CERT_INVALID', `certificate has ${seen.size} signatures, the quorum is ${q}`, { have: seen.size, quorum: q });
}

export function encodeCertificate(cert: CommitCertificate): Uint8Array {
  return rlpEncode([cert.height, cert.round, hexToBytes(cert.blockHash), cert.signatures.map((s) => [hexToBytes(s.signer), s.signature])]);
}

/** Decode a certificate; throws CERT_INVALID on malformed bytes. */
export function decodeCertificate(bytes: Uint8Array): CommitCertificate {
  const bad = (why: string) => new ChainError('CERT_INVALID', `malformed certificate: ${why}`);
  let f;
  try {
    f = rlpList(rlpDecode(bytes));
  } catch (err) {
    throw new ChainError('CERT_INVALID', 'certificate is not valid RLP', {}, { cause: err });
  }
  if (f === null || f.length !== 4) throw bad('must be a list of 4 fields');
  const height = rlpUint(f[0]);
  const round = rlpUint(f[1]);
  const hash = rlpBytes(f[2]);
  const sigs = rlpList(f[3]);
  if (height === null || round === null || round > 0xffffffffn || hash === null || hash.length !== 32 || sigs === null) throw bad('bad height, round, hash or signature list');
  return {
    height,
    round: Number(round),
    blockHash: bytesToHex(hash),
    signatures: sigs.map((entry) => {
      const pair = rlpList(entry);
      const signer = rlpBytes(pair?.[0]);
      const signature = rlpBytes(pair?.[1]);
      if (pair === null || pair.length !== 2 || signer === null || signer.length !== 20 || signature === null) throw bad('signature entry must be [signer, signature]');
      return { signer: bytesToHex(signer), signature };
    }),
  };
}
