// The PKCS#11 signer: a validator key held in an HSM, TPM (tpm2-pkcs11) or secure element, named by token
// label and key label (`pkcs11:token=gw;object=validator`). The key never leaves the token; the signer asks
// it for plain ECDSA (CKM_ECDSA) over a 32-byte value and turns the raw r || s into the chain's form:
// - secp256k1: the digest is signed as is; s is normalised to low-s, the recovery id found by recovering
//   with recid 0 and 1 (the chain's secp256k1 backend) and comparing with the public key. 65 bytes out.
//   A signature neither id recovers to our key is refused (PKCS11_BAD_SIGNATURE): recovery is the check.
// - P-256: sha256(digest) is signed (no module offers CKM_ECDSA_SHA256 everywhere; signing the hash with
//   CKM_ECDSA is the same ECDSA-P256-SHA256 over the digest, the chain's convention), low-s, 64 bytes out,
//   verified with verifySignature before it is returned (cheap; catches token faults).
// Signatures on one signer are made one at a time (a session is not safe for concurrent operations) and
// run on a libuv worker thread, so a slow token does not stall the event loop.
// Session recovery: when a signature fails because the session or login is gone (CKR_SESSION_HANDLE_INVALID,
// CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT; also the object
// handle errors that follow a lost login and CKR_OPERATION_ACTIVE left by an interrupted operation), the
// signer reopens a session, logs in again, finds the key again by label, checks it is the same key
// (PKCS11_KEY_CHANGED otherwise), and retries once. A second failure is thrown and logged; the next
// signature starts with a reopen again, so a token that comes back is picked up without a restart.
// The PIN is kept (as bytes, wiped by close()) because re-login needs it; the binding takes it as a JS
// string at each login, and that copy cannot be wiped.
import { createHash } from 'node:crypto';
import type { Address, KeyType, Logger, SignPurpose, Signer } from '../chain/index.ts';
import { keyAddress, nopLogger, verifySignature } from '../chain/index.ts';
import { DeviceError } from './errors.ts';
import { equalBytes, normaliseLowS, recoveryIdOf } from './pkcs11-ec.ts';
import { type Handle, Pkcs11Module, ckrOf, tokenError } from './pkcs11-module.ts';
import { findKeyPair, generateKeyPair, listKeyPairs, type Pkcs11KeyInfo, type Pkcs11TokenOptions, pinBytes, withSession } from './pkcs11-keys.ts';

export { Pkcs11Module } from './pkcs11-module.ts';
export type { Pkcs11KeyInfo, Pkcs11TokenOptions } from './pkcs11-keys.ts';

/** Return values after which the session is reopened (with a fresh login and key lookup) and the sign retried once. */
const RECOVERABLE = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT',
  'CKR_KEY_HANDLE_INVALID', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_OPERATION_ACTIVE',
]);
/** Return values meaning the session handle itself is gone (so it must not be closed: the number may be reused). */
const DEAD_SESSION = new Set(['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED']);

/** Time spent in each step of signing, accumulated (milliseconds) when a stats object is passed to open. */
export interface Pkcs11SignStats {
  tokenMs: number;
  normaliseMs: number;
  recoveryMs: number;
  verifyMs: number;
}

/** A zeroed Pkcs11SignStats. */
export function newPkcs11SignStats(): Pkcs11SignStats {
  return { tokenMs: 0, normaliseMs: 0, recoveryMs: 0, verifyMs: 0 };
}

/** Counters every signer keeps. */
export interface Pkcs11Counters {
  /** Signatures returned. */
  signatures: number;
  /** Raw token signatures that were high-s and normalised. */
  normalised: number;
  /** Sessions reopened after a recoverable failure. */
  sessionRecoveries: number;
}

export interface Pkcs11SignerOptions extends Pkcs11TokenOptions {
  /** CKA_LABEL of the key pair. */
  readonly objectLabel: string;
  readonly logger?: Logger;
  /** Accumulates per-step timings (benchmarks); timing is skipped without it. */
  readonly stats?: Pkcs11SignStats;
}

