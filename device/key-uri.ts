// Keys named by URI in configuration and on the command line: `keystore:<path>` for a Web3 Secret Storage
// file, `pkcs11:token=<label>;object=<label>?module-path=<so>&pin-source=file:<path>` (RFC 7512) for a key
// in an HSM, TPM or secure element. Secrets come from files or environment variables, never from the URI
// or argv: the keystore passphrase from `passphraseFile` or DATAGATE_KEYSTORE_PASSPHRASE, the PIN from the
// URI's pin-source, `pinFile` or DATAGATE_PKCS11_PIN.
import { resolve } from 'node:path';
import type { Signer } from '../chain/index.ts';
import { DeviceError } from './errors.ts';
import { KeystoreSigner } from './keystore.ts';
import { readPassphrase } from './passphrase.ts';
import { parsePkcs11Uri } from './pkcs11-uri.ts';
import type { Pkcs11Uri } from './pkcs11-uri.ts';
import { Pkcs11Signer } from './pkcs11.ts';

export const PASSPHRASE_ENV = 'DATAGATE_KEYSTORE_PASSPHRASE';
export const PIN_ENV = 'DATAGATE_PKCS11_PIN';

export type KeyUri = { readonly kind: 'keystore'; readonly path: string } | ({ readonly kind: 'pkcs11' } & Pkcs11Uri);

/** Where the secrets and the PKCS#11 module come from when the URI does not say. */
export interface KeySecrets {
  readonly passphraseFile?: string;
  readonly pinFile?: string;
  /** PKCS#11 module used when the URI has no module-path. */
  readonly modulePath?: string;
  /** Where environment variables are read; default process.env. */
  readonly environment?: Readonly<Record<string, string | undefined>>;
}

/** Parse a key URI; throws DeviceError KEY_URI_INVALID naming what is wrong. */
export function parseKeyUri(uri: string): KeyUri {
  if (typeof uri !== 'string' || uri === '') throw new DeviceError('KEY_URI_INVALID', 'a key URI is required, e.g. keystore:/var/lib/datagate/keys/validator.json or pkcs11:token=gw;object=validator');
  if (uri.startsWith('keystore:')) {
    const path = uri.slice('keystore:'.length);
    if (path === '') throw new DeviceError('KEY_URI_INVALID', 'keystore URI has no path: use keystore:<path to the keystore JSON file>', { uri });
    return { kind: 'keystore', path: resolve(path) };
  }
  if (uri.startsWith('pkcs11:')) return { kind: 'pkcs11', ...parsePkcs11Uri(uri) };
  throw new DeviceError('KEY_URI_INVALID', `unknown key URI scheme in "${uri.split(':')[0]}:"; use keystore:<path> or pkcs11:token=...;object=...`, { scheme: uri.split(':')[0] });
}

/** The PKCS#11 module and PIN for `key`, from the URI first, then `secrets`. */
export async function pkcs11Access(key: Pkcs11Uri, secrets: KeySecrets): Promise<{ modulePath: string; pin: Uint8Array }> {
  const modulePath = key.modulePath ?? secrets.modulePath;
  if (modulePath === undefined) {
    throw new DeviceError('KEY_URI_INVALID', 'no PKCS#11 module: add ?module-path=/path/to/module.so to the URI or pass --pkcs11-module', {});
  }
  const environment = secrets.environment ?? process.env;
  const file = key.pinSource ?? secrets.pinFile;
  const pin = file !== undefined ? await readPassphrase({ file }) : await readPassphrase({ env: PIN_ENV, environment });
  return { modulePath, pin };
}

/** Open the signer a key URI names. */
export async function openKey(uri: string, secrets: KeySecrets = {}): Promise<Signer> {
  const key = parseKeyUri(uri);
  if (key.kind === 'keystore') {
    const environment = secrets.environment ?? process.env;
    const passphrase = secrets.passphraseFile !== undefined ? await readPassphrase({ file: secrets.passphraseFile }) : await readPassphrase({ env: PASSPHRASE_ENV, environment });
    try {
      return await KeystoreSigner.open(key.path, passphrase);
    } finally {
      passphrase.fill(0);
    }
  }
  if (key.object === undefined) throw new DeviceError('KEY_URI_INVALID', 'the PKCS#11 URI names no key: add ;object=<label>', {});
  const { modulePath, pin } = await pkcs11Access(key, secrets);
  try {
    return await Pkcs11Signer.open({ modulePath, tokenLabel: key.token, objectLabel: key.object, pin });
  } finally {
    pin.fill(0);
  }
}
