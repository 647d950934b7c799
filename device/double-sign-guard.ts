// The double-sign guard that sits in every consensus signer (CometBFT privval/file.go style). For each
// consensus purpose it remembers the last (height, round, hash) it signed, and the signature, in a state
// file kept apart from the key. It never signs below that point, never signs a different block at the same
// point, and returns the stored signature for an identical request. The new state is written atomically
// (temp file, fsync, rename, fsync of the directory; mode 0600) BEFORE a signature leaves, so a crash or
// restart can never make the validator forget what it signed.
//
// State file (a contract): JSON {"version":1,"last":{"<purpose>":{"height":"<decimal>","round":<int>,
// "hash":"0x<32 bytes>","digest":"0x<32 bytes>","signature":"0x<bytes>"}}}. `digest` is what was signed:
// an identical request must match it too, so the stored signature is only ever returned for the same digest.
// A state file that cannot be read exactly is refused (SIGN_STATE_CORRUPT), never guessed at. Given what the
// chain shows the key signed (signed-on-chain.ts), open() also refuses a state file that is missing
// (SIGN_STATE_MISSING) or older than those signatures (SIGN_STATE_BEHIND): deleted or restored from an old
// backup, it may have forgotten a vote at a height still being decided.
// One process per state file: the guard takes no lock, so never run two signers on one key.
import { readFile } from 'node:fs/promises';
import type { Address, SignPurpose, Signer } from '../chain/index.ts';
import { ChainError, bytesToHex, hexToBytes } from '../chain/index.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** Purposes the guard protects: every SignPurpose that signs a consensus vote or block. */
export const GUARDED_PURPOSES = ['proposal', 'prepare', 'commit', 'round-change', 'seal'] as const satisfies readonly SignPurpose[];
export type GuardedPurpose = (typeof GUARDED_PURPOSES)[number];
/** Fails to compile when a new SignPurpose is neither guarded nor 'message': classify it here. */
const _everyPurposeClassified: [Exclude<SignPurpose, GuardedPurpose | 'message'>] extends [never] ? true : never = true;

/** Purposes passed to the inner signer without a check: they sign no consensus vote. */
const UNGUARDED: ReadonlySet<string> = new Set<SignPurpose>(['message']);
const STATE_VERSION = 1;
const HASH_BYTES = 32;

/** A (height, round) a key signed at: what the chain shows it signed (signed-on-chain.ts finds them). */
export interface SignedPoint {
  readonly height: bigint;
  readonly round: number;
}

/** The last signature the guard let out for one purpose. */
export interface LastSigned {
  readonly height: bigint;
  readonly round: number;
  readonly hash: Uint8Array;
  readonly digest: Uint8Array;
  readonly signature: Uint8Array;
}

export interface GuardedSignerOptions {
  /** The signer holding the key (keystore, PKCS#11, ...). */
  readonly inner: Signer;
  /** Path of the state file; its directory must exist and be writable (a temp file is made beside it). */
  readonly stateFile: string;
  /**
   * What the chain shows this key signed (see signedOnChain). When given, open() refuses a missing state file
   * if the key signed anything there, and a state file behind any of those points.
   */
  readonly signedOnChain?: ReadonlyMap<GuardedPurpose, SignedPoint>;
}

function isGuarded(purpose: string): purpose is GuardedPurpose {
  return (GUARDED_PURPOSES as readonly string[]).includes(purpose);
}

/** A Signer that refuses to equivocate. Build it with `GuardedSigner.open`. */
export class GuardedSigner implements Signer {
  readonly keyType: Signer['keyType'];
  readonly publicKey: Uint8Array;
  readonly address: Address;
  readonly stateFile: string;
  readonly #inner: Signer;
  #last: ReadonlyMap<GuardedPurpose, LastSigned>;
  #queue: Promise<unknown> = Promise.resolve();
  #broken: unknown = null;

  private constructor(inner: Signer, stateFile: string, last: ReadonlyMap<GuardedPurpose, LastSigned>) {
    this.#inner = inner;
    this.keyType = inner.keyType;
    this.publicKey = inner.publicKey;
    this.address = inner.address;
    this.stateFile = stateFile;
    this.#last = last;
  }

