// Account state: the committed accounts with their Merkle trie, and copy-on-write overlays in which a
// block is built or checked. An overlay is dropped if the block is not committed; committing it swaps
// in its accounts and trie, so the committed state is never half-updated.
import { bigintToBytes32, bytesToBigint, bytesToHex, hexToBytes, keccak256 } from '../crypto/index.ts';
import type { Account, Address } from '../types.ts';
import { MerkleTrie } from './smt.ts';

export const EMPTY_ACCOUNT: Account = Object.freeze({ nonce: 0n, balance: 0n });

/** Bytes of an account as stored and as committed in the trie: nonce (32 bytes) || balance (32 bytes). */
export function encodeAccount(account: Account): Uint8Array {
  const out = new Uint8Array(64);
  out.set(bigintToBytes32(account.nonce), 0);
  out.set(bigintToBytes32(account.balance), 32);
  return out;
}

export function decodeAccount(bytes: Uint8Array): Account {
  if (bytes.length !== 64) throw new RangeError(`account record must be 64 bytes, got ${bytes.length}`);
  return { nonce: bytesToBigint(bytes.subarray(0, 32)), balance: bytesToBigint(bytes.subarray(32)) };
}

/** Trie key of an account: keccak(address), so that addresses cannot be chosen to unbalance the trie. */
export function accountKey(address: Address): Uint8Array {
  return keccak256(hexToBytes(address));
}

/** Read access to account state and to the storage slots of native contracts. */
export interface StateReader {
  account(address: Address): Account;
  /** Value of the storage slot at trie key `key` (0x hex, 32 bytes), or undefined. */
  slot(key: string): Uint8Array | undefined;
}

/**
 * Trie key of a storage slot owned by `domain` (e.g. 'lbft/impeachments'): keccak(domain || 0x00 || id),
 * which can never equal an account key keccak(address) (20-byte preimage) in practice and keeps domains apart.
 */
export function slotKey(domain: string, id: Uint8Array): string {
  const d = new TextEncoder().encode(domain);
  const buf = new Uint8Array(d.length + 1 + id.length);
  buf.set(d, 0);
  buf.set(id, d.length + 1);
  return bytesToHex(keccak256(buf));
}

/** The committed state at the head of the chain. */
export class WorldState implements StateReader {
  private constructor(
    private accounts: Map<Address, Account>,
    private slots: Map<string, Uint8Array>,
    private trie: MerkleTrie,
  ) {}

  static empty(): WorldState {
    return new WorldState(new Map(), new Map(), MerkleTrie.empty());
  }

  /** Build the committed state from stored accounts and slots (at start-up). */
  static fromAccounts(entries: Iterable<readonly [Address, Account]>, slotEntries: Iterable<readonly [string, Uint8Array]> = []): WorldState {
    const accounts = new Map<Address, Account>();
    const slots = new Map<string, Uint8Array>();
    let trie = MerkleTrie.empty();
    for (const [address, account] of entries) {
      accounts.set(address, account);
      trie = trie.set(accountKey(address), encodeAccount(account));
    }
    for (const [key, value] of slotEntries) {
      slots.set(key, value);
      trie = trie.set(hexToBytes(key), value);
    }
    return new WorldState(accounts, slots, trie);
  }

  account(address: Address): Account {
    return this.accounts.get(address) ?? EMPTY_ACCOUNT;
  }

  slot(key: string): Uint8Array | undefined {
    return this.slots.get(key);
  }

  get accountCount(): number {
    return this.accounts.size;
  }

  root(): Uint8Array {
    return this.trie.root();
  }

  /** A fresh overlay on top of this state. */
  overlay(): StateOverlay {
    return new StateOverlay(this);
  }

  /** Make `overlay` the committed state. It must have been opened on this state. */
  commit(overlay: StateOverlay): void {
    if (overlay.base !== this) throw new Error('state overlay was opened on another state');
    const { trie } = overlay.seal();
    for (const [address, account] of overlay.changes()) this.accounts.set(address, account);
    for (const [key, value] of overlay.slotChanges()) this.slots.set(key, value);
    this.trie = trie;
  }

  /** @internal used by overlays to build their trie. */
  currentTrie(): MerkleTrie {
    return this.trie;
  }
}

/** Pending changes to a WorldState; reads fall through to the base. */
export class StateOverlay implements StateReader {
  private readonly dirty = new Map<Address, Account>();
  private readonly dirtySlots = new Map<string, Uint8Array>();
  private sealed: { trie: MerkleTrie; root: Uint8Array } | null = null;

  constructor(readonly base: WorldState) {}

  account(address: Address): Account {
    return this.dirty.get(address) ?? this.base.account(address);
  }

  setAccount(address: Address, account: Account): void {
    if (this.sealed !== null) throw new Error('state overlay is sealed');
    this.dirty.set(address, account);
  }

  slot(key: string): Uint8Array | undefined {
    return this.dirtySlots.get(key) ?? this.base.slot(key);
  }

  setSlot(key: string, value: Uint8Array): void {
    if (this.sealed !== null) throw new Error('state overlay is sealed');
    if (hexToBytes(key).length !== 32) throw new RangeError('slot keys are 32 bytes');
    this.dirtySlots.set(key, value);
  }

  /** Accounts changed in this overlay. */
  changes(): ReadonlyMap<Address, Account> {
    return this.dirty;
  }

  /** Storage slots changed in this overlay. */
  slotChanges(): ReadonlyMap<string, Uint8Array> {
    return this.dirtySlots;
  }

  /** Fold the changes into a trie (once) and return it with its root; no further writes allowed. */
  seal(): { trie: MerkleTrie; root: Uint8Array } {
    if (this.sealed === null) {
      let trie = this.base.currentTrie();
      for (const [address, account] of this.dirty) trie = trie.set(accountKey(address), encodeAccount(account));
      for (const [key, value] of this.dirtySlots) trie = trie.set(hexToBytes(key), value);
      this.sealed = { trie, root: trie.root() };
    }
    return this.sealed;
  }
}
