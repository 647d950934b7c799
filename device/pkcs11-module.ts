// The PKCS#11 module layer under the PKCS#11 signer. Loads a module (.so) through the pkcs11js binding and
// C_Initializes it once per process (shared by every signer using it, with CKF_OS_LOCKING_OK because
// signatures run on libuv worker threads), finds a token's slot by label, opens and logs in sessions, finds
// objects, and turns CKR_* return values into DeviceErrors that name them.
//
// Login state in PKCS#11 belongs to the application and the token, not to a session: logging in on one
// session logs in all of them, and C_Logout on any logs out all. So the module counts the sessions of this
// process that need the login per slot and logs out only when the last one is released. A second login
// while one is active gets CKR_USER_ALREADY_LOGGED_IN without the token checking its PIN; so the module
// keeps a SHA-256 of the PIN that logged in (in memory, beside the PIN the signer keeps anyway) and
// refuses a different one as PKCS11_PIN_INCORRECT, so a wrong PIN never passes just because another
// signer is logged in. (If something outside this module logged in, the PIN cannot be checked.)
//
// pkcs11js is loaded on first use, not at import, so importing device/ works where the addon is not built.
// Calls other than C_Sign and C_GenerateKeyPair are synchronous: on a USB token C_Login or C_OpenSession may
// hold the event loop for tens of milliseconds; they happen at start-up and on session recovery only.
import { createHash, timingSafeEqual } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import type * as Pkcs11js from 'pkcs11js';
import { DeviceError, type DeviceErrorCode } from './errors.ts';

export type Pkcs11Binding = typeof Pkcs11js;
export type Handle = Buffer;

let binding: Pkcs11Binding | null = null;

/** The pkcs11js binding, loaded once. Throws DeviceError PKCS11_BINDING_UNAVAILABLE. */
export function pkcs11Binding(): Pkcs11Binding {
  if (binding !== null) return binding;
  try {
    binding = createRequire(import.meta.url)('pkcs11js') as Pkcs11Binding;
  } catch (err) {
    throw new DeviceError(
      'PKCS11_BINDING_UNAVAILABLE',
      'the pkcs11js native addon does not load; run `npm ci` (it builds pkcs11js with node-gyp, which needs a C++ ' +
        'compiler, make and the Node headers, e.g. apt-get install build-essential python3 nodejs-dev)',
      {},
      { cause: err },
    );
  }
  return binding;
}

/** CKR_ name of a pkcs11js error (e.g. 'CKR_PIN_INCORRECT'), or undefined for anything else. */
export function ckrOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== 'Pkcs11Error') return undefined;
  return /^CKR_[A-Z0-9_]+$/.test(err.message) ? err.message : undefined;
}

const CKR_CODES: Partial<Record<string, DeviceErrorCode>> = {
  CKR_PIN_INCORRECT: 'PKCS11_PIN_INCORRECT',
  CKR_PIN_LEN_RANGE: 'PKCS11_PIN_INCORRECT',
  CKR_PIN_LOCKED: 'PKCS11_PIN_LOCKED',
};

const CKR_ADVICE: Partial<Record<string, string>> = {
  CKR_PIN_INCORRECT: 'check the PIN source; each wrong try counts towards locking the PIN',
  CKR_PIN_LEN_RANGE: 'check the PIN source; the PIN has a length the token never accepts',
  CKR_PIN_LOCKED: 'the user PIN is locked; the token SO must unlock or reset it (softhsm2-util / pkcs11-tool --init-pin)',
  CKR_DEVICE_REMOVED: 'the token was removed or stopped responding; reconnect it',
  CKR_TOKEN_NOT_PRESENT: 'the token is not present; reconnect it',
  CKR_DEVICE_ERROR: 'the token reported a hardware fault; check its connection and logs',
  CKR_SESSION_HANDLE_INVALID: 'the PKCS#11 session was closed under the signer',
  CKR_USER_NOT_LOGGED_IN: 'the token logged the session out',
};

/**
 * A DeviceError for a failed PKCS#11 call `operation`: PKCS11_PIN_INCORRECT / PKCS11_PIN_LOCKED for PIN
 * refusals, PKCS11_TOKEN_ERROR with `fields.rv` (CKR_ name) and `fields.rvCode` otherwise. DeviceErrors pass
 * through unchanged.
 */
export function tokenError(err: unknown, operation: string, fields: Record<string, unknown> = {}): DeviceError {
  if (err instanceof DeviceError) return err;
  const rv = ckrOf(err);
  const rvCode = rv === undefined ? undefined : (err as { code?: unknown }).code;
  const code = (rv === undefined ? undefined : CKR_CODES[rv]) ?? 'PKCS11_TOKEN_ERROR';
  const what = rv === undefined ? String((err as Error)?.message ?? err) : `${rv}${typeof rvCode === 'number' ? ` (0x${rvCode.toString(16)})` : ''}`;
  const advice = rv === undefined ? undefined : CKR_ADVICE[rv];
  return new DeviceError(code, `PKCS#11 ${operation} failed: ${what}${advice === undefined ? '' : `; ${advice}`}`, { ...fields, operation, rv, rvCode }, { cause: err });
}