  /**
   * Load the guard's state from `stateFile` (created, mode 0600, if it does not exist) around `inner`.
   * Throws ChainError SIGN_STATE_CORRUPT if the file exists but is not a valid state file: restore it or,
   * knowing the validator signed nothing since, move it aside; never delete it to get a node going. With
   * `signedOnChain`, throws SIGN_STATE_MISSING when there is no file but the chain shows this key signed,
   * and SIGN_STATE_BEHIND when the file is older than a signature the chain shows.
   */
  static async open(opts: GuardedSignerOptions): Promise<GuardedSigner> {
    const { inner, stateFile, signedOnChain } = opts ?? ({} as GuardedSignerOptions);
    if (signedOnChain !== undefined && !(signedOnChain instanceof Map)) throw new TypeError('GuardedSigner.open: signedOnChain must be a Map of purpose to {height, round}');
    if (inner === null || typeof inner !== 'object' || typeof inner.sign !== 'function') {
      throw new TypeError('GuardedSigner.open: inner must be a Signer');
    }
    if (typeof stateFile !== 'string' || stateFile === '') throw new TypeError('GuardedSigner.open: stateFile must be a non-empty path');
    let text: string | null = null;
    try {
      text = await readFile(stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === null) {
      const newest = newestPoint(signedOnChain);
      if (newest !== null) throw stateMissing(stateFile, inner.address, newest);
      const empty = new Map<GuardedPurpose, LastSigned>();
      await saveState(stateFile, empty);
      return new GuardedSigner(inner, stateFile, empty);
    }
    const last = decodeState(stateFile, text);
    for (const [purpose, onChain] of signedOnChain ?? []) {
      const kept = last.get(purpose);
      if (kept === undefined || comparePoints(kept, onChain) < 0) throw stateBehind(stateFile, inner.address, purpose, onChain, kept);
    }
    return new GuardedSigner(inner, stateFile, last);
  }

  /**
   * Write a new state file at `stateFile` (there must be none) that makes the key sign nothing at or below
   * `height` for any purpose: the way back when a state file is lost and no copy exists, once the committee
   * has decided every height the key may have voted on (pick a height at or above the committee's head + 1).
   */
  static async fence(stateFile: string, height: bigint): Promise<void> {
    if (typeof stateFile !== 'string' || stateFile === '') throw new TypeError('GuardedSigner.fence: stateFile must be a non-empty path');
    if (typeof height !== 'bigint' || height < 0n) throw new TypeError('GuardedSigner.fence: height must be a bigint >= 0');
    const zero = new Uint8Array(HASH_BYTES);
    const fenced = new Map(GUARDED_PURPOSES.map((p) => [p, { height, round: Number.MAX_SAFE_INTEGER, hash: zero, digest: zero, signature: new Uint8Array(1) }]));
    await saveState(stateFile, fenced, 'wx');
  }

  /** The last signature let out for `purpose`, if any (copies). */
  lastSigned(purpose: GuardedPurpose): LastSigned | undefined {
    const last = this.#last.get(purpose);
    return last === undefined ? undefined : { ...last, hash: last.hash.slice(), digest: last.digest.slice(), signature: last.signature.slice() };
  }

  /**
   * Sign `digest` (32 bytes) for `purpose`. Guarded purposes need `context` with the height, round and the
   * 32-byte `hash` of what is signed (TypeError without). Above the last signed (height, round) of that
   * purpose: signs, persists, then returns. At the same point with the same hash and digest: returns the
   * stored signature without signing. Otherwise throws ChainError SIGN_CONFLICT
   * {purpose, height, round, lastHeight, lastRound}. Requests are handled one at a time.
   */
  async sign(digest: Uint8Array, purpose: SignPurpose, context?: { height: bigint; round: number; hash?: Uint8Array }): Promise<Uint8Array> {
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new TypeError('GuardedSigner.sign: digest must be 32 bytes');
    if (UNGUARDED.has(purpose)) return this.#inner.sign(digest, purpose, context);
    if (!isGuarded(purpose)) throw new TypeError(`GuardedSigner.sign: unknown purpose ${JSON.stringify(purpose)}; refusing to sign it unguarded`);
    if (context === undefined || context === null) {
      throw new TypeError(`GuardedSigner.sign: purpose '${purpose}' needs context {height, round, hash}`);
    }
    const { height, round, hash } = context;
    if (typeof height !== 'bigint' || height < 0n) throw new TypeError('GuardedSigner.sign: context.height must be a bigint >= 0');
    if (!Number.isSafeInteger(round) || round < 0) throw new TypeError('GuardedSigner.sign: context.round must be an integer >= 0');
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
      throw new TypeError(`GuardedSigner.sign: context.hash must be the ${HASH_BYTES}-byte hash being signed for '${purpose}'`);
    }
    const request = { height, round, hash: hash.slice(), digest: digest.slice() };
    const run = this.#queue.then(() => this.#signGuarded(purpose, request));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #signGuarded(purpose: GuardedPurpose, req: Omit<LastSigned, 'signature'>): Promise<Uint8Array> {
    if (this.#broken !== null) throw this.#broken;
    const last = this.#last.get(purpose);
    if (last !== undefined) {
      const order = comparePoints(req, last);
      if (order < 0) throw conflict(purpose, req, last, 'it is below the last signed point');
      if (order === 0) {
        if (equalBytes(req.hash, last.hash) && equalBytes(req.digest, last.digest)) return last.signature.slice();
        throw conflict(purpose, req, last, equalBytes(req.hash, last.hash) ? 'the same hash came with a different digest' : 'a different hash was signed there');
      }
    }
    const signature = Uint8Array.from(await this.#inner.sign(req.digest, purpose, { height: req.height, round: req.round, hash: req.hash }));
    const next = new Map(this.#last).set(purpose, { ...req, signature });
    try {
      await saveState(this.stateFile, next);
    } catch (err) {
      // The file may or may not hold the new entry now; memory can no longer be trusted to match it.
      this.#broken = new Error(`GuardedSigner: saving ${this.stateFile} failed; restart the signer to reload its state`, { cause: err });
      throw this.#broken;
    }
    this.#last = next;
    return signature.slice();
  }
}

function conflict(purpose: GuardedPurpose, req: Omit<LastSigned, 'signature'>, last: LastSigned, why: string): ChainError {
  return new ChainError(
    'SIGN_CONFLICT',
    `refusing to sign ${purpose} at height ${req.height} round ${req.round}: ${why} (last signed height ` +
      `${last.height} round ${last.round}); signing could equivocate. Old messages replayed after a restart ` +
      'cause this harmlessly; if it persists, make sure no other node runs with this key.',
    { purpose, height: req.height, round: req.round, lastHeight: last.height, lastRound: last.round },
  );
}

/** Negative, zero or positive as `a` is below, at or above `b` in (height, round) order. */
function comparePoints(a: SignedPoint, b: SignedPoint): number {
  return a.height === b.height ? Math.sign(a.round - b.round) : a.height < b.height ? -1 : 1;
}

function newestPoint(points: ReadonlyMap<GuardedPurpose, SignedPoint> | undefined): (SignedPoint & { purpose: GuardedPurpose }) | null {
  let newest: (SignedPoint & { purpose: GuardedPurpose }) | null = null;
  for (const [purpose, p] of points ?? []) if (newest === null || comparePoints(p, newest) > 0) newest = { purpose, ...p };
  return newest;
}

const RESTORE_HINT =
  'Restore the newest copy of the state file. If there is none: keep every node with this key stopped until the ' +
  'committee has decided the heights it may have voted on, move the file aside, and fence a new one above them ' +
  '(GuardedSigner.fence with the committee head + 1; in `datagate dev`, start with a fresh data directory instead).';

function stateMissing(file: string, address: Address, onChain: SignedPoint & { purpose: GuardedPurpose }): ChainError {
  return new ChainError(
    'SIGN_STATE_MISSING',
    `double-sign guard state ${file} does not exist, but the chain shows key ${address} signed (${onChain.purpose} at ` +
      `height ${onChain.height} round ${onChain.round}); without it the key could sign a conflicting vote. ${RESTORE_HINT}`,
    { file, address, purpose: onChain.purpose, height: onChain.height, round: onChain.round },
  );
}

function stateBehind(file: string, address: Address, purpose: GuardedPurpose, onChain: SignedPoint, kept: LastSigned | undefined): ChainError {
  const where = kept === undefined ? 'holds no point' : `holds height ${kept.height} round ${kept.round}`;
  return new ChainError(
    'SIGN_STATE_BEHIND',
    `double-sign guard state ${file} is older than the chain: for ${purpose} it ${where}, but key ${address} signed at ` +
      `height ${onChain.height} round ${onChain.round}; it was restored from an old copy or rolled back and may have ` +
      `forgotten a vote. ${RESTORE_HINT}`,
    { file, address, purpose, height: onChain.height, round: onChain.round, stateHeight: kept?.height ?? null, stateRound: kept?.round ?? null },
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Write the state atomically (atomic-file.ts: temp file 0600 in the same dir, fsync, rename over, fsync the
 * dir). With `mode` 'wx' an existing state file is refused (SIGN_STATE_EXISTS) instead of replaced.
 */
async function saveState(file: string, last: ReadonlyMap<GuardedPurpose, LastSigned>, mode: 'w' | 'wx' = 'w'): Promise<void> {
  const entries: Record<string, unknown> = {};
  for (const [purpose, e] of last) {
    entries[purpose] = {
      height: e.height.toString(10),
      round: e.round,
      hash: bytesToHex(e.hash),
      digest: bytesToHex(e.digest),
      signature: bytesToHex(e.signature),
    };
  }
  const text = `${JSON.stringify({ version: STATE_VERSION, last: entries })}\n`;
  try {
    // exclusive: link() fails where the file exists, unlike rename(): a state file is never replaced by a fence.
    await writeFileAtomic(file, text, { mode: 0o600, exclusive: mode === 'wx' });
  } catch (err) {
    if (mode !== 'wx' || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    throw new ChainError('SIGN_STATE_EXISTS', `double-sign guard state ${file} exists; move it aside first (keep it: it records what the key signed)`, { file });
  }
}

/** Parse a state file exactly; anything unexpected is SIGN_STATE_CORRUPT. */
function decodeState(file: string, text: string): Map<GuardedPurpose, LastSigned> {
  const bad = (reason: string): ChainError =>
    new ChainError(
      'SIGN_STATE_CORRUPT',
      `double-sign guard state ${file} is unreadable (${reason}); the signer will not start without knowing ` +
        'what it last signed. Restore the file from a backup, or move it aside only if you are sure this key ' +
        'signed nothing at heights the chain has not yet finalized.',
      { file, reason },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (!isRecord(doc)) throw bad('not a JSON object');
  if (doc.version !== STATE_VERSION) throw bad(`version ${JSON.stringify(doc.version)}, expected ${STATE_VERSION}`);
  if (!isRecord(doc.last)) throw bad('"last" is not an object');
  const out = new Map<GuardedPurpose, LastSigned>();
  for (const [purpose, e] of Object.entries(doc.last)) {
    if (!isGuarded(purpose)) throw bad(`unknown purpose ${JSON.stringify(purpose)}`);
    if (!isRecord(e)) throw bad(`entry ${purpose} is not an object`);
    const { height, round } = e;
    if (typeof height !== 'string' || !/^(0|[1-9][0-9]*)$/.test(height)) throw bad(`${purpose}.height is not a decimal string`);
    if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 0) throw bad(`${purpose}.round is not an integer >= 0`);
    const bytes = (key: string, length?: number): Uint8Array => {
      const v = e[key];
      if (typeof v !== 'string' || !/^0x(?:[0-9a-f]{2})+$/.test(v)) throw bad(`${purpose}.${key} is not 0x-prefixed lowercase hex`);
      const b = hexToBytes(v);
      if (length !== undefined && b.length !== length) throw bad(`${purpose}.${key} is ${b.length} bytes, expected ${length}`);
      return b;
    };
    out.set(purpose, { height: BigInt(height), round, hash: bytes('hash', HASH_BYTES), digest: bytes('digest', 32), signature: bytes('signature') });
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
