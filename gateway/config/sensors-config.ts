// The `sensors` section of the gateway config: the sources the gateway reads (serial line protocols, NMEA,
// Modbus RTU, Firmata boards, MQTT topics, the simulator) and the optional embedded MQTT broker. Each source
// is an object told apart by `kind`; errors name the file, line, column and field like every config error.
import { field, type Infer } from './config.ts';

const name = field.string({ minLength: 1, pattern: /^[A-Za-z0-9_.-]+$/, description: 'Source name (letters, digits, _ . -)' });
const stream = field.string({ minLength: 1, description: "Stream name of the readings, e.g. 'barn/temperature'" });
const unit = field.optional(field.string({ minLength: 1, description: 'Unit of the values, e.g. degC' }));
const path = field.string({ minLength: 1, description: 'Serial device; prefer a stable /dev/serial/by-id/... name' });
const baudRate = field.integer({ min: 50, max: 4_000_000, description: 'Baud rate' });
const parity = field.optional(field.string({ enum: ['none', 'even', 'odd'], description: 'Parity (default none)' }));
const dataBits = field.optional(field.integer({ min: 5, max: 8, description: 'Data bits (default 8)' }));
const stopBits = field.optional(field.integer({ min: 1, max: 2, description: 'Stop bits (default 1)' }));

const lineFormat = field.union({
  jsonl: field.object({
    kind: field.string({ enum: ['jsonl'] }),
    stream,
    fields: field.record(field.string({ minLength: 1 }), { minEntries: 1, description: 'value name -> dotted path in the JSON object' }),
    tsField: field.optional(field.string({ minLength: 1, description: 'Dotted path of a timestamp (ms or ISO 8601)' })),
    unit,
  }),
  csv: field.object({
    kind: field.string({ enum: ['csv'] }),
    stream,
    columns: field.array(field.string(), { minLength: 1, description: "Column names in order; '' or '-' ignores a column" }),
    fields: field.optional(field.array(field.string({ minLength: 1 }), { minLength: 1, description: 'Columns that become values (default: all named)' })),
    tsColumn: field.optional(field.string({ minLength: 1 })),
    delimiter: field.optional(field.string({ minLength: 1 })),
    unit,
  }),
  kv: field.object({
    kind: field.string({ enum: ['kv'] }),
    stream,
    fields: field.optional(field.array(field.string({ minLength: 1 }), { minLength: 1, description: 'Keys to keep (default: every numeric key)' })),
    tsKey: field.optional(field.string({ minLength: 1 })),
    separator: field.optional(field.string({ minLength: 1 })),
    unit,
  }),
  nmea: field.object({ kind: field.string({ enum: ['nmea'] }), stream }),
});

