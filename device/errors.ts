// Typed errors of device/ (key storage and passphrases), with stable codes. Callers and tests match on
// `code`, never on the message; `fields` name the file or field at fault and never hold secrets.
import { DatagateError } from '../chain/index.ts';

/** Stable error codes of device/. Never renumber or reuse a code for another meaning. */
export type DeviceErrorCode =
  /** The keystore MAC does not match: wrong passphrase, or the ciphertext or MAC was altered. */
  | 'KEYSTORE_BAD_PASSPHRASE'
  /** The keystore is not a valid Web3 Secret Storage v3 file, or asks for KDF costs beyond our limits. */
  | 'KEYSTORE_CORRUPT'
  /** KeystoreSigner.create was pointed at a path that already exists; it never overwrites a key. */
  | 'KEYSTORE_EXISTS'
  /** No key file at the configured path. */
  | 'KEY_NOT_FOUND'
  /** A key URI is not keystore:<path> or a usable pkcs11: URI. */
  | 'KEY_URI_INVALID'
  /** No passphrase: no source given, the variable is unset, or the file is missing or empty. */
  | 'PASSPHRASE_MISSING'
  /** The passphrase file can be read or written by group or others. */
  | 'PASSPHRASE_FILE_INSECURE'
  // PKCS#11 (device/pkcs11*.ts). Errors from a token carry `rv` (the CKR_* name) and `rvCode` in fields.
  /** A pkcs11: URI is malformed, names an unsupported attribute, or carries a pin-value not allowed. */
  | 'PKCS11_URI_INVALID'
  /** The pkcs11js native addon is not built or does not load (run `npm ci`). */
  | 'PKCS11_BINDING_UNAVAILABLE'
  /** The PKCS#11 module (.so) cannot be loaded or initialised. */
  | 'PKCS11_MODULE_LOAD_FAILED'
  /** No token with the configured label; `fields.labels` lists the labels present. */
  | 'PKCS11_TOKEN_NOT_FOUND'
  /** The token refused the user PIN (CKR_PIN_INCORRECT). */
  | 'PKCS11_PIN_INCORRECT'
  /** The user PIN is locked after too many wrong tries (CKR_PIN_LOCKED); the SO must reset it. */
  | 'PKCS11_PIN_LOCKED'
  /** No private or public key with the configured label on the token. */
  | 'PKCS11_OBJECT_NOT_FOUND'
  /** Key generation refused: an object with that label already exists (keys are never replaced). */
  | 'PKCS11_OBJECT_EXISTS'
  /** More than one token or key matches the label, so which one to use is not clear. */
  | 'PKCS11_AMBIGUOUS'
  /** The key is not an EC key on secp256k1 or P-256, or is not usable for plain signing. */
  | 'PKCS11_UNSUPPORTED_KEY'
  /** After reopening a session the key under the label is another key than the signer was opened with. */
  | 'PKCS11_KEY_CHANGED'
  /** The token returned a signature that does not verify against its public key (token fault). */
  | 'PKCS11_BAD_SIGNATURE'
  /** Any other failing PKCS#11 call; `fields.rv` names the CKR_* return value. */
  | 'PKCS11_TOKEN_ERROR'
  /** The signer was closed, or its module finalized. */
  | 'PKCS11_CLOSED';

/** Error raised by device/ (keystores, passphrase sources). */
export class DeviceError extends DatagateError<DeviceErrorCode> {
  constructor(code: DeviceErrorCode, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, fields, options);
    this.name = 'DeviceError';
  }
}
