// The well-known development accounts: the first keys of the mnemonic every Ethereum dev node
// (Hardhat, Anvil) prefunds, so wallets and scripts work against `datagate dev` unchanged.
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { createHmac, pbkdf2Sync } from 'node:crypto';
import { SECP256K1_N, bigintToBytes32, bytesToBigint, bytesToHex, publicKeyToAddress, secp256k1 } from '../chain/index.ts';

export const DEV_MNEMONIC = 'test test test test test test test test test test test junk';

export interface DevAccount {
  readonly path: string;
  readonly address: string;
  readonly privateKey: Uint8Array;
}

/** Derive key `index` at `m/44'/60'/account'/0/index` from `mnemonic`. */
export function deriveAccounts(mnemonic: string, count: number, account = 0): DevAccount[] {
  const root = HDKey.fromMasterSeed(mnemonicToSeedSync(mnemonic));
  const out: DevAccount[] = [];
  for (let i = 0; i < count; i++) {
    const path = `m/44'/60'/${account}'/0/${i}`;
    const privateKey = root.derive(path).privateKey;
    if (privateKey === null) throw new Error(`cannot derive ${path}`);
    out.push({ path, address: publicKeyToAddress(secp256k1.publicKey(privateKey, false)), privateKey });
  }
  return out;
}

export const hexKey = (account: DevAccount): string => bytesToHex(account.privateKey);

/** The BIP-44 accounts `datagate dev` derives keys from: funded accounts, validators, proposers, the device key. */
export const DEV_KEY_ACCOUNTS = { accounts: 0, validators: 1, proposers: 2, device: 3 } as const;
/** Keys checked per account: the dev config allows up to 64 validators, more than any other count it takes. */
export const DEV_KEYS_PER_ACCOUNT = 64;

let devAddresses: ReadonlySet<string> | undefined;

/** BIP-32 private child derivation (hardened when `index` >= 2^31) with the chain's secp256k1 backend. */
function childKey(key: Uint8Array, chainCode: Uint8Array, index: number): { key: Uint8Array; chainCode: Uint8Array } {
  const data = Buffer.alloc(37);
  if (index >= 0x80000000) Buffer.from(key).copy(data, 1);
  else Buffer.from(secp256k1.publicKey(key, true)).copy(data, 0);
  data.writeUInt32BE(index, 33);
  const i = createHmac('sha512', chainCode).update(data).digest();
  const child = (bytesToBigint(i.subarray(0, 32)) + bytesToBigint(key)) % SECP256K1_N;
  // BIP-32 skips such an index; for the dev mnemonic on these paths it never happens, and deriveAccounts would throw.
  if (child === 0n || bytesToBigint(i.subarray(0, 32)) >= SECP256K1_N) throw new Error(`BIP-32 index ${index} gives no key`);
  return { key: bigintToBytes32(child), chainCode: i.subarray(32) };
}

/**
 * True when `address` belongs to a key derived from the dev mnemonic on a path `datagate dev` uses (the first
 * DEV_KEYS_PER_ACCOUNT keys of each DEV_KEY_ACCOUNTS account). Those private keys are printed by `datagate dev`
 * and known to every Ethereum tool, so anyone could sign with them. The set is derived once with node's
 * PBKDF2/HMAC and the chain's secp256k1 backend: the pure-JS BIP-32 of deriveAccounts takes seconds for 256 keys.
 */
export function isDevKey(address: string): boolean {
  if (devAddresses === undefined) {
    const seed = pbkdf2Sync(DEV_MNEMONIC.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512');
    const master = createHmac('sha512', 'Bitcoin seed').update(seed).digest();
    let node: { key: Uint8Array; chainCode: Uint8Array } = { key: master.subarray(0, 32), chainCode: master.subarray(32) };
    for (const index of [44, 60]) node = childKey(node.key, node.chainCode, index + 0x80000000);
    const set = new Set<string>();
    for (const account of Object.values(DEV_KEY_ACCOUNTS)) {
      const acct = childKey(node.key, node.chainCode, account + 0x80000000);
      const parent = childKey(acct.key, acct.chainCode, 0);
      for (let i = 0; i < DEV_KEYS_PER_ACCOUNT; i++) {
        const { key } = childKey(parent.key, parent.chainCode, i);
        set.add(publicKeyToAddress(secp256k1.publicKey(key, false)).toLowerCase());
      }
    }
    devAddresses = set;
  }
  return devAddresses.has(address.toLowerCase());
}
