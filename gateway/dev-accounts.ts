// The well-known development accounts: the first keys of the mnemonic every Ethereum dev node
// (Hardhat, Anvil) prefunds, so wallets and scripts work against `datagate dev` unchanged.
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { bytesToHex, publicKeyToAddress, secp256k1 } from '../chain/index.ts';

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
