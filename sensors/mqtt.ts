// MQTT source: subscribes to topic filters on a broker (mosquitto, the embedded aedes broker, anything that
// speaks MQTT 3.1.1 or 5) and turns each message into a Reading whose stream name is filled from the
// wildcard levels of its topic. Malformed messages are counted rejects, never exceptions.
//
// Delivery. QoS 1 on a persistent session: a fixed clientId ('datagate-' + name), clean: false and, on MQTT 5,
// a session expiry of a week, so the broker queues what devices publish while the gateway restarts and
// delivers it on reconnect. By default a message is acknowledged (PUBACK) once its reading is in the driver's
// bounded queue; readings still in that queue when the process dies are lost (at most the queue's high-water
// mark), and a message whose PUBACK did not reach the broker is delivered again (at least once). Feeding a
// durable consumer (ackAfterConsumer), the PUBACK waits until the consumer has stored every reading of the
// message, and with a DeliveryLog each reading of a QoS 1 message carries a DeliveryTag (client id, packet
// id, index; digest of topic and payload) that the consumer stores with it: a message redelivered (DUP)
// after a crash or a lost connection between storing and PUBACK is acknowledged without being emitted again,
// so every message is stored exactly once. The consumer forgets a tag only once the broker has provably
// read its PUBACK (mqtt-acks.ts); a packet id the broker reuses for another message arrives with DUP=0 and
// replaces the record when stored.
//
// Throughput. Deferred PUBACKs do not hold mqtt.js's one-packet-at-a-time handler (mqtt-acks.ts): up to
// RECEIVE_MAXIMUM messages are in flight at once (MQTT 5 receive maximum; for 3.1.1 the broker's
// max_inflight_messages, which deploy/mosquitto/datagate.conf raises), so one group commit stores many.
//
// Backpressure. While DriverBase has paused the source (its queue is full), the driver keeps mqtt.js's
// handler callback (and the packet, unparsed): mqtt.js stops reading the socket, TCP flow control holds the
// broker, and the broker keeps the unacknowledged messages. On resume the held packet is parsed. With the
// in-flight window below the queue's high-water mark this rarely happens (a broker without an in-flight
// bound, or messages matching several subscriptions). `customHandleAcks` was not chosen: mqtt.js uses it
// only with MQTT 5, and its callback picks a PUBACK reason code rather than deferring the ack. Caveats:
// mosquitto queues at most `max_queued_messages` (1000 by default) per client and DROPS the rest, whether
// the driver is offline, paused, or just behind a burst, so the broker must be configured with a larger
// `max_queued_messages`. A consumer that refuses a reading (a full pipeline) makes the driver drop the
// connection and reconnect after backoff, so the broker delivers what was not acknowledged again.
//
// Streams. A wildcard level in a stream template makes one stream per topic; a source takes at most
// `maxStreams` (default 1000) and rejects readings of further streams as 'stream-limit' (counted).
//
// Reconnects go through the drivers' one reconnect path (reconnect.ts: capped exponential backoff, status
// 'retrying' with nextAttemptAt):
// mqtt.js's reconnectPeriod is a fixed interval, so it is set to 0 and the driver calls client.reconnect().
// Retained messages replayed on subscribe are stale values with no arrival time of their own: they are
// counted as 'retained' rejects, not readings (live messages reach subscribers without the retain flag).
import { hash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { DriverBase } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { AckWindow } from './mqtt-acks.ts';
import { DEFAULT_MAX_STREAMS, RECEIVE_MAXIMUM, SESSION_EXPIRY_SEC, redactUrl, validateMqttConfig, type MqttDriverConfig, type MqttDriverOptions } from './mqtt-config.ts';
import { SensorError } from './reading.ts';
import type { Reconnector } from './reconnect.ts';
import type { DeliveryLog, DeliveryTag, Reading } from './reading.ts';
import { matchTopic, parsePayload, resolveStream, type CompiledSubscription } from './mqtt-topics.ts';

export { DEFAULT_MAX_STREAMS, RECEIVE_MAXIMUM, SESSION_EXPIRY_SEC, validateMqttConfig, type MqttDriverConfig, type MqttDriverOptions };

/** Passed to mqtt.js's handler callback: go on with the next packet, this PUBACK is sent by the AckWindow. */
const PUBACK_DEFERRED = new Error('PUBACK deferred until the readings are durable');

const STOP_TIMEOUT_MS = 5_000;
/** Topics whose stream a subscription remembers (then it starts over). */
const TOPICS_REMEMBERED = 4096;

type PublishPacket = Parameters<MqttClient['handleMessage']>[0];
type Done = Parameters<MqttClient['handleMessage']>[1];

/** A SensorDriver reading MQTT topics; see the file comment for delivery, backpressure and reconnects. */
export class MqttDriver extends DriverBase implements SensorDriver {
  private readonly cfg: MqttDriverConfig;
  private readonly subs: readonly CompiledSubscription[];
  private readonly clientId: string;
  private readonly signal: AbortSignal | undefined;
  private readonly reconnect: Reconnector;
  private client: MqttClient | null = null;
  /** Counts CONNACKs, so a subscribe that outlived its connection can tell. */
  private connections = 0;
  private subscribed = false;
  private lastError: string | null = null;
  private sourcePaused = false;
  private held: { readonly packet: PublishPacket; readonly done: Done } | null = null;
  /** With ackAfterConsumer: the deferred PUBACKs of the current connection (a new window per connection). */
  private acks: AckWindow | null = null;
  /** Connections dropped in a row because the consumer refused a reading: the reconnect backs off. */
  private refusals = 0;
  private readonly streams = new Set<string>();
  private readonly topicStreams = new Map<CompiledSubscription, Map<string, ReturnType<typeof resolveStream>>>();
  /**
   * Tagged readings handed to the consumer and not yet acknowledged or refused, by tag key: a message
   * redelivered after a lost connection while its first copy is still on its way is not emitted again, and
   * its PUBACK waits for that copy (acknowledging it at once could lose it if the gateway then died).
   */
  private readonly unsettled = new Map<string, Reading>();
  private readonly maxStreams: number;
  private readonly deferAck: boolean;
  private readonly observer: boolean;
  private readonly deliveries: DeliveryLog | null;
  private stopping = false;
  private settleStart: (() => void) | null = null;

  /** Throws SensorError SENSOR_CONFIG_INVALID for a bad config (see validateMqttConfig); never afterwards. */
  constructor(config: MqttDriverConfig, ctx: DriverContext, opts: MqttDriverOptions = {}) {
    const subs = validateMqttConfig(config);
    // Above the in-flight window: a window of messages waiting for their commit must not pause the socket.
    super(config.name, ctx, opts.highWater ?? (opts.ackAfterConsumer === true ? 2 * RECEIVE_MAXIMUM : undefined));
    this.cfg = { ...config, subscriptions: [...config.subscriptions] };
    this.subs = subs;
    this.observer = opts.observer ?? false;
    this.clientId = this.observer ? `dgwatch-${randomBytes(6).toString('hex')}` : (config.clientId ?? `datagate-${config.name}`);
    this.signal = ctx.signal;
    this.reconnect = this.reconnects(config.reconnect, () => {
      if (!this.stopping) this.client?.reconnect();
    }, { timers: opts.timers, random: opts.random });
    this.deferAck = opts.ackAfterConsumer ?? false;
    this.deliveries = this.deferAck ? (opts.deliveries ?? null) : null;
    this.maxStreams = config.maxStreams ?? DEFAULT_MAX_STREAMS;
  }


  /**
   * Reads the TLS files and connects. Resolves once the first attempt has settled (connected and subscribed,
   * or failed and retrying); network trouble never rejects. Rejects for unreadable TLS files (MQTT_TLS_FILE).
   */
  async start(): Promise<void> {
    if (this.client !== null || this.stopping) return;
    if (this.signal?.aborted === true) return this.stop();
    const pv = this.cfg.protocolVersion ?? 5;
    const opts: IClientOptions = {
      clientId: this.clientId,
      protocolVersion: pv,
      clean: this.observer,
      reconnectPeriod: 0,
      manualConnect: true,
      resubscribe: false,
      connectTimeout: 10_000,
      keepalive: this.cfg.keepaliveSec ?? 60,
      ...(this.cfg.username !== undefined && { username: this.cfg.username }),
      ...(this.cfg.password !== undefined && { password: this.cfg.password }),
      ...(pv === 5 && { properties: { sessionExpiryInterval: this.observer ? 0 : SESSION_EXPIRY_SEC, ...(this.deferAck && { receiveMaximum: RECEIVE_MAXIMUM }) } }),
      ...(await this.readTls()),
    };
    const client = connect(this.cfg.url, opts);
    this.client = client;
    client.handleMessage = (packet, done) => this.onPublish(packet, done);
    this.acks = this.newAckWindow(client);
    client.on('packetsend', (p) => this.acks?.sent(p.cmd));
    client.on('packetreceive', (p) => this.acks?.received(p.cmd));
    client.on('connect', (connack) => void this.onConnect(client, connack.sessionPresent));
    client.on('close', () => this.onClose(client));
    client.on('error', (err) => {
      this.lastError = err.message;
      this.log.debug('mqtt error', { error: err.message, code: (err as { code?: unknown }).code });
    });
    client.on('disconnect', (packet) => {
      this.lastError = `broker sent DISCONNECT (reason ${packet.reasonCode ?? 0})`;
    });
    this.signal?.addEventListener('abort', () => void this.stop(), { once: true });
    const settled = new Promise<void>((resolve) => (this.settleStart = resolve));
    this.log.info('connecting', { url: redactUrl(this.cfg.url), clientId: this.clientId, protocolVersion: pv });
    client.connect();
    await settled;
  }

  /** Ends the session cleanly (DISCONNECT; the broker keeps the session for the next start) and ends readings(). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.reconnect.stop();
    this.held = null; // never acknowledged: the broker delivers it again to the next session
    this.acks = null;
    const client = this.client;
    if (client !== null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => client.end(true, () => resolve()), STOP_TIMEOUT_MS);
        client.end(!client.connected, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.setStatus({ state: 'stopped' });
    this.endReadings();
    this.settle();
  }

  protected override pauseSource(): void {
    this.sourcePaused = true;
  }

  protected override resumeSource(): void {
    this.sourcePaused = false;
    const held = this.held;
    if (held === null) return;
    this.held = null;
    // Outside readings().next(): parsing may queue a reading and pause again.
    setImmediate(() => {
      if (this.stopping) return;
      this.handleThenAck(held.packet, held.done);
    });
  }

  private async readTls(): Promise<Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'>> {
    const tls = this.cfg.tls;
    if (tls === undefined) return {};
    const out: Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> = {};
    for (const k of ['ca', 'cert', 'key'] as const) {
      const path = tls[k];
      if (path === undefined) continue;
      try {
        out[k] = await readFile(path);
      } catch (err) {
        throw new SensorError('MQTT_TLS_FILE', `tls.${k}: cannot read ${path}; check the path and its permissions`, { path }, { cause: err });
      }
    }
    if (tls.rejectUnauthorized !== undefined) out.rejectUnauthorized = tls.rejectUnauthorized;
    return out;
  }

  private async onConnect(client: MqttClient, sessionPresent: boolean): Promise<void> {
    const gen = ++this.connections;
    this.reconnect.resetAttempts();
    this.lastError = null;
    // A resumed session still holds our subscriptions; a new one (first start, expired, broker without
    // persistence) needs them made. The first connect of this driver always subscribes: the configuration
    // may have changed since the session was made.
    if (!sessionPresent || !this.subscribed) {
      const failure = await this.subscribeAll(client);
      if (failure === 'closed' || gen !== this.connections || this.stopping) return; // onClose retries, or stop() won
      if (failure !== null) {
        this.log.error('subscription refused by the broker; check its ACL and the topic filter', { reason: failure });
        this.reconnect.fail(failure);
        this.stopping = true;
        client.end(true);
        this.endReadings();
        this.settle();
        return;
      }
      this.subscribed = true;
    }
    this.log.info('connected', { url: redactUrl(this.cfg.url), sessionPresent });
    this.reconnect.connected();
    this.settle();
  }

  /** null when every subscription was granted; 'closed' when the connection went away meanwhile; else why. */
  private async subscribeAll(client: MqttClient): Promise<string | null> {
    const v5 = (this.cfg.protocolVersion ?? 5) === 5;
    for (const [i, c] of this.subs.entries()) {
      try {
        // MQTT 5: the subscription identifier routes overlapping filters; rh 1 = no retained replay on resubscribe.
        const grants = await client.subscribeAsync(c.filter.filter, v5 ? { qos: c.qos, rh: 1, properties: { subscriptionIdentifier: i + 1 } } : { qos: c.qos });
        const bad = grants.find((g) => g.qos >= 0x80);
        if (bad !== undefined) return `${c.filter.filter}: refused (code ${bad.qos})`;
      } catch (err) {
        if (!client.connected) return 'closed';
        return `${c.filter.filter}: ${(err as Error).message}`;
      }
    }
    return null;
  }

  private onClose(client: MqttClient): void {
    this.held = null; // its connection is gone; the broker redelivers it
    // Same for deferred PUBACKs: their packet ids mean nothing on the next connection (they could ack other
    // messages there). The broker redelivers those messages with DUP set; with a DeliveryLog they are skipped
    // when their readings were stored meanwhile (without one, they are emitted twice). Tags whose PUBACKs
    // were written but not confirmed stay held for the same reason.
    if (this.stopping || client !== this.client) return;
    this.acks = this.newAckWindow(client);
    const reason = this.lastError ?? 'connection closed';
    const next = this.reconnect.retry(reason, this.refusals);
    if (next !== null) this.log.warn('disconnected; retrying', { reason, delayMs: next.delayMs, attempt: next.attempt });
    this.settle();
  }

  /** mqtt.js calls this for each PUBLISH, one at a time; `done` sends the PUBACK and lets the next one in. */
  private onPublish(packet: PublishPacket, done: Done): void {
    // Not acknowledged: redelivered to the next session (stopping, or a connection being dropped by refuse()).
    if (this.stopping || (this.deferAck && this.acks === null)) return;
    if (this.sourcePaused) {
      this.held = { packet, done };
      return;
    }
    this.handleThenAck(packet, done);
  }

  /**
   * Parse `packet`, then PUBACK it now, or (ackAfterConsumer, QoS 1) hand its PUBACK to the AckWindow and let
   * mqtt.js go on with the next packet at once.
   */
  private handleThenAck(packet: PublishPacket, done: Done): void {
    const { emitted, tags } = this.handle(packet);
    const acks = this.acks;
    if (!this.deferAck || packet.qos !== 1 || packet.messageId === undefined || acks === null) return done();
    acks.add(packet.messageId, emitted, tags);
    // mqtt.js (5.16 handlers/publish.js) skips its own PUBACK when handleMessage's callback gets an error,
    // and its packet loop ignores the error.
    done(PUBACK_DEFERRED);
  }

  /** The AckWindow of `client`'s current connection: PUBACKs and PINGREQs go out only while it is connected. */
  private newAckWindow(client: MqttClient): AckWindow | null {
    if (!this.deferAck) return null;
    // _sendPacket is what mqtt.js's own handlers send a PUBACK with; guarded by `connected`, as it would
    // otherwise keep the PUBACK for the next connection, where its packet id names another message.
    const send = client as unknown as { _sendPacket(packet: { cmd: 'puback'; messageId: number }): void };
    return new AckWindow(
      {
        puback: (messageId) => {
          if (client.connected && !this.stopping) send._sendPacket({ cmd: 'puback', messageId });
        },
        ping: () => {
          if (client.connected && !this.stopping) client.sendPing();
        },
      },
      this.deliveries,
    );
  }

  /**
   * The consumer made `reading` durable; with ackAfterConsumer its message is acknowledged once all of its
   * readings are (in arrival order). A reading of a message whose connection is gone changes nothing.
   */
  acknowledge(reading: Reading): void {
    this.settled(reading);
    if (this.acks?.acknowledge(reading) === true) this.refusals = 0;
  }

  private settled(reading: Reading): void {
    const key = reading.delivery?.key;
    if (key !== undefined && this.unsettled.get(key) === reading) this.unsettled.delete(key);
  }

  /**
   * The consumer could not take `reading` (a full pipeline): its PUBACK would never go, and later ones wait
   * behind it, so the connection is dropped; after backoff (longer with each refusal in a row) the broker
   * delivers every unacknowledged message again.
   */
  refuse(reading: Reading): void {
    this.settled(reading);
    const client = this.client;
    if (this.stopping || client === null || this.acks?.holds(reading) !== true) return;
    this.refusals++;
    this.lastError = 'the consumer refused a reading; reconnecting so the broker delivers it again';
    this.acks = null;
    client.stream.destroy();
  }

  /** One message to readings or counted rejects; returns the readings it queued and its delivery tags. Never throws. */
  private handle(packet: PublishPacket): { emitted: Reading[]; tags: DeliveryTag[] } {
    const topic = packet.topic;
    const emitted: Reading[] = [];
    const tags: DeliveryTag[] = [];
    if (packet.retain) {
      this.reject('retained', `retained message on ${topic} (stale value replayed on subscribe)`);
      return { emitted, tags };
    }
    const ids = packet.properties?.subscriptionIdentifier;
    const targets: CompiledSubscription[] = [];
    if (typeof ids === 'number') this.route(ids, targets);
    else if (ids !== undefined) for (const id of ids) this.route(id, targets);
    if (targets.length === 0) {
      // MQTT 3.1.1 has no subscription identifiers: the first configured filter that matches.
      const first = this.subs.find((c) => matchTopic(c.filter, topic) !== null);
      if (first === undefined) {
        this.reject('bad-topic', `topic ${JSON.stringify(topic)} matches no subscription`);
        return { emitted, tags };
      }
      targets.push(first);
    }
    const bytes = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const arrivedAt = this.now();
    const tagOf = this.deliveryTagger(packet, bytes);
    for (let i = 0; i < targets.length; i++) {
      const c = targets[i]!;
      const s = this.resolveStream(c, topic);
      if (!s.ok) {
        this.reject(s.reason, s.detail);
        continue;
      }
      const newStream = !this.streams.has(s.stream);
      if (newStream && this.streams.size >= this.maxStreams) {
        this.reject('stream-limit', `${topic}: stream ${JSON.stringify(s.stream)} would exceed maxStreams ${this.maxStreams}; raise it or narrow the topic filter`);
        continue;
      }
      const p = parsePayload(c.sub, bytes, arrivedAt);
      if (!p.ok) {
        this.reject(p.reason, `${topic}: ${p.detail}`);
        continue;
      }
      if (newStream) this.streams.add(s.stream);
      const tag = tagOf?.(i);
      if (tag !== undefined) {
        tags.push(tag);
        // A copy from a connection that dropped is still on its way to the consumer: this PUBACK waits for it.
        const earlier = tag.redelivered ? this.unsettled.get(tag.key) : undefined;
        if (earlier !== undefined && earlier.delivery?.digest === tag.digest) {
          emitted.push(earlier);
          continue;
        }
        if (tag.redelivered && this.deliveries?.has(tag) === true) {
          this.log.info('redelivered message already stored; acknowledging it without storing it again', { topic, stream: s.stream, messageId: packet.messageId });
          continue;
        }
      }
      // Assigned field by field: conditional spreads made throwaway objects per message.
      const fields: { -readonly [K in keyof Reading]?: Reading[K] } & Pick<Reading, 'stream' | 'ts'> = { stream: s.stream, ts: p.ts };
      if ('value' in p) fields.value = p.value;
      else fields.values = p.values;
      if (c.sub.unit !== undefined) fields.unit = c.sub.unit;
      if (tag !== undefined) fields.delivery = tag;
      const r = this.emitReading(fields);
      if (r === null) continue;
      emitted.push(r);
      if (tag !== undefined) this.unsettled.set(tag.key, r);
    }
    return { emitted, tags };
  }

  /** The subscription with MQTT 5 subscription identifier `id`, onto `targets`. */
  private route(id: number, targets: CompiledSubscription[]): void {
    const c = this.subs[id - 1];
    if (c !== undefined) targets.push(c);
  }

  /** resolveStream, remembered per subscription and topic: devices publish on the same few topics over and over. */
  private resolveStream(c: CompiledSubscription, topic: string): ReturnType<typeof resolveStream> {
    let known = this.topicStreams.get(c);
    if (known === undefined) this.topicStreams.set(c, (known = new Map()));
    const hit = known.get(topic);
    if (hit !== undefined) return hit;
    const s = resolveStream(c, topic);
    if (known.size >= TOPICS_REMEMBERED) known.clear(); // ever-new topics cannot grow it
    known.set(topic, s);
    return s;
  }

  /**
   * Delivery tags for the readings of a QoS 1 message when its PUBACK waits for the consumer: the broker
   * delivers such a message again (DUP set, same packet id) when the gateway died or lost the connection
   * after storing its readings but before the PUBACK went out. The key is scoped by client id (packet ids
   * are per session); the digest covers topic and payload. null for QoS 0 (never redelivered).
   */
  private deliveryTagger(packet: PublishPacket, payload: Buffer): ((index: number) => DeliveryTag) | null {
    if (!this.deferAck || packet.qos === 0 || packet.messageId === undefined) return null;
    // One-shot hash of topic, NUL, payload: a Hash object per message cost more than the copy.
    const topic = Buffer.from(packet.topic);
    const input = Buffer.allocUnsafe(topic.length + 1 + payload.length);
    topic.copy(input, 0);
    input[topic.length] = 0;
    input.set(payload, topic.length + 1);
    const digest = hash('sha256', input, 'base64url').slice(0, 22);
    const prefix = `mqtt|${this.clientId}|${packet.messageId}|`;
    const redelivered = packet.dup === true;
    return (index) => ({ key: prefix + index, digest, redelivered });
  }

  private settle(): void {
    const s = this.settleStart;
    this.settleStart = null;
    s?.();
  }
}
