// A generic binary heap: the priority queue behind the transaction pool's block selection and eviction.
// Items can learn their slot (through `moved`) so a caller can re-order or remove one in O(log n).

/**
 * Binary heap ordered by `before` (true when `a` belongs above `b`); the top is the item no other item
 * comes before. `moved(item, index)` is called whenever an item lands in a slot, with -1 when it leaves,
 * so items can remember their slot for `fix` and `remove`. `items` given to the constructor are taken
 * over (not copied) and heapified in O(n).
 */
export class Heap<T> {
  readonly items: T[];
  readonly #before: (a: T, b: T) => boolean;
  readonly #moved: (item: T, index: number) => void;

  constructor(before: (a: T, b: T) => boolean, moved: (item: T, index: number) => void = () => {}, items: T[] = []) {
    this.#before = before;
    this.#moved = moved;
    this.items = items;
    items.forEach((item, i) => moved(item, i));
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  /** Number of items held. */
  get size(): number {
    return this.items.length;
  }

  /** The top item without removing it; undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds `item` in O(log n). */
  push(item: T): void {
    this.items.push(item);
    this.#moved(item, this.items.length - 1);
    this.#up(this.items.length - 1);
  }

  /** Removes and returns the top item; undefined when empty. */
  pop(): T | undefined {
    return this.items.length === 0 ? undefined : this.remove(0);
  }

  /** Removes and returns the item at `index`. */
  remove(index: number): T {
    const items = this.items;
    const item = items[index] as T;
    const last = items.pop() as T;
    if (index < items.length) {
      items[index] = last;
      this.#moved(last, index);
      this.fix(index);
    }
    this.#moved(item, -1);
    return item;
  }

  /** Restores heap order after the key of the item at `index` changed. */
  fix(index: number): void {
    if (!this.#up(index)) this.#down(index);
  }

  /** Moves the item at `i` up while it comes before its parent; true when it moved. */
  #up(i: number): boolean {
    const items = this.items;
    const item = items[i] as T;
    const start = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (!this.#before(item, parent)) break;
      items[i] = parent;
      this.#moved(parent, i);
      i = p;
    }
    items[i] = item;
    this.#moved(item, i);
    return i !== start;
  }

  /** Moves the item at `i` down while a child comes before it. */
  #down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#before(items[r] as T, items[l] as T) ? r : l;
      const child = items[c] as T;
      if (!this.#before(child, item)) break;
      items[i] = child;
      this.#moved(child, i);
      i = c;
    }
    items[i] = item;
    this.#moved(item, i);
  }
}
