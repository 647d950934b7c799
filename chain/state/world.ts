// Account state: the committed accounts with their Merkle trie, and copy-on-write overlays in which a
// block is built or checked. An overlay is dropped if the block is not committed; committing it swaps
// in its accounts and trie, so the committed state is never half-updated.
import { bigintToBytes32, bytesToBigint, hexToBytes, keccak256 } from '../crypto/index.ts';
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

/** Read access to account state. */
export interface StateReader {
  account(address: Address): Account;
}

/** The committed state at the head of the chain. */
export class WorldState implements StateReader {
  private constructor(
    private accounts: Map<Address, Account>,
    private trie: MerkleTrie,
  ) {}

  static empty(): WorldState {
    return new WorldState(new Map(), MerkleTrie.empty());
  }

  /** Build the committed state from stored accounts (at start-up). */
  static fromAccounts(entries: Iterable<readonly [Address, Account]>): WorldState {
    const accounts = new Map<Address, Account>();
    let trie = MerkleTrie.empty();
    for (const [address, account] of entries) {
      accounts.set(address, account);
      trie = trie.set(accountKey(address), encodeAccount(account));
    }
    return new WorldState(accounts, trie);
  }

  account(address: Address): Account {
    return this.accounts.get(address) ?? EMPTY_ACCOUNT;
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
  private sealed: { trie: MerkleTrie; root: Uint8Array } | null = null;

  constructor(readonly base: WorldState) {}

  account(address: Address): Account {
    return this.dirty.get(address) ?? this.base.account(address);
  }

  setAccount(address: Address, account: Account): void {
    if (this.sealed !== null) throw new Error('state overlay is sealed');
    this.dirty.set(address, account);
  }

  /** Accounts changed in this overlay. */
  changes(): ReadonlyMap<Address, Account> {
    return this.dirty;
  }

  /** Fold the changes into a trie (once) and return it with its root; no further writes allowed. */
  seal(): { trie: MerkleTrie; root: Uint8Array } {
    if (this.sealed === null) {
      let trie = this.base.currentTrie();
      for (const [address, account] of this.dirty) trie = trie.set(accountKey(address), encodeAccount(account));
      this.sealed = { trie, root: trie.root() };
    }
    return this.sealed;
  }
}
