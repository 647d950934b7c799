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
// so every message is stored exactly once. The consumer forgets a tag once its PUBACK is sent; a packet id
// the broker reuses for another message arrives with DUP=0 and replaces the record when stored.
//
// Backpressure. mqtt.js handles incoming packets one at a time and sends a PUBACK only when
// `client.handleMessage(packet, done)` calls `done`. While DriverBase has paused the source, the driver keeps
// that callback (and the packet, unparsed): mqtt.js stops reading the socket, TCP flow control holds the
// broker, and the broker keeps the unacknowledged messages. On resume the held packet is parsed and
// acknowledged. `customHandleAcks` was not chosen: mqtt.js uses it only with MQTT 5 (it auto-acks for 3.1.1,
// which aedes speaks), and its callback picks a PUBACK reason code rather than deferring the ack. Caveats:
// mosquitto queues at most `max_queued_messages` (1000 by default) per client and DROPS the rest, whether
// the driver is offline, paused, or just behind a burst (measured: 100k QoS 1 messages from one fast
// publisher on loopback, default config, 4-33% dropped with the driver connected and never paused), so the
// broker must be configured with a larger `max_queued_messages` (and `max_inflight_messages`). And while
// paused, mqtt.js cannot read the broker's PINGRESP, so a pause longer than 1.5 x keepalive (90 s) ends in
// a reconnect (the held message is dropped unacknowledged and redelivered: no loss, no duplicate).
//
// Reconnects use our capped exponential backoff (backoffDelay) with status 'retrying' and nextAttemptAt:
// mqtt.js's reconnectPeriod is a fixed interval, so it is set to 0 and the driver calls client.reconnect().
// Retained messages replayed on subscribe are stale values with no arrival time of their own: they are
// counted as 'retained' rejects, not readings (live messages reach subscribers without the retain flag).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { DriverBase, backoffDelay } from './base.ts';
import type { DriverContext, SensorDriver } from './driver.ts';
import { SensorError } from './reading.ts';
import type { DeliveryLog, DeliveryTag, Reading } from './reading.ts';
import { compileSubscription, matchTopic, parsePayload, resolveStream, type CompiledSubscription, type MqttSubscription } from './mqtt-topics.ts';

export interface MqttDriverConfig {
  readonly name: string;
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  readonly url: string;
  /**
   * Default 'datagate-' + name. Must stay the same across restarts (the broker keys the session by it) and
   * be unique per broker (a second client with the same id takes the session over). MQTT 3.1.1 brokers may
   * refuse ids over 23 characters (aedes does by default; the embedded broker allows 128).
   */
  readonly clientId?: string;
  readonly username?: string;
  /** From a secret source (given by the composition root); never logged. */
  readonly password?: string;
  /** File paths of PEM files; read at start(). */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly rejectUnauthorized?: boolean };
  /** 5 (default) or 4 (MQTT 3.1.1; needed for aedes). */
  readonly protocolVersion?: 4 | 5;
  readonly subscriptions: readonly MqttSubscription[];
  /** Reconnect backoff, see backoffDelay; default 500 ms doubling to 30 s. */
  readonly reconnect?: { readonly baseMs?: number; readonly maxMs?: number };
  /** Seconds; default 60. */
  readonly keepaliveSec?: number;
}

/** MQTT 5 session expiry asked for: one week (the broker may cap it). */
export const SESSION_EXPIRY_SEC = 7 * 24 * 3600;
const STOP_TIMEOUT_MS = 5_000;

type PublishPacket = Parameters<MqttClient['handleMessage']>[0];
type Done = Parameters<MqttClient['handleMessage']>[1];

/** The URL with any password replaced, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

export interface MqttDriverOptions {
  /** Readings buffered before the driver stops acknowledging (default 1024). */
  readonly highWater?: number;
  /**
   * Hold each PUBACK until the consumer calls acknowledge() for every reading of the message (after making
   * it durable), instead of sending it once the reading is queued in memory. mqtt.js lets the next message in
   * only after the PUBACK, so throughput is one message per consumer commit; a crash then loses nothing.
   */
  readonly ackAfterConsumer?: boolean;
  /**
   * With ackAfterConsumer: the durable consumer's record of stored, not yet acknowledged deliveries. Readings
   * of QoS 1 messages carry a DeliveryTag; a redelivered message (DUP) whose readings the log holds is
   * acknowledged without emitting them again, so a crash between storing and PUBACK stores nothing twice.
   */
  readonly deliveries?: DeliveryLog;
  /** Jitter source of the backoff, [0, 1); default Math.random. */
  readonly random?: () => number;
}

/**
 * Checks an MQTT source config and compiles its subscriptions; throws SensorError SENSOR_CONFIG_INVALID
 * naming the field. Returns the compiled subscriptions.
 */
