// The node's libp2p identity (peer-key.ts): made once, 0600, the same peer id on every load; a key file open
// to others or not a key is refused with a code that says what to do.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { PEER_KEY_FILE, loadOrCreatePeerKey } from '../../gateway/peer-key.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { tempDirClosingFirst } from '../helpers/temp-dir.ts';

test('made on first use (0600, Ed25519), the same peer id afterwards', { timeout: 30_000 }, async (t) => {
  const dir = join(tempDirClosingFirst(t), 'node');
  const first = await loadOrCreatePeerKey(dir);
  assert.equal(first.created, true);
  assert.equal(first.privateKey.type, 'Ed25519');
  const file = join(dir, PEER_KEY_FILE);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(privateKeyFromProtobuf(readFileSync(file)).type, 'Ed25519');
  assert.match(first.peerId.toString(), /^12D3KooW/);
  const again = await loadOrCreatePeerKey(dir);
  assert.equal(again.created, false);
  assert.equal(again.peerId.toString(), first.peerId.toString());
});

test('concurrent first calls agree on one key', { timeout: 30_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  const keys = await Promise.all([loadOrCreatePeerKey(dir), loadOrCreatePeerKey(dir), loadOrCreatePeerKey(dir)]);
  assert.equal(new Set(keys.map((k) => k.peerId.toString())).size, 1);
});

test('a key open to others is PEER_KEY_EXPOSED, garbage is PEER_KEY_INVALID', { timeout: 30_000 }, async (t) => {
  const dir = tempDirClosingFirst(t);
  await loadOrCreatePeerKey(dir);
  const file = join(dir, PEER_KEY_FILE);
  chmodSync(file, 0o644);
  await expectCode(loadOrCreatePeerKey(dir), 'PEER_KEY_EXPOSED');
  writeFileSync(file, 'not a key', { mode: 0o600 });
  chmodSync(file, 0o600);
  await expectCode(loadOrCreatePeerKey(dir), 'PEER_KEY_INVALID');
});
