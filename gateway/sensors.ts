// Builds the sensor drivers of a gateway from the `sensors` section of its config (the composition root
// for southbound I/O): one driver per source, an optional embedded MQTT broker, and the default simulator
// that `datagate dev` reads when no source is configured.
import type { Logger } from '../chain/index.ts';
import { DeviceError, readPassphrase } from '../device/index.ts';
import type { DeliveryLog, Reading, SensorDriver, SimulatorConfig } from '../sensors/index.ts';
import { FirmataDriver, ModbusRtuDriver, MqttDriver, RateLimitedLog, SerialLineDriver, SimulatorDriver, startEmbeddedBroker } from '../sensors/index.ts';
import type { SensorsConfig, SourceConfig } from './config/sensors-config.ts';

/** What `datagate dev` reads when the config names no source: three simulated streams. */
export const DEFAULT_SIMULATOR: SimulatorConfig = {
  name: 'simulator',
  streams: [
    { stream: 'greenhouse/temperature', shape: 'sine', rateHz: 1, min: 14, max: 28, periodS: 600, unit: 'degC' },
    { stream: 'greenhouse/humidity', shape: 'random-walk', rateHz: 1, min: 40, max: 90, unit: '%' },
    { stream: 'pump/pressure', shape: 'spike', rateHz: 2, min: 1, max: 6, unit: 'bar' },
  ],
};

function withoutKind<T extends { kind: string }>(source: T): Omit<T, 'kind'> {
  const { kind: _kind, ...rest } = source;
  return rest;
}

/**
 * The broker password of an MQTT source, read from its `passwordFile`. A file that is missing, empty, open to
 * others or unreadable is a DeviceError naming the source and the field (fields `source`, `field`, `file`):
 * with several sources, the file path alone does not say which entry of the config to fix.
 */
export async function mqttPassword(source: { readonly name: string; readonly passwordFile?: string | undefined }): Promise<string | undefined> {
  const file = source.passwordFile;
  if (file === undefined) return undefined;
  try {
    return new TextDecoder().decode(await readPassphrase({ file }));
  } catch (err) {
    const code = err instanceof DeviceError ? err.code : 'PASSPHRASE_MISSING';
    const why = err instanceof DeviceError ? err.message : `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): let the datagate user read it`;
    throw new DeviceError(code, `MQTT source '${source.name}', field passwordFile: ${why}`, { source: source.name, field: 'passwordFile', file }, { cause: err });
  }
}

/**
 * One driver for one configured source (MQTT passwords are read from their file here, never kept in config).
 * `durable`: its consumer stores readings before acknowledging them;
 * `deliveries`: that consumer's record of stored deliveries, so redelivered MQTT messages are stored once;
 * `observer`: a watcher beside the gateway: MQTT sources use a client id of their own and a clean session,
 * so they neither take over nor acknowledge the gateway's session.
 */
export async function createDriver(source: SourceConfig, logger: Logger, signal?: AbortSignal, durable = false, deliveries?: DeliveryLog, observer = false): Promise<SensorDriver> {
  const ctx = { logger: logger.child({ module: 'sensors' }), ...(signal !== undefined ? { signal } : {}) };
  switch (source.kind) {
    case 'simulator':
      return new SimulatorDriver(withoutKind(source) as SimulatorConfig, ctx);
    case 'serial':
      return new SerialLineDriver(withoutKind(source) as ConstructorParameters<typeof SerialLineDriver>[0], ctx);
    case 'modbus':
      return new ModbusRtuDriver(withoutKind(source) as ConstructorParameters<typeof ModbusRtuDriver>[0], ctx);
    case 'firmata':
      return new FirmataDriver(withoutKind(source) as ConstructorParameters<typeof FirmataDriver>[0], ctx);
    case 'mqtt': {
      const { passwordFile: _passwordFile, ...rest } = withoutKind(source);
      const password = await mqttPassword(source);
      // Feeding a durable pipeline, the PUBACK waits until the reading is on disk (pumpInto acknowledges it).
      return new MqttDriver({ ...(rest as ConstructorParameters<typeof MqttDriver>[0]), ...(password !== undefined ? { password } : {}) }, ctx, {
        ackAfterConsumer: durable,
        ...(durable && deliveries !== undefined ? { deliveries } : {}),
        observer,
      });
    }
  }
}

