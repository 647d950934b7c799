// `datagate init` and `datagate genesis`: provisioning a committee of separate gateways. Each operator runs
// init on its own box (its key stays there) and sends the signed enrolment record it prints; whoever writes
// the chain's genesis collects the records and runs genesis. See docs/architecture.md "Provisioning a committee".
import { resolve } from 'node:path';
import { openKey } from '../../device/index.ts';
import type { Signer } from '../../chain/index.ts';
import { writeFileAtomic } from '../../device/index.ts';
import { ENROLMENT_ROLES, checkRoleKey, createEnrolment } from '../enrolment.ts';
import { withPeerId, peerAddressProblem } from '../multiaddrs.ts';
import { loadOrCreatePeerKey } from '../peer-key.ts';
import { DEFAULT_LISTEN, DEFAULT_NODE_DATA_DIR } from '../config/node-config.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand } from './args.ts';
import { closeSigner, secretOptions } from './key-commands.ts';
import { genesisCommand } from './genesis-command.ts';

type SecretFlags = { 'passphrase-file'?: string | undefined; 'pin-file'?: string | undefined; 'pkcs11-module'?: string | undefined };

function openWith(uri: string, options: SecretFlags): Promise<Signer> {
  return openKey(uri, {
    ...(options['passphrase-file'] !== undefined ? { passphraseFile: options['passphrase-file'] } : {}),
    ...(options['pin-file'] !== undefined ? { pinFile: options['pin-file'] } : {}),
    ...(options['pkcs11-module'] !== undefined ? { modulePath: options['pkcs11-module'] } : {}),
  });
}

/** The --listen values as record addresses: canonical, ending in /p2p/<peerId>, dialable. */
function listenAddresses(given: readonly string[], peerId: string): string[] {
  return (given.length === 0 ? [DEFAULT_LISTEN] : given).map((addr) => {
    let full: string;
    try {
      full = withPeerId(addr, peerId);
    } catch (err) {
      throw new UsageError(`--listen ${addr}: ${(err as Error).message}`, { flag: '--listen' });
    }
    const problem = peerAddressProblem(full, peerId);
    if (problem !== undefined) throw new UsageError(`--listen ${addr}: ${problem}`, { flag: '--listen' });
    return full;
  });
}

const init = defineCommand({
  name: 'init',
  summary: "Make this node's peer key and print its signed enrolment record for the chain's genesis",
  usage: '--role validator|proposer|follower --key URI [options]',
  options: {
    role: { type: 'string', choices: ENROLMENT_ROLES, description: 'What the key does: validator (votes), proposer (seals blocks; secp256k1 only) or follower' },
    key: { type: 'string', valueName: 'uri', description: 'The committee key, which signs the record: keystore:<path> or pkcs11:token=...;object=...' },
    'device-key': { type: 'string', valueName: 'uri', description: "The device key that signs this gateway's segments; its address goes into the record" },
    'data-dir': { type: 'string', valueName: 'dir', default: DEFAULT_NODE_DATA_DIR, description: 'Data directory; the peer key is made in it (peer.key, 0600) unless there' },
    listen: { type: 'string', valueName: 'multiaddr', multiple: true, description: `Address peers dial to reach this node, e.g. /ip4/192.0.2.10/tcp/30340 (default ${DEFAULT_LISTEN}); /p2p/<peer id> is appended` },
    out: { type: 'string', valueName: 'file', description: 'Write the record to this file (atomically) instead of stdout' },
    ...secretOptions,
  },
  notes: [
    'The record holds the role, the key (address, type, public key), the peer id, the listen addresses and the',
    'device address, signed by the key itself; it holds no secret. Run init once per role: a node that both',
    'validates and proposes runs it with each key and the same --data-dir (the same peer id).',
    'Passphrase and PIN come from the files given or the environment (see "datagate key --help"), never from argv.',
  ].join('\n'),
  async run({ options, stdout }) {
    if (options.role === undefined) throw new UsageError('--role is required (validator, proposer or follower); run "datagate init --help"');
    if (options.key === undefined) throw new UsageError('--key URI is required: the key this node signs with as a ' + options.role);
    // The keys open first: a wrong URI or passphrase must not leave a new data directory behind.
    let deviceAddress: string | undefined;
    if (options['device-key'] !== undefined) {
      const device = await openWith(options['device-key'], options);
      deviceAddress = device.address;
      await closeSigner(device);
    }
    const signer = await openWith(options.key, options);
    let record;
    try {
      checkRoleKey(options.role, signer.keyType, `${options.key} (${signer.address})`);
      const peerId = (await loadOrCreatePeerKey(options['data-dir'])).peerId.toString();
      const listen = listenAddresses(options.listen, peerId);
      record = await createEnrolment({ role: options.role, signer, peerId, listen, ...(deviceAddress !== undefined ? { deviceAddress } : {}) });
    } finally {
      await closeSigner(signer);
    }
    const text = JSON.stringify(record, null, 2) + '\n';
    if (options.out === undefined) {
      stdout.write(text);
    } else {
      const out = resolve(options.out);
      await writeFileAtomic(out, text, { mode: 0o644 });
      stdout.write(`${options.role} ${record.address} (${record.keyType}), peer ${record.peerId}: record written to ${out}\n`);
    }
    return 0;
  },
});

export const initCommand: Command = init;
export { genesisCommand };
