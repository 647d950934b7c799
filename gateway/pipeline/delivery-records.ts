// The pipeline's side of exactly-once delivery (sensors/reading.ts DeliveryTag and DeliveryLog): the tags of
// readings it took whose acknowledgement to the source (MQTT PUBACK) may not have gone out. A tag is held
// from ingest on (so a repeat arriving while its original waits for the group commit is skipped too),
// recorded in the batch that queues its reading (record 0x07 of pipeline-records.ts), and released once the
// source knows its acknowledgement arrived (MQTT: a PINGRESP after the PUBACK, sensors/mqtt-acks.ts; a PUBACK
// merely sent can be lost with its connection); released records are deleted with the next batch.
import type { DeliveryLog, DeliveryTag } from '../../sensors/index.ts';
import { invalid } from './pipeline-options.ts';
import { P_DELIVERY, decodeDelivery, deliveryKey, prefixRange } from './pipeline-records.ts';
import type { Db, Op } from './segment-steps.ts';

/** Longest DeliveryTag key and digest accepted (UTF-16 code units). */
const MAX_TAG_KEY = 512;
const MAX_TAG_DIGEST = 128;

const utf8 = new TextEncoder();

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

export class DeliveryRecords implements DeliveryLog {
  /** key -> digest of the tags held. */
  readonly #held = new Map<string, string>();
  /** Released keys whose records the next batch deletes. */
  #released: string[] = [];

  /** The records the database holds (tags stored before a stop and not released). Throws PIPELINE_STATE_CORRUPT. */
  static async load(db: Db): Promise<DeliveryRecords> {
    const records = new DeliveryRecords();
    for await (const [k, v] of db.iterator(prefixRange(P_DELIVERY))) {
      const { key, digest } = decodeDelivery(k, v);
      records.#held.set(key, digest);
    }
    return records;
  }

  /** A reading with this tag was taken (stored, or being stored) and not yet released. */
  has(tag: DeliveryTag): boolean {
    return this.#held.get(tag.key) === tag.digest;
  }

  /** The source's acknowledgement of this reading's message arrived: its record goes with the next batch. */
  release(tag: DeliveryTag): void {
    if (this.#held.get(tag.key) !== tag.digest) return; // unknown, or the key is in use by a newer message
    this.#held.delete(tag.key);
    this.#released.push(tag.key);
  }

  /**
   * Hold `tag` from now on, before its reading is durable. Should that commit fail, the pipeline fails as a
   * whole, and a repeat skipped meanwhile was acknowledged: the one case where a message is lost, and then
   * the pipeline's status says it failed (docs/architecture.md "Pipeline").
   */
  take(tag: DeliveryTag): void {
    this.#held.set(tag.key, tag.digest);
  }

  /** The write that records `tag`, for the batch that queues its reading. */
  recordOp(tag: DeliveryTag): Op {
    return { type: 'put', key: deliveryKey(tag.key), value: utf8.encode(tag.digest) };
  }

  /**
   * The deletes of the released records (forgotten here once taken). Put them before a batch's records: a key
   * released and taken again by a newer message then ends up recorded.
   */
  takeReleased(): Op[] {
    const keys = this.#released;
    this.#released = [];
    return keys.map((k) => ({ type: 'del', key: deliveryKey(k) }));
  }
}
