import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesToHex, keccak256 } from '../../chain/crypto/index.ts';
import { EMPTY_ROOT, MerkleTrie } from '../../chain/state/smt.ts';

const key = (i: number) => keccak256(new Uint8Array([i >> 8, i & 255]));
const val = (i: number) => new Uint8Array([1, i & 255]);

test('empty trie has the zero root', () => {
  assert.deepEqual(MerkleTrie.empty().root(), EMPTY_ROOT);
});

test('root does not depend on insertion order', () => {
  const ids = Array.from({ length: 200 }, (_, i) => i);
  const forward = MerkleTrie.empty().setMany(ids.map((i) => [key(i), val(i)] as const));
  const shuffled = [...ids].sort((a, b) => ((a * 7919) % 211) - ((b * 7919) % 211));
  const backward = MerkleTrie.empty().setMany(shuffled.map((i) => [key(i), val(i)] as const));
  assert.equal(bytesToHex(forward.root()), bytesToHex(backward.root()));
  assert.equal(forward.size, 200);
});

test('changing one value changes the root, and setting it back restores it', () => {
  const base = MerkleTrie.empty().setMany([0, 1, 2, 3].map((i) => [key(i), val(i)] as const));
  const changed = base.set(key(2), val(99));
  assert.notEqual(bytesToHex(changed.root()), bytesToHex(base.root()));
  assert.equal(bytesToHex(changed.set(key(2), val(2)).root()), bytesToHex(base.root()));
  assert.equal(changed.size, 4);
});

test('updates copy paths: the old tree keeps its values and root', () => {
  const a = MerkleTrie.empty().set(key(1), val(1));
  const rootA = bytesToHex(a.root());
  const b = a.set(key(1), val(2)).set(key(5), val(5));
  assert.deepEqual(a.get(key(1)), val(1));
  assert.equal(a.get(key(5)), undefined);
  assert.equal(bytesToHex(a.root()), rootA);
  assert.deepEqual(b.get(key(5)), val(5));
});

test('keys sharing a long prefix are separated correctly', () => {
  const k1 = new Uint8Array(32);
  const k2 = new Uint8Array(32);
  k2[31] = 1; // differ only in the very last bit
  const t = MerkleTrie.empty().set(k1, val(1)).set(k2, val(2));
  assert.deepEqual(t.get(k1), val(1));
  assert.deepEqual(t.get(k2), val(2));
  const t2 = MerkleTrie.empty().set(k2, val(2)).set(k1, val(1));
  assert.equal(bytesToHex(t.root()), bytesToHex(t2.root()));
});

test('a single leaf commits to its key', () => {
  const a = MerkleTrie.empty().set(key(1), val(7));
  const b = MerkleTrie.empty().set(key(2), val(7));
  assert.notEqual(bytesToHex(a.root()), bytesToHex(b.root()));
  assert.throws(() => a.set(new Uint8Array(31), val(1)), RangeError);
});
