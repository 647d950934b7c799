// An MQTT source's configuration and driver options, and their validation at the edge (SensorError
// SENSOR_CONFIG_INVALID naming the field); the driver itself is mqtt.ts.
import { SensorError } from './reading.ts';
import type { DeliveryLog } from './reading.ts';
import type { TimeoutTimers } from './reconnect.ts';
import { compileSubscription, type CompiledSubscription, type MqttSubscription } from './mqtt-topics.ts';

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
  /** Streams this source may make (wildcard topics make one per topic); default DEFAULT_MAX_STREAMS. */
  readonly maxStreams?: number;
}

export const DEFAULT_MAX_STREAMS = 1000;
/**
 * Unacknowledged QoS 1 messages the broker may send at once (MQTT 5 receive maximum) while their PUBACKs
 * wait for the consumer. Throughput is about half this window per commit latency (one half is being
 * committed while the other arrives; an fsync on a loaded SD card or VM takes tens of ms). Measured with
 * bench:ingest, 4096 held more memory (messages living through a commit are promoted by the GC) without
 * being faster, the gateway being CPU-bound by then.
 */
export const RECEIVE_MAXIMUM = 1024;

/** MQTT 5 session expiry asked for: one week (the broker may cap it). */
export const SESSION_EXPIRY_SEC = 7 * 24 * 3600;

/** The URL with any password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

export interface MqttDriverOptions {
  /** Readings buffered before the driver stops reading the socket (default 1024; 2 x RECEIVE_MAXIMUM with ackAfterConsumer). */
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
  /** Timers of the reconnect; default the real setTimeout. */
  readonly timers?: TimeoutTimers;
  /**
   * A watcher beside the gateway (`sensors watch`): a client id of its own ('dgwatch-' + random) and a clean
   * session that ends with the connection, so it never takes the gateway's session over, never
   * acknowledges the gateway's messages, leaves no subscription behind, and two watchers coexist.
   */
  readonly observer?: boolean;
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
  const ms = config.maxStreams;
  if (ms !== undefined && !(Number.isInteger(ms) && ms >= 1)) bad('maxStreams', 'must be an integer >= 1');
  const r = config.reconnect;
  for (const k of ['baseMs', 'maxMs'] as const) {
    const v = r?.[k];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(`reconnect.${k}`, 'must be a positive number of ms');
  }
  if (!Array.isArray(config.subscriptions) || config.subscriptions.length === 0) bad('subscriptions', 'must list at least one topic');
  return config.subscriptions.map((s, i) => compileSubscription(s, i));
}
