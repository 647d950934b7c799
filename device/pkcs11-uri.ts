// PKCS#11 URIs (RFC 7512) as the config names a hardware key: `pkcs11:token=gw;object=validator` plus,
// optionally, `?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/datagate/pin`.
//
// The subset accepted: path attributes token, object, id and type (private or public); query attributes
// module-path, pin-source (file: URIs only) and pin-value. Any other attribute, vendor `x-` ones included,
// is refused rather than ignored: ignoring `serial=` or `slot-id=` would quietly match another token than
// the operator meant. Values are percent-decoded; token and object must be UTF-8, id is raw bytes.
//
// pin-value puts the PIN in the URI itself, and a key URI is the kind of string that gets copied into
// configs, shell history, logs and error reports. It is refused unless the caller passes
// `{allowPinValue: true}` (tests and throwaway tokens); use pin-source=file:/path with a 0600 file instead.
import { DeviceError } from './errors.ts';

/** A parsed pkcs11: URI. Only the attributes present are set. */
export interface Pkcs11Uri {
  /** CKA_LABEL-style token label (CK_TOKEN_INFO.label), at most 32 bytes of UTF-8. */
  readonly token: string;
  /** Label (CKA_LABEL) of the key. */
  readonly object?: string;
  /** CKA_ID of the key, raw bytes. */
  readonly id?: Uint8Array;
  /** Object class the URI names; a signer key is `private` (or unset). */
  readonly type?: 'private' | 'public';
  /** Absolute path of the PKCS#11 module (.so). */
  readonly modulePath?: string;
  /** Absolute path of a file holding the user PIN (from `pin-source=file:/path`). */
  readonly pinSource?: string;
  /** The user PIN itself; only present when parsed with `allowPinValue`. */
  readonly pinValue?: string;
}

export interface ParsePkcs11UriOptions {
  /** Accept `pin-value` (tests only: a PIN in a URI ends up in configs and logs). Default false. */
  readonly allowPinValue?: boolean;
}

const PATH_ATTRS = new Set(['token', 'object', 'id', 'type']);
const QUERY_ATTRS = new Set(['module-path', 'pin-source', 'pin-value']);
/** RFC 7512 pk11-pchar / pk11-qchar without pct-encoded (checked apart): unreserved plus the res-avail sets. */
const PATH_CHARS = /^[A-Za-z0-9\-._~:[\]@!$'()*+,=&%]*$/;
const QUERY_CHARS = /^[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|%]*$/;
const ATTR_NAME = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LABEL_BYTES = 32;

function invalid(uri: string, part: string, why: string): DeviceError {
  return new DeviceError('PKCS11_URI_INVALID', `invalid PKCS#11 URI: ${part}: ${why}`, { part, uri: redactPin(uri) });
}

/** `uri` with any pin-value replaced, safe to log or put in an error. */
export function redactPin(uri: string): string {
  return uri.replace(/([?&]pin-value=)[^&#]*/gi, '$1<redacted>');
}

/** Percent-decode `raw` to bytes; throws naming `part` on a malformed escape or a disallowed character. */
function pctDecode(uri: string, part: string, raw: string, allowed: RegExp): Uint8Array {
  if (!allowed.test(raw)) throw invalid(uri, part, 'contains characters that must be percent-encoded');
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      out.push(c);
      continue;
    }
    const hex = raw.slice(i + 1, i + 3);
    // The escape is not quoted for pin-value: it would put part of the PIN in the message.
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalid(uri, part, `bad percent-escape${part === 'pin-value' ? '' : ` "%${hex}"`}`);
    out.push(parseInt(hex, 16));
    i += 2;
  }
  return Uint8Array.from(out);
}

function utf8(uri: string, part: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(uri, part, 'is not valid UTF-8 after percent-decoding');
  }
}

/** Split `a=b` pairs separated by `sep`; names are lowercased, duplicates refused. */
function attributes(uri: string, component: string, sep: string, where: 'path' | 'query'): Map<string, string> {
  const out = new Map<string, string>();
  if (component === '') return out;
  for (const [index, item] of component.split(sep).entries()) {
    const eq = item.indexOf('=');
    // Not quoted: a query item without "=" may be a bare PIN.
    if (eq <= 0) throw invalid(uri, `${where} attribute #${index + 1}`, 'expected name=value');
    const name = item.slice(0, eq).toLowerCase();
    if (!ATTR_NAME.test(name)) throw invalid(uri, `${where} attribute ${JSON.stringify(item.slice(0, eq))}`, 'bad attribute name');
    if (out.has(name)) throw invalid(uri, name, 'appears more than once');
    out.set(name, item.slice(eq + 1));
  }
  return out;
}