export interface Pkcs11GenerateOptions extends Pkcs11TokenOptions {
  readonly objectLabel: string;
  readonly keyType: KeyType;
}

/** Hooks for tests only (not exported from device/index.ts); filled in by Pkcs11Signer's static block. */
export const pkcs11TestHooks: { closeSessionBehindBack(signer: Pkcs11Signer): void } = {
  closeSessionBehindBack() {
    throw new Error('unreachable: set by Pkcs11Signer');
  },
};

/**
 * Signed once at open to prove the key pair works. A fixed, domain-separated value: its signature cannot be
 * taken for a consensus message or a transaction, whose digests are keccak256 of tagged RLP.
 */
const PROBE = createHash('sha256').update('datagate/pkcs11/open-probe').digest();

/** A Signer whose key is held by a PKCS#11 token. Build it with `Pkcs11Signer.open`. */
export class Pkcs11Signer implements Signer {
  readonly keyType: KeyType;
  readonly publicKey: Uint8Array;
  readonly address: Address;
  readonly tokenLabel: string;
  readonly objectLabel: string;
  readonly #module: Pkcs11Module;
  readonly #pin: Uint8Array;
  readonly #logger: Logger;
  readonly #stats: Pkcs11SignStats | undefined;
  readonly #counters: Pkcs11Counters = { signatures: 0, normalised: 0, sessionRecoveries: 0 };
  #slot: Handle;
  #session: Handle | null;
  #key: Handle;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(init: {
    module: Pkcs11Module; pin: Uint8Array; opts: Pkcs11SignerOptions; slot: Handle; session: Handle; key: Handle; keyType: KeyType; publicKey: Uint8Array;
  }) {
    this.#module = init.module;
    this.#pin = init.pin;
    this.#logger = init.opts.logger ?? nopLogger;
    this.#stats = init.opts.stats;
    this.tokenLabel = init.opts.tokenLabel;
    this.objectLabel = init.opts.objectLabel;
    this.#slot = init.slot;
    this.#session = init.session;
    this.#key = init.key;
    this.keyType = init.keyType;
    this.publicKey = init.publicKey;
    this.address = keyAddress(init.publicKey);
  }

  /**
   * Open the key pair labelled `objectLabel` on the token labelled `tokenLabel`, log in with `pin` and make
   * one probe signature (which proves the private and public halves belong together). Throws DeviceError:
   * PKCS11_BINDING_UNAVAILABLE, PKCS11_MODULE_LOAD_FAILED, PKCS11_TOKEN_NOT_FOUND (fields.labels),
   * PKCS11_PIN_INCORRECT, PKCS11_PIN_LOCKED, PKCS11_OBJECT_NOT_FOUND, PKCS11_AMBIGUOUS,
   * PKCS11_UNSUPPORTED_KEY, PKCS11_BAD_SIGNATURE, PKCS11_TOKEN_ERROR.
   */
  static async open(opts: Pkcs11SignerOptions): Promise<Pkcs11Signer> {
    checkLabel('objectLabel', opts?.objectLabel);
    const pin = pinBytes(opts.pin);
    const module = Pkcs11Module.get(opts.modulePath);
    const slot = module.findSlot(checkLabel('tokenLabel', opts.tokenLabel));
    const session = module.openLoggedIn(slot, pin);
    let signer: Pkcs11Signer;
    try {
      const pair = findKeyPair(module, session, opts.objectLabel, opts.logger ?? nopLogger);
      signer = new Pkcs11Signer({ module, pin, opts, slot, session, key: pair.privateKey, keyType: pair.keyType, publicKey: pair.publicKey });
    } catch (err) {
      module.release(slot, session);
      pin.fill(0);
      throw err;
    }
    try {
      await signer.#sign(PROBE);
    } catch (err) {
      await signer.close();
      throw err;
    }
    signer.#counters.signatures = 0;
    signer.#counters.normalised = 0;
    signer.#logger.info('pkcs11 key opened', { token: signer.tokenLabel, object: signer.objectLabel, keyType: signer.keyType, address: signer.address });
    return signer;
  }

  /**
   * Generate an EC key pair on the token: token objects labelled `objectLabel` with one random 16-byte
   * CKA_ID; the private half sensitive, never extractable, sign-only. Returns the key's description.
   * Throws PKCS11_OBJECT_EXISTS if any object already carries that label (keys are never replaced), and the
   * token and PIN errors of open.
   */
  static async generate(opts: Pkcs11GenerateOptions): Promise<Pkcs11KeyInfo> {
    const label = checkLabel('objectLabel', opts?.objectLabel);
    if (opts.keyType !== 'secp256k1' && opts.keyType !== 'p256') throw new TypeError("Pkcs11Signer.generate: keyType must be 'secp256k1' or 'p256'");
    const keyType = opts.keyType;
    return withSession(opts, true, async (module, session) => generateKeyPair(module, session, opts.tokenLabel, label, keyType));
  }

  /** The EC key pairs on the token (private keys and their public halves), in token order. */
  static async list(opts: Pkcs11TokenOptions): Promise<Pkcs11KeyInfo[]> {
    return withSession(opts, false, async (module, session) => listKeyPairs(module, session));
  }

  /** Counters since open (copies). */
  get counters(): Pkcs11Counters {
    return { ...this.#counters };
  }

  /**
   * Sign a 32-byte `digest`. secp256k1: 65 bytes r || s || recid, low-s. P-256: 64 bytes r || s, low-s, over
   * sha256(digest). `purpose` and `context` are not looked at: wrap the signer in a GuardedSigner for
   * consensus use. Throws TypeError for a bad digest, DeviceError PKCS11_CLOSED after close,
   * PKCS11_BAD_SIGNATURE for a faulty token signature, and the token's errors (see the module comment).
   */
  async sign(digest: Uint8Array, _purpose: SignPurpose, _context?: { height: bigint; round: number; hash?: Uint8Array }): Promise<Uint8Array> {
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new TypeError('Pkcs11Signer.sign: digest must be 32 bytes');
    const copy = Uint8Array.from(digest);
    const run = this.#queue.then(() => this.#sign(copy));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Log out (when no other signer of this process needs the login) and close the session. Idempotent. */
  async close(): Promise<void> {
    const run = this.#queue.then(() => {
      if (this.#closed) return;
      this.#closed = true;
      if (this.#session !== null) this.#module.release(this.#slot, this.#session);
      this.#session = null;
      this.#pin.fill(0);
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #sign(digest: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new DeviceError('PKCS11_CLOSED', 'the PKCS#11 signer is closed', { token: this.tokenLabel, object: this.objectLabel });
    const stats = this.#stats;
    const input = this.keyType === 'p256' ? createHash('sha256').update(digest).digest() : Buffer.from(digest);
    let t = stats === undefined ? 0 : performance.now();
    const raw = await this.#tokenSign(input);
    if (raw.length !== 64) {
      throw new DeviceError('PKCS11_BAD_SIGNATURE', `the token returned a ${raw.length}-byte ECDSA signature, expected 64 (r || s)`, { length: raw.length, token: this.tokenLabel });
    }
    const sig = Uint8Array.from(raw);
    if (stats !== undefined) stats.tokenMs += performance.now() - t;

    if (stats !== undefined) t = performance.now();
    if (normaliseLowS(this.keyType, sig)) this.#counters.normalised++;
    if (stats !== undefined) stats.normaliseMs += performance.now() - t;

    if (this.keyType === 'secp256k1') {
      if (stats !== undefined) t = performance.now();
      const recid = recoveryIdOf(digest, sig, this.publicKey);
      if (stats !== undefined) stats.recoveryMs += performance.now() - t;
      if (recid === null) throw this.#badSignature();
      const out = new Uint8Array(65);
      out.set(sig, 0);
      out[64] = recid;
      this.#counters.signatures++;
      return out;
    }
    if (stats !== undefined) t = performance.now();
    const ok = verifySignature('p256', digest, sig, this.publicKey);
    if (stats !== undefined) stats.verifyMs += performance.now() - t;
    if (!ok) throw this.#badSignature();
    this.#counters.signatures++;
    return sig;
  }

  #badSignature(): DeviceError {
    return new DeviceError('PKCS11_BAD_SIGNATURE', `token ${JSON.stringify(this.tokenLabel)} returned a signature that does not verify against key ${JSON.stringify(this.objectLabel)}; the token is faulty or the key was replaced`, {
      token: this.tokenLabel, object: this.objectLabel, keyType: this.keyType,
    });
  }

  /**
   * C_SignInit + C_Sign (worker thread) on the session; on a recoverable failure, or with no session left
   * by an earlier failed reopen, one reopen and one more try, whose failure is thrown.
   */
  async #tokenSign(input: Buffer): Promise<Buffer> {
    let firstRv = 'no session';
    if (this.#session !== null) {
      try {
        return await this.#rawSign(this.#session, input);
      } catch (err) {
        const rv = ckrOf(err);
        if (rv === undefined || !RECOVERABLE.has(rv)) throw tokenError(err, 'C_Sign', { token: this.tokenLabel, object: this.objectLabel });
        firstRv = rv;
        this.#dropSession(DEAD_SESSION.has(rv));
      }
    }
    this.#logger.warn('pkcs11 session lost; reopening it', { token: this.tokenLabel, object: this.objectLabel, rv: firstRv });
    try {
      const session = this.#reopen();
      this.#counters.sessionRecoveries++;
      return await this.#rawSign(session, input);
    } catch (again) {
      const e = tokenError(again, 'C_Sign after reopening the session', { token: this.tokenLabel, object: this.objectLabel, firstRv });
      this.#logger.error('pkcs11 signing failed after reopening the session', { ...e.fields, code: e.code });
      throw e;
    }
  }

  async #rawSign(session: Handle, input: Buffer): Promise<Buffer> {
    this.#module.assertLive();
    const { lib, ck } = this.#module;
    lib.C_SignInit(session, { mechanism: ck.CKM_ECDSA }, this.#key);
    return lib.C_SignAsync(session, input, Buffer.alloc(128));
  }

  #dropSession(dead: boolean): void {
    if (this.#session !== null) this.#module.release(this.#slot, this.#session, dead);
    this.#session = null;
  }

  /** New session and login (the token may be in another slot after being replugged), key found again and checked. */
  #reopen(): Handle {
    const module = this.#module;
    const slot = module.findSlot(this.tokenLabel);
    const session = module.openLoggedIn(slot, this.#pin);
    try {
      const pair = findKeyPair(module, session, this.objectLabel, nopLogger);
      if (pair.keyType !== this.keyType || !equalBytes(pair.publicKey, this.publicKey)) {
        throw new DeviceError('PKCS11_KEY_CHANGED', `after reopening the session, ${JSON.stringify(this.objectLabel)} on token ${JSON.stringify(this.tokenLabel)} is another key (now ${keyAddress(pair.publicKey)}, was ${this.address}); refusing to sign with it`, {
          token: this.tokenLabel, object: this.objectLabel, address: this.address,
        });
      }
      this.#slot = slot;
      this.#session = session;
      this.#key = pair.privateKey;
      return session;
    } catch (err) {
      module.release(slot, session);
      throw err;
    }
  }

  static {
    pkcs11TestHooks.closeSessionBehindBack = (signer) => {
      if (signer.#session === null) throw new Error('the signer has no open session');
      signer.#module.lib.C_CloseSession(signer.#session);
    };
  }
}

function checkLabel(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`PKCS#11: ${name} must be a non-empty string`);
  return value;
}
