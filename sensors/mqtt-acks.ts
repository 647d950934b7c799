// The deferred PUBACKs of one MQTT connection, when the PUBACK waits for a durable consumer (ackAfterConsumer).
//
// Many messages per commit. mqtt.js hands the next PUBLISH over only after the previous one's handler is done,
// so a PUBACK held in that handler means one message per consumer commit. The driver therefore lets mqtt.js go
// on at once and keeps the PUBACK here; the broker bounds what it sends unacknowledged (MQTT 5 receive
// maximum, mosquitto's max_inflight_messages for 3.1.1), so the socket is always read and a PINGRESP never
// waits behind a backlog. PUBACKs go out in the order the messages arrived (MQTT 3.1.1 4.6), each once all the
// readings of its message are durable.
//
// When a delivery record may go. A PUBACK handed to the socket is not yet a PUBACK the broker has read: the
// connection can drop first (a keepalive timeout tears it down with data pending), and the broker then
// delivers the message again. So the consumer keeps the delivery tags of a message until the broker has
// provably read its PUBACK: the driver sends a PINGREQ after a run of PUBACKs, and the broker answers
// packets in order, so the PINGRESP to that PINGREQ (counted among every PINGREQ sent on the connection,
// mqtt.js's keepalive pings included) confirms every PUBACK written before it. Tags of a connection that
// drops before that stay held: the redelivered message is recognised and not stored twice.
import type { DeliveryLog, DeliveryTag, Reading } from './reading.ts';

interface Pending {
  readonly messageId: number;
  /** Readings of the message not yet acknowledged. */
  remaining: number;
  readonly tags: readonly DeliveryTag[];
}

/** What the window needs of its connection: write a PUBACK, send a PINGREQ. */
export interface AckTransport {
  puback(messageId: number): void;
  ping(): void;
}

export class AckWindow {
  readonly #transport: AckTransport;
  readonly #deliveries: DeliveryLog | null;
  /** Messages not yet acknowledged, in arrival order. */
  readonly #fifo: Pending[] = [];
  readonly #byReading = new Map<Reading, Pending>();
  /** Tags whose PUBACKs were written since the last confirming PINGREQ. */
  #written: DeliveryTag[] = [];
  /** Our outstanding PINGREQ: the PINGREQ count on this connection it is, and the tags it confirms. */
  #confirming: { readonly ping: number; readonly tags: readonly DeliveryTag[] } | null = null;
  #pingsSent = 0;
  #pingsAnswered = 0;

  constructor(transport: AckTransport, deliveries: DeliveryLog | null) {
    this.#transport = transport;
    this.#deliveries = deliveries;
  }

  /** Messages received and not yet acknowledged. */
  get size(): number {
    return this.#fifo.length;
  }

  /** A QoS 1 message whose PUBACK waits until each of `readings` is acknowledged (at once when there are none). */
  add(messageId: number, readings: readonly Reading[], tags: readonly DeliveryTag[]): void {
    const p: Pending = { messageId, remaining: readings.length, tags };
    this.#fifo.push(p);
    for (const r of readings) this.#byReading.set(r, p);
    if (readings.length === 0) this.#flush();
  }

  /** The consumer made `reading` durable. False when the reading is not in this window (its connection is gone). */
  acknowledge(reading: Reading): boolean {
    const p = this.#byReading.get(reading);
    if (p === undefined) return false;
    this.#byReading.delete(reading);
    p.remaining--;
    if (p.remaining === 0 && this.#fifo[0] === p) this.#flush();
    return true;
  }

  /** True when `reading` is waiting in this window. */
  holds(reading: Reading): boolean {
    return this.#byReading.has(reading);
  }

  /** mqtt.js wrote a packet on this connection. */
  sent(cmd: string): void {
    if (cmd === 'pingreq') this.#pingsSent++;
  }

  /** mqtt.js read a packet on this connection: a PINGRESP confirms the PUBACKs written before its PINGREQ. */
  received(cmd: string): void {
    if (cmd !== 'pingresp') return;
    this.#pingsAnswered++;
    const c = this.#confirming;
    if (c === null || c.ping > this.#pingsAnswered) return;
    this.#confirming = null;
    for (const t of c.tags) this.#deliveries?.release(t);
    this.#confirm();
  }

  /** PUBACK every complete message at the head, in arrival order, then ask the broker to confirm them. */
  #flush(): void {
    while (this.#fifo.length > 0 && this.#fifo[0]!.remaining === 0) {
      const p = this.#fifo.shift()!;
      this.#transport.puback(p.messageId);
      for (const t of p.tags) this.#written.push(t);
    }
    this.#confirm();
  }

  #confirm(): void {
    if (this.#confirming !== null || this.#written.length === 0 || this.#deliveries === null) {
      if (this.#deliveries === null) this.#written = [];
      return;
    }
    const tags = this.#written;
    this.#written = [];
    this.#transport.ping();
    this.#confirming = { ping: this.#pingsSent, tags };
  }
}