export interface RunningSensors {
  readonly drivers: readonly SensorDriver[];
  /** The `consume` loops, one per driver (settled after stop()). */
  readonly consumers: readonly Promise<void>[];
  /** URL of the embedded broker, when enabled. */
  readonly brokerUrl: string | null;
  stop(): Promise<void>;
}

/** Start the embedded broker (if enabled) and every source (or `fallback` when there is none). */
export async function startSensors(
  config: SensorsConfig,
  logger: Logger,
  opts: { fallback?: SimulatorConfig; signal?: AbortSignal; durable?: boolean; deliveries?: DeliveryLog; observer?: boolean; consume?: (driver: SensorDriver) => Promise<void> } = {},
): Promise<RunningSensors> {
  const broker = config.broker.enabled ? await startEmbeddedBroker({ host: config.broker.host, port: config.broker.port, logger: logger.child({ module: 'mqtt-broker' }) }) : null;
  const drivers: SensorDriver[] = [];
  const consumers: Promise<void>[] = [];
  try {
    if (config.sources.length === 0 && opts.fallback !== undefined) {
      drivers.push(new SimulatorDriver(opts.fallback, { logger: logger.child({ module: 'sensors' }), ...(opts.signal !== undefined ? { signal: opts.signal } : {}) }));
    }
    for (const source of config.sources) drivers.push(await createDriver(source, logger, opts.signal, opts.durable ?? false, opts.deliveries, opts.observer ?? false));
    // Consumers run before the drivers start: an MQTT session that resumes delivers (and, acknowledging after
    // the consumer, waits for it) before start() has finished.
    consumers.push(...drivers.map((d) => (opts.consume === undefined ? Promise.resolve() : opts.consume(d))));
    for (const d of drivers) await d.start();
  } catch (err) {
    for (const d of drivers) await d.stop().catch(() => {});
    await broker?.close();
    throw err;
  }
  return {
    drivers,
    consumers,
    brokerUrl: broker?.url ?? null,
    async stop() {
      for (const d of drivers) await d.stop();
      await broker?.close();
    },
  };
}

/**
 * Readings a pump keeps in flight to the pipeline: enough for group commit to batch (an MQTT source's
 * in-flight window is RECEIVE_MAXIMUM, 1024), bounded in memory.
 */
export const PUMP_WINDOW = 1024;

/** What the pump feeds: a pipeline's ingest, and its callback form when it has one (Pipeline.take). */
export interface PumpTarget {
  ingest(r: Reading): Promise<void>;
  take?(r: Reading, done: (r: Reading, err: unknown) => void): void;
}

/**
 * Feed `driver`'s readings into `pipeline`, keeping up to PUMP_WINDOW ingests in flight. A reading the
 * pipeline refuses (full, or unsealable) is logged and counted there; the pump goes on with the next.
 * With `take`, one callback settles every reading: no promise and no closures per reading, which at a full
 * window of MQTT readings were a large share of the garbage collector's work (docs/architecture.md "Pipeline").
 */
export async function pumpInto(driver: SensorDriver, pipeline: PumpTarget, log: Logger): Promise<void> {
  // A counter and one waiter, not Promise.race over the window: race attaches a reaction to every promise in
  // flight each time, thousands of allocations per reading at a full window.
  let inflight = 0;
  let room: (() => void) | null = null;
  // A full pipeline refuses every reading until it has room: at sensor rates that is thousands a second, so
  // at most 5 lines per cause every 10 s, then how many were left out (the pipeline counts them all).
  const refused = new RateLimitedLog(log, Date.now);
  const done = (r: Reading, err: unknown): void => {
    inflight--;
    const wake = room;
    room = null;
    wake?.();
    if (err === null) {
      driver.acknowledge?.(r);
      return;
    }
    // Not acknowledged: an MQTT source has its broker deliver it again; others count it in the pipeline.
    driver.refuse?.(r);
    const code = (err as { code?: string }).code;
    refused.warn(`refused:${code ?? 'error'}`, 'reading not taken by the pipeline', { driver: driver.name, stream: r.stream, seq: r.seq, code });
  };
  const take = pipeline.take !== undefined
    ? pipeline.take.bind(pipeline)
    : (r: Reading, cb: typeof done): void => void pipeline.ingest(r).then(() => cb(r, null), (err: unknown) => cb(r, err));
  for await (const r of driver.readings()) {
    inflight++;
    take(r, done);
    while (inflight >= PUMP_WINDOW) await new Promise<void>((resolve) => (room = resolve));
  }
  while (inflight > 0) await new Promise<void>((resolve) => (room = resolve));
}
