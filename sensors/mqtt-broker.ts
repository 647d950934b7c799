// An embedded MQTT broker (aedes, MQTT 3.1.1 only) so devices on the LAN can publish straight to the gateway,
// with no mosquitto to install. The gateway's own MqttDriver connects to it with protocolVersion 4.
//
// It listens on 127.0.0.1 unless told otherwise. Exposing it to the LAN takes `host: '0.0.0.0'` (or the LAN
// address) AND `credentials`: without them any host on the network can publish readings that the gateway
// then sells. Sessions and offline queues live in memory: they survive a driver restart, not a gateway
// restart (use mosquitto with persistence for that). Traffic is plain TCP; put TLS in front for untrusted
// networks.
//
// Topics with an empty level ('farm//temp', 'farm/') are not forwarded to subscribers. aedes 1.2 routes them
// to '+' filters (as MQTT says) but its in-memory persistence (aedes-persistence 11) does not match them,
// so delivering one to a persistent-session subscriber fails with "no such packet" and aedes drops that
// subscriber's connection, after which the broker redelivers what it had queued. Such a topic could not name
// a stream through a '+' anyway (the driver counts it as 'bad-topic').
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';
import { RateLimitedLog } from './base.ts';
import { SensorError, nopSensorLogger, type SensorLogger } from './reading.ts';

export interface EmbeddedBrokerOptions {
  /** Default '127.0.0.1'. '0.0.0.0' exposes it to the network: give `credentials` then. */
  readonly host?: string;
  /** Default 1883; 0 picks a free port (see the returned url). */
  readonly port?: number;
  readonly logger?: SensorLogger;
  /** When given, every client must present this username and password (compared in constant time). */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Longest client id accepted; default 128 (aedes' own default is 23, shorter than 'datagate-' + most names). */
  readonly maxClientIdLength?: number;
}

export interface EmbeddedBroker {
  /** mqtt://host:port to give MqttDriver (with protocolVersion 4). */
  readonly url: string;
  readonly port: number;
  /** Disconnects every client and stops listening. */
  close(): Promise<void>;
}

const BAD_USERNAME_OR_PASSWORD = 4;

function digest(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Starts aedes on a TCP port; resolves once it is listening. Throws SensorError MQTT_BROKER_LISTEN if it cannot bind. */
export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? '127.0.0.1';
  const log = (opts.logger ?? nopSensorLogger).child({ module: 'mqtt-broker' });
  const errors = new RateLimitedLog(log, Date.now);
  const creds = opts.credentials;
  if (creds !== undefined && (typeof creds.username !== 'string' || typeof creds.password !== 'string' || creds.password === '')) {
    throw new SensorError('MQTT_BAD_CONFIG', 'credentials need a username and a non-empty password');
  }
  // Hashes of equal length make timingSafeEqual usable for secrets of any length.
  const want = creds === undefined ? null : { user: digest(creds.username), pass: digest(creds.password) };
  const broker = await Aedes.createBroker({
    maxClientsIdLength: opts.maxClientIdLength ?? 128,
    authorizeForward: (client, packet) => {
      if (!packet.topic.split('/').includes('')) return packet;
      errors.warn('empty-level', 'not forwarding a topic with an empty level', { topic: packet.topic, clientId: client.id });
      return null;
    },
    ...(want !== null && {
      authenticate: (client, username, password, done) => {
        const userOk = timingSafeEqual(digest(username ?? ''), want.user);
        const passOk = timingSafeEqual(digest(password ?? Buffer.alloc(0)), want.pass);
        if (userOk && passOk) return done(null, true);
        errors.warn('auth', 'MQTT client refused: bad username or password', { clientId: client.id });
        const err = Object.assign(new Error('bad username or password'), { returnCode: BAD_USERNAME_OR_PASSWORD }) as AuthenticateError;
        done(err, false);
      },
    }),
  });
  broker.on('client', (c) => log.debug('client connected', { clientId: c.id }));
  broker.on('clientDisconnect', (c) => log.debug('client disconnected', { clientId: c.id }));
  broker.on('clientError', (c, err) => errors.warn('client', 'MQTT client error', { clientId: c.id, error: err.message }));
  broker.on('connectionError', (_c, err) => errors.warn('conn', 'MQTT connection error', { error: err.message }));

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 1883, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw new SensorError('MQTT_BROKER_LISTEN', `embedded MQTT broker cannot listen on ${host}:${opts.port ?? 1883}; pick a free port`, { host, port: opts.port }, { cause: err });
  }
  server.on('error', (err) => log.error('embedded MQTT broker server error', { error: err.message }));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.port ?? 1883);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  log.info('embedded MQTT broker listening', { host, port, auth: want !== null });
  let closing: Promise<void> | null = null;
  return {
    url: `mqtt://${urlHost}:${port}`,
    port,
    close: () =>
      (closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await serverClosed;
      })()),
  };
}
