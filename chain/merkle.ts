// Ordered binary Merkle root (RFC 6962 style) for the transaction and receipt roots of a header and the
// readings of a data segment. Leaves and inner nodes are hashed with distinct prefixes, so a leaf can never
// pose as a node. MerkleAccumulator computes the same root one item at a time, keeping only O(log n) hashes.
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

/**
 * The root of merkleRoot() built one item at a time: append() hashes the leaf and merges equal-height
 * subtrees at once (one node hash per item on average), root() folds the O(log n) subtree roots that are
 * left. The same as merkleRoot(items) for every n: pairing left to right with the odd node moved up makes
 * a left-full tree whose perfect subtrees are exactly those of the binary digits of n (RFC 6962 section 2.1).
 * Lets a segment's root be computed as its readings arrive instead of in one long pass when it closes.
 */
export class MerkleAccumulator {
  /** Roots of the perfect subtrees, tallest first, with their heights (strictly decreasing). */
  readonly #roots: Uint8Array[] = [];
  readonly #heights: number[] = [];
  #count = 0;

  /** Items appended so far. */
  get count(): number {
    return this.#count;
  }

  append(item: Uint8Array): void {
    let hash = leafHash(item);
    let height = 0;
    while (this.#heights.length > 0 && this.#heights[this.#heights.length - 1] === height) {
      hash = nodeHash(this.#roots.pop()!, hash);
      this.#heights.pop();
      height++;
    }
    this.#roots.push(hash);
    this.#heights.push(height);
    this.#count++;
  }

  /** merkleRoot() of the items appended so far (the accumulator can go on after). */
  root(): Uint8Array {
    if (this.#roots.length === 0) return EMPTY;
    let acc = this.#roots[this.#roots.length - 1]!;
    for (let i = this.#roots.length - 2; i >= 0; i--) acc = nodeHash(this.#roots[i]!, acc);
    return acc;
  }
}