/**
 * Parse a pkcs11: URI naming a key. Returns its attributes decoded (see Pkcs11Uri). Throws DeviceError
 * PKCS11_URI_INVALID with `fields.part` naming the attribute or component at fault (the URI in fields has
 * any pin-value redacted) when: the scheme is not pkcs11:, there is a #fragment, an attribute is unknown,
 * repeated, empty or badly encoded, `token` is missing or over 32 bytes, `type` is not private/public,
 * `module-path` is not absolute, `pin-source` is not a file: URI with an absolute path, both pin-source and
 * pin-value are given, or pin-value is given without `allowPinValue`.
 */
export function parsePkcs11Uri(uri: string, options: ParsePkcs11UriOptions = {}): Pkcs11Uri {
  if (typeof uri !== 'string') throw new TypeError('parsePkcs11Uri: uri must be a string');
  if (!/^pkcs11:/i.test(uri)) throw invalid(uri, 'scheme', 'must start with "pkcs11:"');
  const rest = uri.slice('pkcs11:'.length);
  if (rest.includes('#')) throw invalid(uri, 'fragment', '"#" is not allowed; percent-encode it as %23');
  const q = rest.indexOf('?');
  const path = attributes(uri, q < 0 ? rest : rest.slice(0, q), ';', 'path');
  const query = attributes(uri, q < 0 ? '' : rest.slice(q + 1), '&', 'query');

  for (const name of path.keys()) {
    if (!PATH_ATTRS.has(name)) {
      throw invalid(uri, name, `unsupported path attribute; use only ${[...PATH_ATTRS].join(', ')} (others are refused, not ignored)`);
    }
  }
  for (const name of query.keys()) {
    if (!QUERY_ATTRS.has(name)) throw invalid(uri, name, `unsupported query attribute; use only ${[...QUERY_ATTRS].join(', ')}`);
  }

  const text = (name: string, raw: string, chars: RegExp): string => {
    const value = utf8(uri, name, pctDecode(uri, name, raw, chars));
    if (value === '') throw invalid(uri, name, 'is empty');
    return value;
  };
  const result: { -readonly [K in keyof Pkcs11Uri]: Pkcs11Uri[K] } = { token: '' };

  const token = path.get('token');
  if (token === undefined) throw invalid(uri, 'token', 'is missing; name the token by its label, e.g. pkcs11:token=gw;object=validator');
  result.token = text('token', token, PATH_CHARS);
  if (new TextEncoder().encode(result.token).length > MAX_TOKEN_LABEL_BYTES) {
    throw invalid(uri, 'token', `is longer than the ${MAX_TOKEN_LABEL_BYTES} bytes a PKCS#11 token label can hold`);
  }
  const object = path.get('object');
  if (object !== undefined) result.object = text('object', object, PATH_CHARS);
  const id = path.get('id');
  if (id !== undefined) {
    result.id = pctDecode(uri, 'id', id, PATH_CHARS);
    if (result.id.length === 0) throw invalid(uri, 'id', 'is empty');
  }
  const type = path.get('type');
  if (type !== undefined) {
    if (type !== 'private' && type !== 'public') throw invalid(uri, 'type', `must be private or public for a key, got ${JSON.stringify(type)}`);
    result.type = type;
  }

  const modulePath = query.get('module-path');
  if (modulePath !== undefined) {
    result.modulePath = text('module-path', modulePath, QUERY_CHARS);
    if (!result.modulePath.startsWith('/')) throw invalid(uri, 'module-path', 'must be an absolute path');
  }
  const pinSource = query.get('pin-source');
  const pinValue = query.get('pin-value');
  if (pinSource !== undefined && pinValue !== undefined) throw invalid(uri, 'pin-value', 'give either pin-source or pin-value, not both');
  if (pinSource !== undefined) {
    const source = text('pin-source', pinSource, QUERY_CHARS);
    // file:/path and file:///path (empty authority); a host or a relative path is refused.
    const m = /^file:(?:\/\/)?(\/(?!\/).*)$/i.exec(source);
    if (m === null || m[1] === undefined) {
      throw invalid(uri, 'pin-source', 'must be a file: URI with an absolute path, e.g. pin-source=file:/etc/datagate/token.pin');
    }
    result.pinSource = m[1];
  }
  if (pinValue !== undefined) {
    if (options.allowPinValue !== true) {
      throw invalid(uri, 'pin-value', 'a PIN inside the URI ends up in configs and logs; use pin-source=file:/path (mode 0600) instead');
    }
    result.pinValue = text('pin-value', pinValue, QUERY_CHARS);
  }
  return result;
}
