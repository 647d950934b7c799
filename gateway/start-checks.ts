// Checks `datagate start` makes before it opens any store: that no committee key is one of the public dev keys
// on a real chain, and that the data directory belongs to the genesis it is started with. A data directory
// holds a ledger, a WAL and double-sign guard state that are only meaningful for one chain; started against
// another genesis, a node would vote from state that is not its own. See docs/architecture.md "Provisioning a
// committee".
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatagateError } from '../chain/index.ts';
import { writeFileAtomic } from '../device/index.ts';
import { DEV_CHAIN_ID } from './config/dev-config.ts';
import { isDevKey } from './dev-accounts.ts';

export type StartCheckErrorCode = 'DEV_KEY_REFUSED' | 'GENESIS_MISMATCH' | 'GENESIS_RECORD_INVALID';

/** A start refused before anything opened: a dev key on a real chain, or a data directory of another chain. */
export class StartCheckError extends DatagateError<StartCheckErrorCode> {}

/** The file in a data directory that records the genesis hash of its chain. */
export const GENESIS_HASH_FILE = 'genesis-hash';

/**
 * Refuse (DEV_KEY_REFUSED) a key derived from the dev mnemonic, whose private key is public, on any chain but
 * the dev chain's. `what` names the key in the message (e.g. "keys.validator").
 */
export function checkStartKey(address: string, chainId: bigint | number, what = 'the key'): void {
  if (BigInt(chainId) === BigInt(DEV_CHAIN_ID) || !isDevKey(address)) return;
  throw new StartCheckError(
    'DEV_KEY_REFUSED',
    `${what} ${address} is derived from the public dev mnemonic (datagate dev prints its private key); on chain ${chainId} anyone could sign with it. Make a key of your own (datagate key new), enrol it (datagate init) and use it`,
    { address, chainId: String(chainId) },
  );
}

/**
 * Bind `dataDir` (which must exist) to `genesisHash` on the first start and refuse another one afterwards
 * (GENESIS_MISMATCH, naming both). An unreadable record is GENESIS_RECORD_INVALID.
 */
export async function checkDataDirGenesis(dataDir: string, genesisHash: string): Promise<void> {
  const file = join(dataDir, GENESIS_HASH_FILE);
  const want = genesisHash.toLowerCase();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await writeFileAtomic(file, want + '\n', { mode: 0o600 });
    return;
  }
  const recorded = text.trim().toLowerCase();
  if (!/^0x[0-9a-f]{64}$/.test(recorded)) {
    throw new StartCheckError('GENESIS_RECORD_INVALID', `${file} does not hold a genesis hash (got ${JSON.stringify(text.slice(0, 80))}); restore it, or write the hash of the genesis this data directory was made with`, { file });
  }
  if (recorded !== want) {
    throw new StartCheckError(
      'GENESIS_MISMATCH',
      `data directory ${dataDir} belongs to the chain with genesis hash ${recorded}, but the genesis file gives ${want}; start with the genesis file this node joined, or use another dataDir for the new chain`,
      { dataDir, recorded, given: want },
    );
  }
}
