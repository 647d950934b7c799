// A dev data directory remembers validator-0's key (validator-record.ts): the first start records it, the
// same key passes (under a new URI too), another key or a forgotten --validator-key is refused with
// VALIDATOR_KEY_CHANGED, and a pin-value in a URI is never written down.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { VALIDATOR_KEY_FILE, checkValidatorKey } from '../../gateway/validator-record.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { tempDirClosingFirst } from '../helpers/temp-dir.ts';

const DERIVED = { address: '0x' + '11'.repeat(20), uri: null };
const HSM = { address: '0x' + '22'.repeat(20), uri: 'pkcs11:token=gw;object=validator?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so' };

test('the first key is remembered; the same key passes, another one or none is VALIDATOR_KEY_CHANGED', { timeout: 30_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  await checkValidatorKey(dir, HSM);
  const file = join(dir, VALIDATOR_KEY_FILE);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.doesNotMatch(readFileSync(file, 'utf8'), /pin-value|1234/);
  await checkValidatorKey(dir, HSM);
  await checkValidatorKey(dir, { ...HSM, address: HSM.address.toUpperCase().replace('0X', '0x') });
  await expectCode(checkValidatorKey(dir, DERIVED), 'VALIDATOR_KEY_CHANGED');
  await expectCode(checkValidatorKey(dir, { address: '0x' + '33'.repeat(20), uri: 'keystore:/other.json' }), 'VALIDATOR_KEY_CHANGED');
  // The same key under another URI (the module moved) is accepted and remembered.
  await checkValidatorKey(dir, { ...HSM, uri: 'pkcs11:token=gw;object=validator' });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).uri, 'pkcs11:token=gw;object=validator');

  const derivedDir = tempDirClosingFirst(t);
  await checkValidatorKey(derivedDir, DERIVED);
  await expectCode(checkValidatorKey(derivedDir, HSM), 'VALIDATOR_KEY_CHANGED');
  writeFileSync(join(derivedDir, VALIDATOR_KEY_FILE), '{"address": 7}');
  await expectCode(checkValidatorKey(derivedDir, DERIVED), 'VALIDATOR_KEY_RECORD_INVALID');
});
