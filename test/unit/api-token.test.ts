// The admin API's token file: made once (64 hex digits, mode 0600), the same token on every later start, and
// refused with a clear error when others may read it or it holds no token.
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TOKEN_FILE, loadOrCreateApiToken } from '../../gateway/api/content-api.ts';
import { tempDir } from '../helpers/chain.ts';
import { expectCode } from '../helpers/expect-code.ts';

test('the API token is made once, 0600, and kept; a token file open to others or without a token is refused', async (t) => {
  const dir = tempDir(t);
  const [a, b] = await Promise.all([loadOrCreateApiToken(dir), loadOrCreateApiToken(dir)]); // two starts racing: one file
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(b, a);
  assert.equal(statSync(join(dir, TOKEN_FILE)).mode & 0o777, 0o600);
  assert.equal(await loadOrCreateApiToken(dir), a);

  chmodSync(join(dir, TOKEN_FILE), 0o640);
  const fields = await expectCode(loadOrCreateApiToken(dir), 'API_TOKEN_INVALID');
  assert.equal(fields['file'], join(dir, TOKEN_FILE));
  chmodSync(join(dir, TOKEN_FILE), 0o600);
  writeFileSync(join(dir, TOKEN_FILE), 'hunter2\n');
  await expectCode(loadOrCreateApiToken(dir), 'API_TOKEN_INVALID');
});
