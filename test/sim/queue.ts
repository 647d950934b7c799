// The simulator's event queue: a binary min-heap ordered by (virtual time, sequence number). The sequence
// number is the insertion order, so items due at the same millisecond come out in the order they were
// scheduled and a run never depends on heap internals.

export interface Scheduled<T> {
  /** Virtual time (integer ms) when the item is due. */
  readonly time: number;
  /** Insertion order, the tie-breaker. */
  readonly seq: number;
  readonly item: T;
}

export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Schedule `item` at integer virtual time `time`. */
  push(time: number, item: T): void {
    if (!Number.isInteger(time)) throw new RangeError(`virtual time must be an integer, got ${time}`);
    const entry = { time, seq: this.nextSeq++, item };
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, h[parent]!)) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
  }

  /** Remove and return the earliest item, or undefined when empty. */
  pop(): Scheduled<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[child]!, last)) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = last;
    return top;
  }
}

function before<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
