// `datagate key ...`: create, list and inspect signing keys (keystore files, PKCS#11 tokens: HSM, TPM, secure
// element) and sign an EIP-191 message to prove control of one. Secrets come from files or environment
// variables, never from argv; outputs are JSON so scripts can read them.
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { getBytes, hashMessage } from 'ethers';
import type { Signer } from '../../chain/index.ts';
import { bytesToHex } from '../../chain/index.ts';
import { KeystoreSigner, PASSPHRASE_ENV, PIN_ENV, Pkcs11Signer, decryptKeystore, openKey, readPassphrase } from '../../device/index.ts';
import type { Command, CliIo } from './args.ts';
import { UsageError, defineCommand, defineCommandGroup } from './args.ts';

const secretOptions = {
  'passphrase-file': { type: 'string', valueName: 'file', description: `Keystore passphrase file (mode 0600); default: the ${PASSPHRASE_ENV} environment variable` },
  'pin-file': { type: 'string', valueName: 'file', description: `PKCS#11 user PIN file (mode 0600); default: the URI's pin-source, then ${PIN_ENV}` },
  'pkcs11-module': { type: 'string', valueName: 'so', description: 'PKCS#11 module, when the key URI has no module-path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)' },
} as const;

/** RFC 7512 percent-encoding of an attribute value. */
function pct(value: string): string {
  return Array.from(new TextEncoder().encode(value), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

export function pkcs11KeyUri(token: string, object: string, modulePath: string): string {
  return `pkcs11:token=${pct(token)};object=${pct(object)}?module-path=${resolve(modulePath).split('/').map(pct).join('/')}`;
}

function describe(uri: string, key: { keyType: string; publicKey: Uint8Array; address: string }): Record<string, string> {
  return { uri, type: key.keyType, publicKey: bytesToHex(key.publicKey), ...(key.keyType === 'secp256k1' ? { address: key.address } : {}) };
}

function print(io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

async function pin(options: { 'pin-file'?: string | undefined }): Promise<Uint8Array> {
  return options['pin-file'] !== undefined ? readPassphrase({ file: options['pin-file'] }) : readPassphrase({ env: PIN_ENV });
}

const keyNew = defineCommand({
  name: 'key new',
  summary: 'Create a key in a keystore file or on a PKCS#11 token and print its URI',
  usage: '--type secp256k1|p256 (--keystore FILE | --pkcs11-module SO --token LABEL --label NAME) [options]',
  options: {
    type: { type: 'string', choices: ['secp256k1', 'p256'], description: 'Key type: secp256k1 (accounts, validators) or p256 (TPMs, secure elements)' },
    keystore: { type: 'string', valueName: 'file', description: 'Write an encrypted Web3 Secret Storage v3 file here (never overwritten)' },
    token: { type: 'string', valueName: 'label', description: 'PKCS#11 token label' },
    label: { type: 'string', valueName: 'name', description: 'Label of the new key on the token' },
    ...secretOptions,
  },
  async run({ options, stdout, stderr, signal }) {
    const io = { stdout, stderr, signal };
    if (options.type === undefined) throw new UsageError('--type is required (secp256k1 or p256); run "datagate key new --help"');
    const keyType = options.type;
    if (options.keystore !== undefined) {
      if (options.token !== undefined || options.label !== undefined) throw new UsageError('give either --keystore or --pkcs11-module/--token/--label, not both');
      const passphrase = options['passphrase-file'] !== undefined ? await readPassphrase({ file: options['passphrase-file'] }) : await readPassphrase({ env: PASSPHRASE_ENV });
      try {
        const signer = await KeystoreSigner.create(options.keystore, passphrase, { keyType });
        print(io, describe(`keystore:${resolve(options.keystore)}`, signer));
      } finally {
        passphrase.fill(0);
      }
      return 0;
    }
    const modulePath = options['pkcs11-module'];
    if (modulePath === undefined || options.token === undefined || options.label === undefined) {
      throw new UsageError('give --keystore FILE, or --pkcs11-module SO with --token LABEL and --label NAME; run "datagate key new --help"');
    }
    const userPin = await pin(options);
    try {
      const info = await Pkcs11Signer.generate({ modulePath, tokenLabel: options.token, objectLabel: options.label, pin: userPin, keyType });
      print(io, describe(pkcs11KeyUri(options.token, options.label, modulePath), { keyType, publicKey: info.publicKey!, address: info.address! }));
    } finally {
      userPin.fill(0);
    }
    return 0;
  },
});

const keyList = defineCommand({
  name: 'key list',
  summary: 'List the keys of a PKCS#11 token or the keystore files of a directory',
  usage: '(--pkcs11-module SO --token LABEL | --keystore-dir DIR) [options]',
  options: {
    token: { type: 'string', valueName: 'label', description: 'PKCS#11 token label' },
    'keystore-dir': { type: 'string', valueName: 'dir', description: 'Directory of keystore JSON files (needs the passphrase to read their key types)' },
    ...secretOptions,
  },
  async run({ options, stdout, stderr, signal }) {
    const io = { stdout, stderr, signal };
    if (options['keystore-dir'] !== undefined) {
      const dir = resolve(options['keystore-dir']);
      const passphrase = options['passphrase-file'] !== undefined ? await readPassphrase({ file: options['passphrase-file'] }) : await readPassphrase({ env: PASSPHRASE_ENV });
      const out: Record<string, string>[] = [];
      try {
        for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json')).sort()) {
          const { readFile } = await import('node:fs/promises');
          try {
            const key = await decryptKeystore(await readFile(join(dir, name), 'utf8'), passphrase);
            key.privateKey.fill(0);
            out.push(describe(`keystore:${join(dir, name)}`, key));
          } catch (err) {
            out.push({ uri: `keystore:${join(dir, name)}`, error: (err as Error).message });
          }
        }
      } finally {
        passphrase.fill(0);
      }
      print(io, out);
      return 0;
    }
    const modulePath = options['pkcs11-module'];
    if (modulePath === undefined || options.token === undefined) throw new UsageError('give --pkcs11-module SO and --token LABEL, or --keystore-dir DIR');
    const userPin = await pin(options);
    try {
      const keys = await Pkcs11Signer.list({ modulePath, tokenLabel: options.token, pin: userPin });
      print(
        io,
        keys.map((k) => ({
          uri: pkcs11KeyUri(options.token!, k.label, modulePath),
          type: k.keyType,
          publicKey: k.publicKey === null ? null : bytesToHex(k.publicKey),
          ...(k.keyType === 'secp256k1' && k.address !== null ? { address: k.address } : {}),
        })),
      );
    } finally {
      userPin.fill(0);
    }
    return 0;
  },
});

const keyOptions = {
  key: { type: 'string', valueName: 'uri', description: 'The key: keystore:<path> or pkcs11:token=...;object=...[?module-path=...&pin-source=file:...]' },
  ...secretOptions,
} as const;

async function openFromOptions(options: { key?: string | undefined; 'passphrase-file'?: string | undefined; 'pin-file'?: string | undefined; 'pkcs11-module'?: string | undefined }): Promise<Signer> {
  if (options.key === undefined) throw new UsageError('--key URI is required');
  return openKey(options.key, {
    ...(options['passphrase-file'] !== undefined ? { passphraseFile: options['passphrase-file'] } : {}),
    ...(options['pin-file'] !== undefined ? { pinFile: options['pin-file'] } : {}),
    ...(options['pkcs11-module'] !== undefined ? { modulePath: options['pkcs11-module'] } : {}),
  });
}

async function closeSigner(signer: Signer): Promise<void> {
  const closable = signer as Signer & { close?: () => Promise<void> | void };
  await closable.close?.();
}

const keyShow = defineCommand({
  name: 'key show',
  summary: 'Print the type, public key and address of a key',
  options: keyOptions,
  async run({ options, stdout, stderr, signal }) {
    const signer = await openFromOptions(options);
    try {
      print({ stdout, stderr, signal }, describe(options.key!, signer));
    } finally {
      await closeSigner(signer);
    }
    return 0;
  },
});

const keySignMessage = defineCommand({
  name: 'key sign-message',
  summary: 'Sign a text with EIP-191 (personal_sign): ethers.verifyMessage(text, signature) returns the key address',
  options: { ...keyOptions, message: { type: 'string', valueName: 'text', description: 'The text to sign' } },
  async run({ options, stdout }) {
    if (options.message === undefined) throw new UsageError('--message TEXT is required');
    const signer = await openFromOptions(options);
    try {
      if (signer.keyType !== 'secp256k1') throw new UsageError(`EIP-191 signatures need a secp256k1 key; ${options.key} holds a ${signer.keyType} key`);
      const sig = await signer.sign(getBytes(hashMessage(options.message)), 'message');
      const out = Uint8Array.from(sig.subarray(0, 65));
      out[64] = 27 + sig[64]!;
      stdout.write(bytesToHex(out) + '\n');
    } finally {
      await closeSigner(signer);
    }
    return 0;
  },
});

/** `datagate key <new|list|show|sign-message>`. */
export const keyCommand: Command = defineCommandGroup('key', 'Create, list and show signing keys (keystore files, PKCS#11: HSM, TPM, secure element); sign a message', [keyNew, keyList, keyShow, keySignMessage]);
