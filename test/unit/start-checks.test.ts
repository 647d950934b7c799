// The checks `datagate start` makes before opening stores (start-checks.ts): dev-mnemonic keys are refused on
// any chain but the dev chain's, and a data directory stays bound to the first genesis it was started with.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEV_KEYS_PER_ACCOUNT, DEV_KEY_ACCOUNTS, DEV_MNEMONIC, deriveAccounts, isDevKey } from '../../gateway/dev-accounts.ts';
import { DEV_CHAIN_ID } from '../../gateway/config/dev-config.ts';
import { GENESIS_HASH_FILE, checkDataDirGenesis, checkStartKey } from '../../gateway/start-checks.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { tempDirClosingFirst } from '../helpers/temp-dir.ts';

test('isDevKey agrees with deriveAccounts on every dev path, and only there', { timeout: 60_000 }, () => {
  for (const account of Object.values(DEV_KEY_ACCOUNTS)) {
    for (const a of deriveAccounts(DEV_MNEMONIC, DEV_KEYS_PER_ACCOUNT, account)) assert.ok(isDevKey(a.address), a.path);
    assert.ok(isDevKey(deriveAccounts(DEV_MNEMONIC, 1, account)[0]!.address.toUpperCase().replace('0X', '0x')));
  }
  const beyond = deriveAccounts(DEV_MNEMONIC, DEV_KEYS_PER_ACCOUNT + 1, 1).at(-1)!;
  assert.equal(isDevKey(beyond.address), false);
  assert.equal(isDevKey(deriveAccounts(DEV_MNEMONIC, 1, 4)[0]!.address), false);
  assert.equal(isDevKey('0x' + '11'.repeat(20)), false);
  // Hardhat's and Anvil's account 0.
  assert.ok(isDevKey('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'));
});

test('checkStartKey refuses a dev key on any chain but the dev chain', { timeout: 60_000 }, async () => {
  const validator = deriveAccounts(DEV_MNEMONIC, 1, DEV_KEY_ACCOUNTS.validators)[0]!.address;
  checkStartKey(validator, DEV_CHAIN_ID);
  checkStartKey('0x' + '11'.repeat(20), 4242n);
  const fields = await expectCode(() => checkStartKey(validator, 4242n, 'keys.validator'), 'DEV_KEY_REFUSED');
  assert.equal(fields.address, validator);
  assert.throws(() => checkStartKey(validator, 1), /keys|datagate key new/);
});

test('the data directory keeps its first genesis hash; another is GENESIS_MISMATCH naming both', { timeout: 30_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  const a = '0x' + 'aa'.repeat(32);
  const b = '0x' + 'bb'.repeat(32);
  await checkDataDirGenesis(dir, a);
  const file = join(dir, GENESIS_HASH_FILE);
  assert.equal(readFileSync(file, 'utf8').trim(), a);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  await checkDataDirGenesis(dir, a.toUpperCase().replace('0X', '0x'));
  const fields = await expectCode(checkDataDirGenesis(dir, b), 'GENESIS_MISMATCH');
  assert.deepEqual([fields.recorded, fields.given], [a, b]);
  writeFileSync(file, 'garbage');
  await expectCode(checkDataDirGenesis(dir, a), 'GENESIS_RECORD_INVALID');
});
