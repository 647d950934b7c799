// EC key pairs on a PKCS#11 token, for the PKCS#11 signer: finding one by label (the private key, which
// signs, and its public half, where the public point is read), checked to be usable for plain ECDSA on
// secp256k1 or P-256; listing them; generating one. Also the PIN and one-shot session helpers shared by
// open, generate and list.
import { randomBytes } from 'node:crypto';
import type { Address, KeyType, Logger } from '../chain/index.ts';
import { bytesToHex, keyAddress, nopLogger } from '../chain/index.ts';
import { DeviceError } from './errors.ts';
import { curveOfEcParams, decodeEcPoint, ecParamsOf, equalBytes } from './pkcs11-ec.ts';
import { type Handle, Pkcs11Module, tokenError, ulongOf } from './pkcs11-module.ts';

/** Where a token is and how to log in to it. */
export interface Pkcs11TokenOptions {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly modulePath: string;
  /** The token's label (CK_TOKEN_INFO.label, without its space padding). */
  readonly tokenLabel: string;
  /** User PIN: UTF-8 bytes or a string. Bytes are copied; wipe your own copy after the call. */
  readonly pin: Uint8Array | string;
}

/** An EC key pair found on a token. */
export interface Pkcs11KeyInfo {
  /** CKA_LABEL of the private key. */
  readonly label: string;
  /** CKA_ID of the private key (empty when it has none). */
  readonly id: Uint8Array;
  readonly keyType: KeyType | 'unsupported';
  /** CKA_EC_PARAMS as 0x hex (the curve's DER OID for named curves). */
  readonly ecParams: string;
  /** 65-byte uncompressed public key, null when no public half was found or its point is not usable. */
  readonly publicKey: Uint8Array | null;
  readonly address: Address | null;
}

/** A copy of `pin` as UTF-8 bytes. Throws TypeError naming `pin` when it is empty, not text or bytes, or not UTF-8. */
export function pinBytes(pin: Uint8Array | string): Uint8Array {
  const bytes = typeof pin === 'string' ? new TextEncoder().encode(pin) : pin instanceof Uint8Array ? Uint8Array.from(pin) : null;
  if (bytes === null || bytes.length === 0) throw new TypeError('PKCS#11: pin must be a non-empty string or Uint8Array');
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    bytes.fill(0);
    throw new TypeError('PKCS#11: pin must be UTF-8 (PKCS#11 PINs are UTF-8 text)');
  }
  return bytes;
}

/** Run `fn` on a fresh logged-in session (read-write when `rw`), released afterwards whatever happens. */
export async function withSession<T>(opts: Pkcs11TokenOptions, rw: boolean, fn: (module: Pkcs11Module, session: Handle) => Promise<T>): Promise<T> {
  if (typeof opts?.tokenLabel !== 'string' || opts.tokenLabel === '') throw new TypeError('PKCS#11: tokenLabel must be a non-empty string');
  const pin = pinBytes(opts.pin);
  try {
    const module = Pkcs11Module.get(opts.modulePath);
    const slot = module.findSlot(opts.tokenLabel);
    const session = module.openLoggedIn(slot, pin, rw);
    try {
      return await fn(module, session);
    } finally {
      module.release(slot, session);
    }
  } finally {
    pin.fill(0);
  }
}

const utf8 = (b: Buffer | null): string => (b === null ? '' : b.toString('utf8'));

/** The public half of private key `priv` labelled `label`: same label, and same CKA_ID if several share it. */
function publicHalf(module: Pkcs11Module, session: Handle, label: string, id: Buffer | null): Handle[] {
  const { ck } = module;
  const pubs = module.findObjects(session, [{ type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY }, { type: ck.CKA_LABEL, value: Buffer.from(label, 'utf8') }]);
  if (pubs.length <= 1 || id === null) return pubs;
  return pubs.filter((p) => {
    const pid = module.attribute(session, p, ck.CKA_ID);
    return pid !== null && equalBytes(pid, id);
  });
}

