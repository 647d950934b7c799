// The pipeline's side of exactly-once delivery (sensors/reading.ts DeliveryTag and DeliveryLog): the tags of
// readings it took whose acknowledgement to the source (MQTT PUBACK) may not have gone out. A tag is held
// from ingest on (so a repeat arriving while its original waits for the group commit is skipped too),
// recorded in the batch that queues its reading, and released once the source knows its acknowledgement
// arrived (MQTT: a PINGRESP after the PUBACK, sensors/mqtt-acks.ts; a PUBACK merely sent can be lost with its
// connection); released records go with the next batch.
//
// Records (pipeline-records.ts): the tags of one group commit are one delivery group record (0x0A), not one
// record per tag (two LevelDB operations per reading were half of the ingest path's database work). A group
// whose tags are all released is deleted; one released in part gets a released map (0x0B), so a restart holds
// exactly the tags held before it. A tag taken again by a newer message (same key) counts as released in its
// older record. Databases of before the groups may hold one record per tag (0x07): read, and deleted as before.
import type { DeliveryLog, DeliveryTag } from '../../sensors/index.ts';
import { invalid } from './pipeline-options.ts';
import {
  P_DELIVERY, P_DELIVERY_GROUP, P_DELIVERY_RELEASED, decodeDelivery, decodeDeliveryGroup, deliveryKey, encodeDeliveryGroup, isConsumed,
  keyNumber, numberKey, prefixRange,
} from './pipeline-records.ts';
import type { Db, Op } from './segment-steps.ts';

/** Longest DeliveryTag key and digest accepted (UTF-16 code units). */
const MAX_TAG_KEY = 512;
const MAX_TAG_DIGEST = 128;

/** The reading's DeliveryTag, checked; undefined when it has none. Throws PIPELINE_INVALID_INPUT. */
export function checkDeliveryTag(tag: unknown): DeliveryTag | undefined {
  if (tag === undefined) return undefined;
  const t = tag as Partial<DeliveryTag> | null;
  if (typeof t !== 'object' || t === null) throw invalid('reading.delivery', 'must be a DeliveryTag object');
  if (typeof t.key !== 'string' || t.key.length === 0 || t.key.length > MAX_TAG_KEY) throw invalid('reading.delivery.key', `must be a string of 1 to ${MAX_TAG_KEY} characters`);
  if (typeof t.digest !== 'string' || t.digest.length === 0 || t.digest.length > MAX_TAG_DIGEST) throw invalid('reading.delivery.digest', `must be a string of 1 to ${MAX_TAG_DIGEST} characters`);
  if (typeof t.redelivered !== 'boolean') throw invalid('reading.delivery.redelivered', 'must be a boolean');
  // The tag itself, not a copy: it lives as long as its reading is in flight, and its fields are strings.
  return t as DeliveryTag;
}

/** A delivery group record as held in memory. */
interface Group {
  readonly first: number;
  /** Released map, one bit per entry (written as 0x0B when `mapOnDisk` or the group is released in part). */
  readonly released: Uint8Array;
  /** Entries not released. */
  live: number;
  mapOnDisk: boolean;
}

/** A tag held: where it is recorded (a group and its entry, a one-tag record, or nowhere yet). */
export interface HeldTag {
  readonly key: string;
  readonly digest: string;
  group: Group | null;
  index: number;
  /** Recorded as a one-tag record (0x07). */
  readonly single: boolean;
  /** No longer held: released, or taken again by a newer message with the same key. */
  gone: boolean;
}

export class DeliveryRecords implements DeliveryLog {
  /** key -> the tag held under it. */
  readonly #held = new Map<string, HeldTag>();
  /** Keys of one-tag records (0x07) whose deletes the next batch writes. */
  #releasedSingles: string[] = [];
  /** Groups with entries released since the last takeReleased. */
  #touched = new Set<Group>();
  /** Above every loaded group's number: new queue numbers start here at least, or a new group could overwrite one. */
  #above = 0;

  /** The lowest queue number no group on disk was loaded under or above. */
  get numbersAbove(): number {
    return this.#above;
  }

