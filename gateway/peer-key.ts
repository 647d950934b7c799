// The node's libp2p identity: an Ed25519 key kept in `<data dir>/peer.key` (the libp2p protobuf encoding,
// mode 0600), made on first use. It names the node on the network (its peer id, in the /p2p/ part of its
// multiaddrs) and is apart from the committee keys, which sign blocks and votes: losing it changes the
// node's address book entry, not its vote. See docs/architecture.md "Provisioning a committee".
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey, PeerId } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { DatagateError } from '../chain/index.ts';
import { writeFileAtomic } from '../device/index.ts';
import { prepareDataDir } from './config/config.ts';

export const PEER_KEY_FILE = 'peer.key';

export type PeerKeyErrorCode = 'PEER_KEY_INVALID' | 'PEER_KEY_EXPOSED';

/** A peer key file that is not an Ed25519 libp2p key (PEER_KEY_INVALID) or is readable by others (PEER_KEY_EXPOSED). */
export class PeerKeyError extends DatagateError<PeerKeyErrorCode> {}

export interface PeerKey {
  readonly privateKey: PrivateKey;
  readonly peerId: PeerId;
  /** The file it is kept in. */
  readonly file: string;
  /** True when this call made it. */
  readonly created: boolean;
}

async function readPeerKey(file: string): Promise<PeerKey | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new PeerKeyError('PEER_KEY_EXPOSED', `${file} is readable by others (mode ${mode.toString(8)}); it is this node's network identity: chmod 600 ${file}`, { file, mode });
  }
  let privateKey: PrivateKey;
  try {
    privateKey = privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new PeerKeyError('PEER_KEY_INVALID', `${file} is not a libp2p private key (${(err as Error).message}); restore it from a backup, or delete it to give this node a new peer id (then re-run datagate init and re-distribute its record)`, { file }, { cause: err });
  }
  if (privateKey.type !== 'Ed25519') {
    throw new PeerKeyError('PEER_KEY_INVALID', `${file} holds a ${privateKey.type} key; datagate peer keys are Ed25519: restore the right file or delete it for a new peer id`, { file, type: privateKey.type });
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), file, created: false };
}

/**
 * The peer key of the data directory `dataDir` (created, with the directory, when missing). Two concurrent
 * first calls agree: the file is linked into place exclusively, and the loser reads the winner's key.
 * Throws PEER_KEY_INVALID, PEER_KEY_EXPOSED, DATA_DIR_UNUSABLE.
 */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PeerKey> {
  const dir = await prepareDataDir(dataDir);
  const file = join(dir, PEER_KEY_FILE);
  const existing = await readPeerKey(file);
  if (existing !== null) return existing;
  const privateKey = await generateKeyPair('Ed25519');
  try {
    await writeFileAtomic(file, privateKeyToProtobuf(privateKey), { mode: 0o600, exclusive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readPeerKey(file);
    if (winner !== null) return winner;
    throw err;
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), file, created: true };
}