/**
 * The signing key pair labelled `label`: private key handle, curve and public key. Throws DeviceError
 * PKCS11_OBJECT_NOT_FOUND (no private key, fields.labels lists the EC keys present; or no public half),
 * PKCS11_AMBIGUOUS (several), PKCS11_UNSUPPORTED_KEY (not EC, not secp256k1/P-256, not allowed to sign,
 * needs a login per signature, or halves on different curves). Warns when the private key is extractable.
 */
export function findKeyPair(module: Pkcs11Module, session: Handle, label: string, logger: Logger): { privateKey: Handle; keyType: KeyType; publicKey: Uint8Array } {
  const { ck } = module;
  const fields = { object: label };
  const privs = module.findObjects(session, [{ type: ck.CKA_CLASS, value: ck.CKO_PRIVATE_KEY }, { type: ck.CKA_LABEL, value: Buffer.from(label, 'utf8') }]);
  if (privs.length === 0) {
    const labels = listKeyPairs(module, session).map((k) => k.label);
    throw new DeviceError('PKCS11_OBJECT_NOT_FOUND', `no private key labelled ${JSON.stringify(label)} on the token; EC keys present: ${labels.length === 0 ? '(none)' : labels.map((l) => JSON.stringify(l)).join(', ')}`, {
      ...fields, what: 'private key', labels,
    });
  }
  if (privs.length > 1) throw new DeviceError('PKCS11_AMBIGUOUS', `${privs.length} private keys are labelled ${JSON.stringify(label)}; relabel or delete the extra ones`, { ...fields, what: 'private key' });
  const priv = privs[0] as Handle;
  const unsupported = (why: string, extra: Record<string, unknown> = {}): DeviceError =>
    new DeviceError('PKCS11_UNSUPPORTED_KEY', `key ${JSON.stringify(label)} cannot be used: ${why}`, { ...fields, ...extra });

  if (ulongOf(module.attribute(session, priv, ck.CKA_KEY_TYPE)) !== ck.CKK_EC) throw unsupported('it is not an EC key (secp256k1 or P-256 needed)');
  if (ulongOf(module.attribute(session, priv, ck.CKA_SIGN)) === 0) throw unsupported('CKA_SIGN is false on the private key');
  if (ulongOf(module.attribute(session, priv, ck.CKA_ALWAYS_AUTHENTICATE)) === 1) {
    throw unsupported('CKA_ALWAYS_AUTHENTICATE is set, so every signature would need the PIN again');
  }
  const id = module.attribute(session, priv, ck.CKA_ID);
  const pubs = publicHalf(module, session, label, id);
  if (pubs.length === 0) throw new DeviceError('PKCS11_OBJECT_NOT_FOUND', `no public key labelled ${JSON.stringify(label)} beside the private key; import or regenerate the pair`, { ...fields, what: 'public key' });
  if (pubs.length > 1) throw new DeviceError('PKCS11_AMBIGUOUS', `${pubs.length} public keys are labelled ${JSON.stringify(label)} with the private key's CKA_ID`, { ...fields, what: 'public key' });
  const pub = pubs[0] as Handle;

  const privParams = module.attribute(session, priv, ck.CKA_EC_PARAMS);
  const pubParams = module.attribute(session, pub, ck.CKA_EC_PARAMS);
  const params = privParams ?? pubParams;
  if (params === null) throw unsupported('the token gives no CKA_EC_PARAMS for it');
  if (privParams !== null && pubParams !== null && !equalBytes(privParams, pubParams)) throw unsupported('its private and public halves are on different curves');
  const keyType = curveOfEcParams(params);
  if (keyType === null) throw unsupported(`curve ${bytesToHex(params)} is neither secp256k1 (06052b8104000a) nor P-256 (06082a8648ce3d030107)`, { ecParams: bytesToHex(params) });
  const point = module.attribute(session, pub, ck.CKA_EC_POINT);
  const publicKey = point === null ? null : decodeEcPoint(point);
  if (publicKey === null) throw unsupported('its CKA_EC_POINT is not an uncompressed point (04 || x || y), bare or DER-wrapped');

  const extractable = ulongOf(module.attribute(session, priv, ck.CKA_EXTRACTABLE)) === 1;
  const sensitive = ulongOf(module.attribute(session, priv, ck.CKA_SENSITIVE)) !== 0;
  if (extractable || !sensitive) logger.warn('pkcs11 private key can leave the token', { ...fields, extractable, sensitive });
  return { privateKey: priv, keyType, publicKey };
}

