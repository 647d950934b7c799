import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesToHex } from '../../chain/crypto/index.ts';
import { WorldState, decodeAccount, encodeAccount } from '../../chain/state/world.ts';

const A = '0x' + '11'.repeat(20);
const B = '0x' + '22'.repeat(20);

test('account encoding round-trips', () => {
  const acc = { nonce: 5n, balance: 10n ** 22n };
  assert.deepEqual(decodeAccount(encodeAccount(acc)), acc);
  assert.throws(() => decodeAccount(new Uint8Array(63)), RangeError);
});

test('an overlay does not touch committed state until committed', () => {
  const state = WorldState.fromAccounts([[A, { nonce: 0n, balance: 100n }]]);
  const rootBefore = bytesToHex(state.root());
  const o = state.overlay();
  o.setAccount(A, { nonce: 1n, balance: 40n });
  o.setAccount(B, { nonce: 0n, balance: 60n });
  assert.equal(state.account(A).balance, 100n);
  assert.equal(o.account(B).balance, 60n);
  const sealedRoot = bytesToHex(o.seal().root);
  assert.equal(bytesToHex(state.root()), rootBefore);
  state.commit(o);
  assert.equal(state.account(A).nonce, 1n);
  assert.equal(bytesToHex(state.root()), sealedRoot);
  assert.throws(() => o.setAccount(A, { nonce: 9n, balance: 0n }));
});

test('state rebuilt from stored accounts has the same root as incremental updates', () => {
  const state = WorldState.fromAccounts([[A, { nonce: 0n, balance: 100n }]]);
  const o = state.overlay();
  o.setAccount(A, { nonce: 1n, balance: 40n });
  o.setAccount(B, { nonce: 0n, balance: 60n });
  state.commit(o);
  const rebuilt = WorldState.fromAccounts([
    [B, { nonce: 0n, balance: 60n }],
    [A, { nonce: 1n, balance: 40n }],
  ]);
  assert.equal(bytesToHex(rebuilt.root()), bytesToHex(state.root()));
});

test('an overlay opened on another state cannot be committed', () => {
  const s1 = WorldState.empty();
  const s2 = WorldState.empty();
  assert.throws(() => s1.commit(s2.overlay()));
});