const source = field.union({
  simulator: field.object({
    kind: field.string({ enum: ['simulator'] }),
    name,
    streams: field.array(
      field.object({
        stream,
        shape: field.string({ enum: ['sine', 'random-walk', 'step', 'spike'] }),
        rateHz: field.number({ min: 0.001, max: 10_000, description: 'Readings per second' }),
        min: field.optional(field.number()),
        max: field.optional(field.number()),
        periodS: field.optional(field.number({ min: 0.001 })),
        unit,
        seed: field.optional(field.integer({ min: 0, max: 2 ** 32 - 1 })),
      }),
      { minLength: 1 },
    ),
  }),
  serial: field.object({
    kind: field.string({ enum: ['serial'] }),
    name,
    path,
    baudRate,
    parity,
    dataBits,
    stopBits,
    maxLineBytes: field.optional(field.integer({ min: 16, max: 1_048_576 })),
    format: lineFormat,
  }),
  modbus: field.object({
    kind: field.string({ enum: ['modbus'] }),
    name,
    path,
    baudRate,
    parity,
    dataBits,
    stopBits,
    timeoutMs: field.optional(field.integer({ min: 10, max: 60_000 })),
    devices: field.array(
      field.object({
        unitId: field.integer({ min: 0, max: 247 }),
        pollMs: field.integer({ min: 10 }),
        registers: field.array(
          field.object({
            stream,
            table: field.string({ enum: ['holding', 'input', 'coil', 'discrete'] }),
            address: field.integer({ min: 0, max: 65_535 }),
            type: field.string({ enum: ['int16', 'uint16', 'int32', 'uint32', 'float32', 'bool'] }),
            wordOrder: field.optional(field.string({ enum: ['big', 'little'] })),
            scale: field.optional(field.number()),
            offset: field.optional(field.number()),
            unit,
          }),
          { minLength: 1 },
        ),
      }),
      { minLength: 1 },
    ),
  }),
  firmata: field.object({
    kind: field.string({ enum: ['firmata'] }),
    name,
    port: path,
    sensors: field.array(
      field.union({
        analog: field.object({
          kind: field.string({ enum: ['analog'] }),
          pin: field.string({ pattern: /^A\d+$/ }),
          stream,
          freqMs: field.optional(field.integer({ min: 1 })),
          scale: field.optional(field.array(field.number(), { minLength: 2, maxLength: 2 })),
          unit,
        }),
        thermometer: field.object({
          kind: field.string({ enum: ['thermometer'] }),
          controller: field.string({ minLength: 1, description: "A controller johnny-five ships, e.g. 'LM35', 'TMP36'" }),
          pin: field.string({ minLength: 1 }),
          stream,
          freqMs: field.optional(field.integer({ min: 1 })),
        }),
        i2c: field.object({
          kind: field.string({ enum: ['i2c'] }),
          controller: field.string({ minLength: 1, description: "An I2C controller johnny-five ships, e.g. 'BME280'" }),
          stream,
          freqMs: field.optional(field.integer({ min: 1 })),
        }),
      }),
      { minLength: 1 },
    ),
  }),
  mqtt: field.object({
    kind: field.string({ enum: ['mqtt'] }),
    name,
    url: field.string({ pattern: /^(mqtts?|wss?):\/\/.+/, description: 'Broker URL: mqtt://, mqtts://, ws:// or wss://' }),
    clientId: field.optional(field.string({ minLength: 1 })),
    username: field.optional(field.string({ minLength: 1 })),
    passwordFile: field.optional(field.string({ minLength: 1, description: 'File holding the broker password (mode 0600); never inline' })),
    protocolVersion: field.optional(field.integer({ min: 4, max: 5 })),
    maxStreams: field.optional(field.integer({ min: 1, description: 'Streams this source may make (a wildcard makes one per topic); further ones are rejected as stream-limit. Default 1000' })),
    tls: field.optional(
      field.object({
        ca: field.optional(field.string({ minLength: 1 })),
        cert: field.optional(field.string({ minLength: 1 })),
        key: field.optional(field.string({ minLength: 1 })),
        rejectUnauthorized: field.optional(field.boolean()),
      }),
    ),
    subscriptions: field.array(
      field.object({
        topic: field.string({ minLength: 1, description: 'MQTT topic filter (+ and # allowed)' }),
        stream: field.string({ minLength: 1, description: 'Stream name; ${1}, ${2}... stand for the levels + and # matched' }),
        payload: field.string({ enum: ['number', 'json'] }),
        fields: field.optional(field.record(field.string({ minLength: 1 }), { minEntries: 1 })),
        tsField: field.optional(field.string({ minLength: 1 })),
        unit,
        qos: field.optional(field.integer({ min: 0, max: 1 })),
      }),
      { minLength: 1 },
    ),
  }),
});

export const sensorsSchema = field.object(
  {
    sources: field.array(source, {
      default: [],
      description: 'Sources to read; `datagate dev` uses a simulator when none is given',
    }),
    broker: field.object({
      enabled: field.boolean({ default: false, description: 'Run an embedded MQTT broker (aedes) so devices can publish to the gateway' }),
      host: field.string({ minLength: 1, default: '127.0.0.1', description: 'Address the broker binds; 0.0.0.0 exposes it to the LAN' }),
      port: field.integer({ min: 0, max: 65_535, default: 1883 }),
    }),
  },
  { refine: (v) => duplicateSource(v.sources) },
);

/**
 * Source names name drivers in logs, status and metrics, and an MQTT source's session (client id
 * 'datagate-<name>' unless set): two sources of one name would be told apart nowhere, and two MQTT sources
 * of one client id take the broker session from each other on every connect.
 */
function duplicateSource(sources: readonly { name: string; kind: string; clientId?: string | undefined }[]): string | undefined {
  const names = new Map<string, number>();
  const clientIds = new Map<string, number>();
  for (const [i, s] of sources.entries()) {
    const before = names.get(s.name);
    if (before !== undefined) return `sources[${i}].name: '${s.name}' is already the name of sources[${before}]; source names must be unique`;
    names.set(s.name, i);
    if (s.kind !== 'mqtt') continue;
    const clientId = s.clientId ?? `datagate-${s.name}`;
    const other = clientIds.get(clientId);
    if (other !== undefined) return `sources[${i}]: MQTT client id '${clientId}' is also that of sources[${other}]; each MQTT source needs its own session (set clientId)`;
    clientIds.set(clientId, i);
  }
  return undefined;
}

export type SensorsConfig = Infer<typeof sensorsSchema>;
export type SourceConfig = SensorsConfig['sources'][number];