/** A loaded, initialised PKCS#11 module, shared per process. Get it with `Pkcs11Module.get`. */
export class Pkcs11Module {
  static readonly #loaded = new Map<string, Pkcs11Module>();
  /** Real path of the module file. */
  readonly path: string;
  readonly lib: Pkcs11js.PKCS11;
  /** The binding's constants and classes (CKA_*, CKM_*, ...). */
  readonly ck: Pkcs11Binding;
  #finalized = false;
  /** Sessions of this process that need the user login, per slot (hex of the slot id). */
  readonly #loginHolders = new Map<string, Set<string>>();
  /** SHA-256 of the PIN that logged in, per slot, while the login is held. */
  readonly #loginPins = new Map<string, Buffer>();

  private constructor(path: string, lib: Pkcs11js.PKCS11, ck: Pkcs11Binding) {
    this.path = path;
    this.lib = lib;
    this.ck = ck;
  }

  /**
   * The module at `modulePath`, loaded and C_Initialized on first use in this process. Throws DeviceError
   * PKCS11_BINDING_UNAVAILABLE or PKCS11_MODULE_LOAD_FAILED (fields: modulePath).
   */
  static get(modulePath: string): Pkcs11Module {
    if (typeof modulePath !== 'string' || modulePath === '') throw new TypeError('PKCS#11: modulePath must be a non-empty path');
    const ck = pkcs11Binding();
    let real: string;
    try {
      real = realpathSync(modulePath);
    } catch (err) {
      throw new DeviceError('PKCS11_MODULE_LOAD_FAILED', `PKCS#11 module ${modulePath} does not exist; install it or fix module-path`, { modulePath }, { cause: err });
    }
    const known = Pkcs11Module.#loaded.get(real);
    if (known !== undefined) return known;
    const lib = new ck.PKCS11();
    try {
      lib.load(real);
    } catch (err) {
      throw new DeviceError('PKCS11_MODULE_LOAD_FAILED', `cannot load PKCS#11 module ${modulePath}: ${(err as Error).message}`, { modulePath }, { cause: err });
    }
    try {
      lib.C_Initialize({ flags: ck.CKF_OS_LOCKING_OK });
    } catch (err) {
      // Another binding instance in this process initialised it already: the library is usable as it is.
      if (ckrOf(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        lib.close();
        const e = tokenError(err, 'C_Initialize', { modulePath });
        throw new DeviceError('PKCS11_MODULE_LOAD_FAILED', e.message, e.fields, { cause: err });
      }
    }
    const module = new Pkcs11Module(real, lib, ck);
    Pkcs11Module.#loaded.set(real, module);
    return module;
  }

  /**
   * C_Finalize and unload `modulePath` (every loaded module when omitted). Every session and signer on it
   * stops working (PKCS11_CLOSED); the next `get` initialises afresh and so rereads e.g. SOFTHSM2_CONF.
   * For tests and orderly shutdown.
   */
  static finalize(modulePath?: string): void {
    for (const [real, module] of [...Pkcs11Module.#loaded]) {
      if (modulePath !== undefined) {
        let target: string;
        try {
          target = realpathSync(modulePath);
        } catch {
          target = modulePath;
        }
        if (real !== target) continue;
      }
      Pkcs11Module.#loaded.delete(real);
      module.#finalized = true;
      try {
        module.lib.C_Finalize();
      } finally {
        module.lib.close();
      }
    }
  }

  /** Throws PKCS11_CLOSED once the module has been finalized. */
  assertLive(): void {
    if (this.#finalized) throw new DeviceError('PKCS11_CLOSED', `PKCS#11 module ${this.path} was finalized`, { modulePath: this.path });
  }

  /** Labels of the tokens present (padding removed), with their slots. */
  tokens(): { label: string; slot: Handle }[] {
    this.assertLive();
    try {
      return this.lib.C_GetSlotList(true).map((slot) => ({ label: this.lib.C_GetTokenInfo(slot).label.replace(/[ \0]+$/, ''), slot }));
    } catch (err) {
      throw tokenError(err, 'C_GetSlotList', { modulePath: this.path });
    }
  }

  /** Slot of the token labelled `tokenLabel`. Throws PKCS11_TOKEN_NOT_FOUND (fields.labels) or PKCS11_AMBIGUOUS. */
  findSlot(tokenLabel: string): Handle {
    const tokens = this.tokens();
    const matches = tokens.filter((t) => t.label === tokenLabel);
    if (matches.length > 1) {
      throw new DeviceError('PKCS11_AMBIGUOUS', `${matches.length} tokens are labelled ${JSON.stringify(tokenLabel)}; relabel one`, { tokenLabel, what: 'token' });
    }
    const match = matches[0];
    if (match === undefined) {
      const labels = tokens.map((t) => t.label).filter((l) => l !== '');
      throw new DeviceError(
        'PKCS11_TOKEN_NOT_FOUND',
        `no token labelled ${JSON.stringify(tokenLabel)} in ${this.path}; tokens present: ${labels.length === 0 ? '(none)' : labels.map((l) => JSON.stringify(l)).join(', ')}`,
        { tokenLabel, labels, modulePath: this.path },
      );
    }
    return match.slot;
  }

  /**
   * Open a session on `slot` and log the user in with `pin` (UTF-8 bytes), registering the session as
   * needing the login. Read-only unless `rw`. Throws PKCS11_PIN_INCORRECT, PKCS11_PIN_LOCKED or
   * PKCS11_TOKEN_ERROR; the session is closed again on failure.
   */
  openLoggedIn(slot: Handle, pin: Uint8Array, rw = false): Handle {
    this.assertLive();
    const { lib, ck } = this;
    let session: Handle;
    try {
      session = lib.C_OpenSession(slot, ck.CKF_SERIAL_SESSION | (rw ? ck.CKF_RW_SESSION : 0));
    } catch (err) {
      throw tokenError(err, 'C_OpenSession');
    }
    const key = slot.toString('hex');
    const pinHash = createHash('sha256').update(pin).digest();
    try {
      // The binding takes the PIN as a JS string: that copy cannot be wiped, only dropped.
      lib.C_Login(session, ck.CKU_USER, new TextDecoder('utf-8', { fatal: true }).decode(pin));
      this.#loginPins.set(key, pinHash);
    } catch (err) {
      const known = this.#loginPins.get(key);
      if (ckrOf(err) !== 'CKR_USER_ALREADY_LOGGED_IN' || (known !== undefined && !timingSafeEqual(known, pinHash))) {
        this.#closeQuietly(session);
        if (ckrOf(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw tokenError(err, 'C_Login');
        throw new DeviceError('PKCS11_PIN_INCORRECT', 'PKCS#11 C_Login: the token is already logged in by this process with another PIN; check the PIN source', {
          operation: 'C_Login', rv: 'CKR_USER_ALREADY_LOGGED_IN',
        });
      }
    }
    this.#holders(slot).add(session.toString('hex'));
    return session;
  }

  /**
   * Release a session from openLoggedIn: log out when no other session of this process needs the login,
   * then close it. `dead` sessions (handle already invalid) are only unregistered: the handle number may
   * belong to another session by now. Never throws.
   */
  release(slot: Handle, session: Handle, dead = false): void {
    const holders = this.#holders(slot);
    holders.delete(session.toString('hex'));
    const last = holders.size === 0;
    if (last) this.#loginPins.delete(slot.toString('hex'));
    if (dead || this.#finalized) return;
    if (last) {
      try {
        this.lib.C_Logout(session);
      } catch {
        // already logged out, or the session is gone: nothing left to undo
      }
    }
    this.#closeQuietly(session);
  }

  #closeQuietly(session: Handle): void {
    try {
      this.lib.C_CloseSession(session);
    } catch {
      // the session is gone already
    }
  }

  #holders(slot: Handle): Set<string> {
    const key = slot.toString('hex');
    let set = this.#loginHolders.get(key);
    if (set === undefined) this.#loginHolders.set(key, (set = new Set()));
    return set;
  }

  /** Handles of all objects matching `template`. */
  findObjects(session: Handle, template: Pkcs11js.Template): Handle[] {
    const { lib } = this;
    const out: Handle[] = [];
    try {
      lib.C_FindObjectsInit(session, template);
      try {
        for (let batch = lib.C_FindObjects(session, 32); batch.length > 0; batch = lib.C_FindObjects(session, 32)) out.push(...batch);
      } finally {
        lib.C_FindObjectsFinal(session);
      }
    } catch (err) {
      throw tokenError(err, 'C_FindObjects');
    }
    return out;
  }

  /** One attribute's value, or null when the object does not have it or will not reveal it. */
  attribute(session: Handle, object: Handle, type: number): Buffer | null {
    try {
      const [attr] = this.lib.C_GetAttributeValue(session, object, [{ type }]);
      return attr?.value ?? null;
    } catch (err) {
      const rv = ckrOf(err);
      if (rv === 'CKR_ATTRIBUTE_TYPE_INVALID' || rv === 'CKR_ATTRIBUTE_SENSITIVE') return null;
      throw tokenError(err, 'C_GetAttributeValue', { attribute: `0x${type.toString(16)}` });
    }
  }
}

const LE = endianness() === 'LE';

/** A CK_ULONG or CK_BBOOL attribute value (host byte order, 1, 4 or 8 bytes) as a number. */
export function ulongOf(value: Buffer | null): number | null {
  if (value === null) return null;
  if (value.length === 1) return value[0] ?? null;
  if (value.length === 4) return LE ? value.readUInt32LE(0) : value.readUInt32BE(0);
  if (value.length === 8) return Number(LE ? value.readBigUInt64LE(0) : value.readBigUInt64BE(0));
  return null;
}
