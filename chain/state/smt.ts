// A compact binary Merkle trie over 32-byte keys: the commitment behind every header's state root.
// The shape depends only on the set of keys (a key set of one is a leaf, more is a branch split on the
// next key bit), so every node computes the same root whatever the order of updates. Nodes are
// immutable and updates copy only the path they change, so a block can be built or checked against a
// candidate tree and dropped without touching the committed one, and the cost of an update is the depth
// of its path (about log2 of the number of keys), not the size of the state.
import { keccak256 } from '../crypto/index.ts';

/** Root of the empty tree. */
export const EMPTY_ROOT = new Uint8Array(32);

const LEAF_TAG = 0x00;
const BRANCH_TAG = 0x01;

interface Leaf {
  readonly kind: 0;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  hash?: Uint8Array;
}

interface Branch {
  readonly kind: 1;
  readonly left: Node | null;
  readonly right: Node | null;
  hash?: Uint8Array;
}

type Node = Leaf | Branch;

function bitAt(key: Uint8Array, depth: number): number {
  return (key[depth >> 3]! >> (7 - (depth & 7))) & 1;
}

function equalKeys(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}

function nodeHash(node: Node | null): Uint8Array {
  if (node === null) return EMPTY_ROOT;
  if (node.hash !== undefined) return node.hash;
  let buf: Uint8Array;
  if (node.kind === 0) {
    buf = new Uint8Array(1 + 32 + node.value.length);
    buf[0] = LEAF_TAG;
    buf.set(node.key, 1);
    buf.set(node.value, 33);
  } else {
    buf = new Uint8Array(65);
    buf[0] = BRANCH_TAG;
    buf.set(nodeHash(node.left), 1);
    buf.set(nodeHash(node.right), 33);
  }
  const hash = keccak256(buf);
  node.hash = hash;
  return hash;
}

// Two distinct leaves under one parent at `depth`: branch until their key bits differ.
function split(a: Leaf, b: Leaf, depth: number): Branch {
  const ba = bitAt(a.key, depth);
  const bb = bitAt(b.key, depth);
  if (ba !== bb) return ba === 0 ? { kind: 1, left: a, right: b } : { kind: 1, left: b, right: a };
  const child = split(a, b, depth + 1);
  return ba === 0 ? { kind: 1, left: child, right: null } : { kind: 1, left: null, right: child };
}

function insert(node: Node | null, leaf: Leaf, depth: number): Node {
  if (node === null) return leaf;
  if (node.kind === 0) {
    if (equalKeys(node.key, leaf.key)) return leaf;
    return split(node, leaf, depth);
  }
  return bitAt(leaf.key, depth) === 0
    ? { kind: 1, left: insert(node.left, leaf, depth + 1), right: node.right }
    : { kind: 1, left: node.left, right: insert(node.right, leaf, depth + 1) };
}

/** An immutable compact Merkle trie. `set` returns a new tree that shares unchanged nodes. */
export class MerkleTrie {
  private constructor(
    private readonly rootNode: Node | null,
    readonly size: number,
  ) {}

  static empty(): MerkleTrie {
    return new MerkleTrie(null, 0);
  }

  /** A tree with `value` at `key` (32 bytes). The caller must not mutate key or value afterwards. */
  set(key: Uint8Array, value: Uint8Array): MerkleTrie {
    if (key.length !== 32) throw new RangeError(`trie keys are 32 bytes, got ${key.length}`);
    const existed = this.get(key) !== undefined;
    return new MerkleTrie(insert(this.rootNode, { kind: 0, key, value }, 0), existed ? this.size : this.size + 1);
  }

  /** Several updates at once (same result as calling set for each, in order). */
  setMany(entries: Iterable<readonly [Uint8Array, Uint8Array]>): MerkleTrie {
    return [...entries].reduce<MerkleTrie>((tree, [k, v]) => tree.set(k, v), this);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    let node = this.rootNode;
    let depth = 0;
    while (node !== null) {
      if (node.kind === 0) return equalKeys(node.key, key) ? node.value : undefined;
      node = bitAt(key, depth) === 0 ? node.left : node.right;
      depth++;
    }
    return undefined;
  }

  /** The 32-byte root commitment; hashes only nodes created since the last call. */
  root(): Uint8Array {
    return nodeHash(this.rootNode);
  }
}
