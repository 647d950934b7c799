// Ordered binary Merkle root (RFC 6962 style) for the transaction and receipt roots of a header.
// Leaves and inner nodes are hashed with distinct prefixes, so a leaf can never pose as a node.
import { keccak256 } from './crypto/index.ts';

const EMPTY = keccak256(new Uint8Array(0));

function leafHash(item: Uint8Array): Uint8Array {
  const buf = new Uint8Array(item.length + 1);
  buf[0] = 0;
  buf.set(item, 1);
  return keccak256(buf);
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return keccak256(buf);
}

/** Merkle root of `items` in order; keccak256("") for an empty list. */
export function merkleRoot(items: readonly Uint8Array[]): Uint8Array {
  if (items.length === 0) return EMPTY;
  let level = items.map(leafHash);
  // Pairs nodes left to right; an odd last node moves up unchanged (never duplicated, so two
  // different lists cannot share a root the way Bitcoin's duplicated-leaf trees can).
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}