/** Every EC private key on the token with its public half, in token order. */
export function listKeyPairs(module: Pkcs11Module, session: Handle): Pkcs11KeyInfo[] {
  const { ck } = module;
  const out: Pkcs11KeyInfo[] = [];
  for (const priv of module.findObjects(session, [{ type: ck.CKA_CLASS, value: ck.CKO_PRIVATE_KEY }, { type: ck.CKA_KEY_TYPE, value: ck.CKK_EC }])) {
    const label = utf8(module.attribute(session, priv, ck.CKA_LABEL));
    const id = module.attribute(session, priv, ck.CKA_ID);
    const pubs = publicHalf(module, session, label, id);
    const pub = pubs.length === 1 ? (pubs[0] as Handle) : null;
    const params = module.attribute(session, priv, ck.CKA_EC_PARAMS) ?? (pub === null ? null : module.attribute(session, pub, ck.CKA_EC_PARAMS));
    const keyType = params === null ? null : curveOfEcParams(params);
    const point = pub === null ? null : module.attribute(session, pub, ck.CKA_EC_POINT);
    const publicKey = point === null ? null : decodeEcPoint(point);
    out.push({
      label,
      id: id === null ? new Uint8Array(0) : Uint8Array.from(id),
      keyType: keyType ?? 'unsupported',
      ecParams: params === null ? '' : bytesToHex(params),
      publicKey,
      address: publicKey === null ? null : keyAddress(publicKey),
    });
  }
  return out;
}

/**
 * Generate an EC key pair labelled `label` on the token of `session` (read-write, logged in): token objects
 * with one random 16-byte CKA_ID; the private half private, sensitive, never extractable, sign-only.
 * Throws PKCS11_OBJECT_EXISTS when any object already carries the label (keys are never replaced).
 */
export async function generateKeyPair(module: Pkcs11Module, session: Handle, tokenLabel: string, label: string, keyType: KeyType): Promise<Pkcs11KeyInfo> {
  const { ck, lib } = module;
  const labelBytes = Buffer.from(label, 'utf8');
  if (module.findObjects(session, [{ type: ck.CKA_LABEL, value: labelBytes }]).length > 0) {
    throw new DeviceError('PKCS11_OBJECT_EXISTS', `token ${JSON.stringify(tokenLabel)} already holds an object labelled ${JSON.stringify(label)}; choose another label (keys are never replaced)`, {
      tokenLabel, objectLabel: label,
    });
  }
  const id = randomBytes(16);
  const common = [{ type: ck.CKA_TOKEN, value: true }, { type: ck.CKA_KEY_TYPE, value: ck.CKK_EC }, { type: ck.CKA_LABEL, value: labelBytes }, { type: ck.CKA_ID, value: id }];
  try {
    await lib.C_GenerateKeyPairAsync(session, { mechanism: ck.CKM_EC_KEY_PAIR_GEN }, [
      ...common, { type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY }, { type: ck.CKA_PRIVATE, value: false }, { type: ck.CKA_VERIFY, value: true },
      { type: ck.CKA_EC_PARAMS, value: Buffer.from(ecParamsOf(keyType)) },
    ], [
      ...common, { type: ck.CKA_CLASS, value: ck.CKO_PRIVATE_KEY }, { type: ck.CKA_PRIVATE, value: true }, { type: ck.CKA_SENSITIVE, value: true },
      { type: ck.CKA_EXTRACTABLE, value: false }, { type: ck.CKA_SIGN, value: true }, { type: ck.CKA_DECRYPT, value: false }, { type: ck.CKA_DERIVE, value: false },
    ]);
  } catch (err) {
    throw tokenError(err, 'C_GenerateKeyPair', { tokenLabel, objectLabel: label, keyType });
  }
  const pair = findKeyPair(module, session, label, nopLogger);
  return { label, id: Uint8Array.from(id), keyType: pair.keyType, ecParams: bytesToHex(ecParamsOf(keyType)), publicKey: pair.publicKey, address: keyAddress(pair.publicKey) };
}
