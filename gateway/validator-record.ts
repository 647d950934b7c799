// Which key validator-0 of a dev data directory signs with, remembered in <data dir>/validator-key.json: the
// ledger, WAL and double-sign guard under nodes/validator-0 belong to that key, and a restart that forgot
// --validator-key would otherwise put the derived key in its place without a word. A start with another key
// is refused with the flag to pass. The file holds the address and the key URI (without a pin-value), no secret.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatagateError } from '../chain/index.ts';
import { writeFileAtomic } from '../device/index.ts';

export type ValidatorKeyErrorCode = 'VALIDATOR_KEY_CHANGED' | 'VALIDATOR_KEY_RECORD_INVALID';

/** A start whose validator-0 key is not the one the data directory was made with, or an unreadable record. */
export class ValidatorKeyError extends DatagateError<ValidatorKeyErrorCode> {}

/** Validator-0's key: its address and the --validator-key URI, or null for the key derived from the dev mnemonic. */
export interface ValidatorKeyIdentity {
  readonly address: string;
  readonly uri: string | null;
}

export const VALIDATOR_KEY_FILE = 'validator-key.json';

/** A URI as it may be written down: a pin-value attribute (a secret) is left out. */
function recordableUri(uri: string | null): string | null {
  return uri === null ? null : uri.replace(/([?&;])pin-value=[^&;]*&?/g, '$1').replace(/[?&;]$/, '');
}

function flagFor(id: ValidatorKeyIdentity): string {
  return id.uri === null ? 'no --validator-key (the derived key)' : `--validator-key ${id.uri}`;
}

/**
 * Check that `current` is the key `dataDir` was started with; remember it on the first start (and its new URI
 * when the same key moved). Throws VALIDATOR_KEY_CHANGED saying what to pass, VALIDATOR_KEY_RECORD_INVALID.
 */
export async function checkValidatorKey(dataDir: string, current: ValidatorKeyIdentity): Promise<void> {
  const file = join(dataDir, VALIDATOR_KEY_FILE);
  const now: ValidatorKeyIdentity = { address: current.address.toLowerCase(), uri: recordableUri(current.uri) };
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    let was: ValidatorKeyIdentity;
    try {
      was = JSON.parse(text) as ValidatorKeyIdentity;
      if (typeof was.address !== 'string' || (was.uri !== null && typeof was.uri !== 'string')) throw new Error('not {address, uri}');
    } catch (err) {
      throw new ValidatorKeyError('VALIDATOR_KEY_RECORD_INVALID', `${file} is not a record of validator-0's key (${(err as Error).message}); restore it, or delete it if you know which key this data directory belongs to`, { file }, { cause: err });
    }
    if (was.address.toLowerCase() !== now.address) {
      throw new ValidatorKeyError(
        'VALIDATOR_KEY_CHANGED',
        `data directory ${dataDir} belongs to validator-0 ${was.address}, started with ${flagFor(was)}; this start has ${flagFor(now)} (${now.address}). Pass ${was.uri === null ? 'no --validator-key' : `--validator-key ${was.uri}`}, or another --data-dir for this key`,
        { file, recorded: was.address, given: now.address },
      );
    }
    if (was.uri === now.uri) return;
  }
  await writeFileAtomic(file, JSON.stringify(now, null, 2) + '\n', { mode: 0o600 });
}