  /** The records the database holds (tags stored before a stop and not released). Throws PIPELINE_STATE_CORRUPT. */
  static async load(db: Db): Promise<DeliveryRecords> {
    const records = new DeliveryRecords();
    for await (const [k, v] of db.iterator(prefixRange(P_DELIVERY))) {
      const { key, digest } = decodeDelivery(k, v);
      records.#hold({ key, digest, group: null, index: -1, single: true, gone: false });
    }
    const maps = new Map<number, Uint8Array>();
    for await (const [k, v] of db.iterator(prefixRange(P_DELIVERY_RELEASED))) maps.set(keyNumber(k), Uint8Array.from(v));
    for await (const [k, v] of db.iterator(prefixRange(P_DELIVERY_GROUP))) {
      const first = keyNumber(k);
      const entries = decodeDeliveryGroup(v, first);
      const map = maps.get(first);
      records.#above = Math.max(records.#above, first + 1);
      const group: Group = { first, released: new Uint8Array((entries.length + 7) >> 3), live: 0, mapOnDisk: map !== undefined };
      if (map !== undefined) group.released.set(map.subarray(0, group.released.length));
      for (let i = 0; i < entries.length; i++) {
        if (isConsumed(group.released, i)) continue;
        group.live++;
        records.#hold({ key: entries[i]!.key, digest: entries[i]!.digest, group, index: i, single: false, gone: false });
      }
      if (group.live === 0) records.#touched.add(group); // wholly released: the next batch deletes it
    }
    return records;
  }

  /** A reading with this tag was taken (stored, or being stored) and not yet released. */
  has(tag: DeliveryTag): boolean {
    return this.#held.get(tag.key)?.digest === tag.digest;
  }

  /** The source's acknowledgement of this reading's message arrived: its record goes with the next batch. */
  release(tag: DeliveryTag): void {
    const h = this.#held.get(tag.key);
    if (h === undefined || h.digest !== tag.digest) return; // unknown, or the key is in use by a newer message
    this.#held.delete(tag.key);
    this.#drop(h);
  }

  /**
   * Hold `tag` from now on, before its reading is durable; the result goes to recordBatch with the reading.
   * Should that commit fail, the pipeline fails as a whole, and a repeat skipped meanwhile was acknowledged: the
   * one case where a message is lost, and then the pipeline's status says it failed (docs/architecture.md "Pipeline").
   */
  take(tag: DeliveryTag): HeldTag {
    const h: HeldTag = { key: tag.key, digest: tag.digest, group: null, index: -1, single: false, gone: false };
    this.#hold(h);
    return h;
  }

  #hold(h: HeldTag): void {
    const older = this.#held.get(h.key);
    this.#held.set(h.key, h);
    if (older !== undefined) this.#drop(older);
  }

  /** `h` is no longer held: mark it released where it is recorded. */
  #drop(h: HeldTag): void {
    h.gone = true;
    if (h.single) this.#releasedSingles.push(h.key);
    const g = h.group;
    if (g === null) return; // not recorded yet: recordBatch records it as released
    g.released[h.index >> 3] = (g.released[h.index >> 3] ?? 0) | (1 << (h.index & 7));
    g.live--;
    this.#touched.add(g);
  }

  /**
   * The write that records the tags of a batch's readings (`held`, in batch order, undefined for untagged
   * readings) as one group numbered `first`; null when none is tagged.
   */
  recordBatch(first: number, held: readonly { readonly delivery: HeldTag | undefined }[]): Op | null {
    const tags: HeldTag[] = [];
    for (const p of held) if (p.delivery !== undefined) tags.push(p.delivery);
    if (tags.length === 0) return null;
    const group: Group = { first, released: new Uint8Array((tags.length + 7) >> 3), live: 0, mapOnDisk: false };
    for (let i = 0; i < tags.length; i++) {
      const h = tags[i]!;
      if (h.gone) {
        group.released[i >> 3] = (group.released[i >> 3] ?? 0) | (1 << (i & 7));
        this.#touched.add(group);
        continue;
      }
      h.group = group;
      h.index = i;
      group.live++;
    }
    return { type: 'put', key: numberKey(P_DELIVERY_GROUP, first), value: encodeDeliveryGroup(tags) };
  }

  /**
   * The writes of the releases since the last call: deletes of released one-tag records and wholly released
   * groups, released maps of the others. Put them before a batch's records (a group recorded in this same batch
   * is not touched before it is written: it gets its map from the next batch on).
   */
  takeReleased(): Op[] {
    const ops: Op[] = [];
    for (const key of this.#releasedSingles) ops.push({ type: 'del', key: deliveryKey(key) });
    this.#releasedSingles = [];
    for (const g of this.#touched) {
      if (g.live === 0) {
        ops.push({ type: 'del', key: numberKey(P_DELIVERY_GROUP, g.first) });
        if (g.mapOnDisk) ops.push({ type: 'del', key: numberKey(P_DELIVERY_RELEASED, g.first) });
      } else {
        ops.push({ type: 'put', key: numberKey(P_DELIVERY_RELEASED, g.first), value: Uint8Array.from(g.released) });
        g.mapOnDisk = true;
      }
    }
    this.#touched = new Set();
    return ops;
  }
}