export function validateMqttConfig(config: MqttDriverConfig): CompiledSubscription[] {
  const bad = (field: string, why: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `mqtt source: '${field}' ${why}`, { field });
  };
  if (config === null || typeof config !== 'object') bad('', 'config must be an object');
  if (typeof config.name !== 'string' || config.name.length === 0) bad('name', 'must be a non-empty string');
  let url: URL | null = null;
  try {
    url = new URL(config.url);
  } catch {
    bad('url', `${JSON.stringify(redactUrl(String(config.url)))} is not a URL`);
  }
  if (url !== null && !['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) bad('url', `must be mqtt://, mqtts://, ws:// or wss://, not ${url.protocol}//`);
  if (config.clientId !== undefined && (typeof config.clientId !== 'string' || config.clientId.length === 0)) bad('clientId', 'must be a non-empty string');
  if (config.username !== undefined && typeof config.username !== 'string') bad('username', 'must be a string');
  if (config.password !== undefined && typeof config.password !== 'string') bad('password', 'must be a string');
  const pv = config.protocolVersion ?? 5;
  if (pv !== 4 && pv !== 5) bad('protocolVersion', 'must be 4 (MQTT 3.1.1) or 5');
  const ka = config.keepaliveSec;
  if (ka !== undefined && !(Number.isInteger(ka) && ka >= 1 && ka <= 65535)) bad('keepaliveSec', 'must be an integer in 1..65535');
  const r = config.reconnect;
  for (const k of ['baseMs', 'maxMs'] as const) {
    const v = r?.[k];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(`reconnect.${k}`, 'must be a positive number of ms');
  }
  if (!Array.isArray(config.subscriptions) || config.subscriptions.length === 0) bad('subscriptions', 'must list at least one topic');
  return config.subscriptions.map((s, i) => compileSubscription(s, i));
}

/** A SensorDriver reading MQTT topics; see the file comment for delivery, backpressure and reconnects. */
export class MqttDriver extends DriverBase implements SensorDriver {
  private readonly cfg: MqttDriverConfig;
  private readonly subs: readonly CompiledSubscription[];
  private readonly clientId: string;
  private readonly signal: AbortSignal | undefined;
  private readonly random: () => number;
  private client: MqttClient | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private everConnected = false;
  /** Counts CONNACKs, so a subscribe that outlived its connection can tell. */
  private connections = 0;
  private subscribed = false;
  private lastError: string | null = null;
  private sourcePaused = false;
  private held: { readonly packet: PublishPacket; readonly done: Done } | null = null;
  /** With ackAfterConsumer: the PUBACK of the message in progress, its readings not yet acknowledged, and
   * the delivery tags to release once the PUBACK is sent. */
  private awaitingAck: { done: Done; readings: Set<Reading>; tags: DeliveryTag[] } | null = null;
  private readonly deferAck: boolean;
  private readonly deliveries: DeliveryLog | null;
  private stopping = false;
  private settleStart: (() => void) | null = null;

  /** Throws SensorError SENSOR_CONFIG_INVALID for a bad config (see validateMqttConfig); never afterwards. */
  constructor(config: MqttDriverConfig, ctx: DriverContext, opts: MqttDriverOptions = {}) {
    const subs = validateMqttConfig(config);
    super(config.name, ctx, opts.highWater);
    this.cfg = { ...config, subscriptions: [...config.subscriptions] };
    this.subs = subs;
    this.clientId = config.clientId ?? `datagate-${config.name}`;
    this.signal = ctx.signal;
    this.random = opts.random ?? Math.random;
    this.deferAck = opts.ackAfterConsumer ?? false;
    this.deliveries = this.deferAck ? (opts.deliveries ?? null) : null;
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
      clean: false,
      reconnectPeriod: 0,
      manualConnect: true,
      resubscribe: false,
      connectTimeout: 10_000,
      keepalive: this.cfg.keepaliveSec ?? 60,
      ...(this.cfg.username !== undefined && { username: this.cfg.username }),
      ...(this.cfg.password !== undefined && { password: this.cfg.password }),
      ...(pv === 5 && { properties: { sessionExpiryInterval: SESSION_EXPIRY_SEC } }),
      ...(await this.readTls()),
    };
    const client = connect(this.cfg.url, opts);
    this.client = client;
    client.handleMessage = (packet, done) => this.onPublish(packet, done);
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
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.held = null; // never acknowledged: the broker delivers it again to the next session
    this.awaitingAck = null;
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
    this.attempt = 0;
    this.lastError = null;
    // A resumed session still holds our subscriptions; a new one (first start, expired, broker without
    // persistence) needs them made. The first connect of this driver always subscribes: the configuration
    // may have changed since the session was made.
    if (!sessionPresent || !this.subscribed) {
      const failure = await this.subscribeAll(client);
      if (failure === 'closed' || gen !== this.connections || this.stopping) return; // onClose retries, or stop() won
      if (failure !== null) {
        this.log.error('subscription refused by the broker; check its ACL and the topic filter', { reason: failure });
        this.setStatus({ state: 'failed', reason: failure });
        this.stopping = true;
        client.end(true);
        this.endReadings();
        this.settle();
        return;
      }
      this.subscribed = true;
    }
    if (this.everConnected) this.reconnectCount++;
    this.everConnected = true;
    this.log.info('connected', { url: redactUrl(this.cfg.url), sessionPresent });
    this.setStatus({ state: 'connected', since: this.now() });
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
    // Same for a deferred PUBACK: its messageId means nothing on the next connection (it could ack another
    // message there). The broker redelivers that message with DUP set; with a DeliveryLog it is skipped
    // when its readings were stored meanwhile (without one, they are emitted twice).
    this.awaitingAck = null;
    if (this.stopping || client !== this.client) return;
    const reason = this.lastError ?? 'connection closed';
    const delay = backoffDelay(this.attempt, { ...this.cfg.reconnect, random: this.random });
    this.attempt++;
    this.log.warn('disconnected; retrying', { reason, delayMs: delay, attempt: this.attempt });
    this.setStatus({ state: 'retrying', reason, nextAttemptAt: this.now() + delay, attempt: this.attempt });
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopping) client.reconnect();
    }, delay);
    this.settle();
  }

  /** mqtt.js calls this for each PUBLISH, one at a time; `done` sends the PUBACK and lets the next one in. */
  private onPublish(packet: PublishPacket, done: Done): void {
    if (this.stopping) return; // not acknowledged: redelivered to the next session
    if (this.sourcePaused) {
      this.held = { packet, done };
      return;
    }
    this.handleThenAck(packet, done);
  }

  /** Parse `packet`, then PUBACK it now, or (ackAfterConsumer) once its readings are acknowledged. */
  private handleThenAck(packet: PublishPacket, done: Done): void {
    const { emitted, tags } = this.handle(packet);
    if (!this.deferAck) return done();
    if (emitted.length === 0) return this.ackAndRelease(done, tags);
    this.awaitingAck = { done, readings: new Set(emitted), tags };
  }

  /** Send the PUBACK, then let the consumer forget the message's tags (the broker will not redeliver it). */
  private ackAndRelease(done: Done, tags: readonly DeliveryTag[]): void {
    if (this.stopping) return;
    done();
    for (const t of tags) this.deliveries?.release(t);
  }

  /**
   * The consumer made `reading` durable; with ackAfterConsumer this releases its message's PUBACK once all
   * of the message's readings are. A reading of a message whose connection is gone changes nothing.
   */
  acknowledge(reading: Reading): void {
    const a = this.awaitingAck;
    if (a === null || !a.readings.delete(reading) || a.readings.size > 0) return;
    this.awaitingAck = null;
    this.ackAndRelease(a.done, a.tags);
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
    const routed = ids === undefined ? [] : (Array.isArray(ids) ? ids : [ids]).map((id) => this.subs[id - 1]);
    const targets = routed.filter((c): c is CompiledSubscription => c !== undefined);
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
    for (const [i, c] of targets.entries()) {
      const s = resolveStream(c, topic);
      if (!s.ok) {
        this.reject(s.reason, s.detail);
        continue;
      }
      const p = parsePayload(c.sub, bytes, arrivedAt);
      if (!p.ok) {
        this.reject(p.reason, `${topic}: ${p.detail}`);
        continue;
      }
      const unit = c.sub.unit === undefined ? {} : { unit: c.sub.unit };
      const tag = tagOf?.(i);
      if (tag !== undefined) {
        tags.push(tag);
        if (tag.redelivered && this.deliveries?.has(tag) === true) {
          this.log.info('redelivered message already stored; acknowledging it without storing it again', { topic, stream: s.stream, messageId: packet.messageId });
          continue;
        }
      }
      const delivery = tag === undefined ? {} : { delivery: tag };
      const r = 'value' in p
        ? this.emitReading({ stream: s.stream, ts: p.ts, value: p.value, ...unit, ...delivery })
        : this.emitReading({ stream: s.stream, ts: p.ts, values: p.values, ...unit, ...delivery });
      if (r !== null) emitted.push(r);
    }
    return { emitted, tags };
  }

  /**
   * Delivery tags for the readings of a QoS 1 message when its PUBACK waits for the consumer: the broker
   * delivers such a message again (DUP set, same packet id) when the gateway died or lost the connection
   * after storing its readings but before the PUBACK went out. The key is scoped by client id (packet ids
   * are per session); the digest covers topic and payload. null for QoS 0 (never redelivered).
   */
  private deliveryTagger(packet: PublishPacket, payload: Buffer): ((index: number) => DeliveryTag) | null {
    if (!this.deferAck || packet.qos === 0 || packet.messageId === undefined) return null;
    const digest = createHash('sha256').update(packet.topic).update('\u0000').update(payload).digest('base64url').slice(0, 22);
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
