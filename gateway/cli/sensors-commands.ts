// `datagate sensors watch` and `datagate sensors ports`: what an installer runs on site to see that the
// wiring is right. Readings go to stdout (human lines, or NDJSON), status changes and rejects to stderr.
import type { Reading, SensorDriver } from '../../sensors/index.ts';
import { listSerialPorts } from '../../sensors/index.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand, defineCommandGroup } from './args.ts';
import { configDefaults, loadConfigFile } from '../config/config.ts';
import { devConfigSchema } from '../config/dev-config.ts';
import { createLogger } from '../logger.ts';
import type { SensorsConfig, SourceConfig } from '../config/sensors-config.ts';
import { startSensors } from '../sensors.ts';

function formatReading(r: Reading): string {
  const t = new Date(r.ts).toISOString().slice(11, 23);
  const v = r.value !== undefined ? String(r.value) : Object.entries(r.values ?? {}).map(([k, x]) => `${k}=${x}`).join(' ');
  return `${t} ${r.stream} #${r.seq} ${v}${r.unit !== undefined ? ` ${r.unit}` : ''}${r.quality !== undefined ? ` q=${r.quality}` : ''}`;
}

function ndjson(r: Reading): string {
  return JSON.stringify({ stream: r.stream, ts: r.ts, seq: r.seq, ...(r.value !== undefined ? { value: r.value } : { values: r.values }), ...(r.unit !== undefined ? { unit: r.unit } : {}), ...(r.quality !== undefined ? { quality: r.quality } : {}) });
}

/** `a=x.y,b=z` -> {a: 'x.y', b: 'z'} */
function parsePairs(text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (k === undefined || v === undefined || k === '' || v === '') throw new UsageError(`${flag} takes name=path pairs separated by commas, e.g. temperature=t,humidity=data.h`);
    out[k] = v;
  }
  return out;
}

const watch = defineCommand({
  name: 'sensors watch',
  summary: 'Run sensor drivers and print live readings (from the config file, or one source given by flags)',
  usage: '(--config FILE | --serial PATH --baud N --format F | --mqtt URL --topic FILTER) [options]',
  options: {
    config: { type: 'string', valueName: 'file', description: 'Gateway config file; its "sensors" section is run' },
    ndjson: { type: 'boolean', description: 'One JSON object per reading: stream, ts, seq, value or values' },
    serial: { type: 'string', valueName: 'path', description: 'Read one serial port (prefer /dev/serial/by-id/...)' },
    baud: { type: 'integer', valueName: 'n', default: 9600, description: 'Baud rate of --serial' },
    format: { type: 'string', choices: ['jsonl', 'csv', 'kv', 'nmea'], description: 'Line format of --serial' },
    fields: { type: 'string', valueName: 'pairs', description: 'jsonl: value names and JSON paths, e.g. temperature=t,humidity=data.h' },
    columns: { type: 'string', valueName: 'names', description: "csv: column names in order, e.g. ts,temperature,- ('-' ignores a column)" },
    mqtt: { type: 'string', valueName: 'url', description: 'Subscribe to a broker, e.g. mqtt://127.0.0.1:1883' },
    topic: { type: 'string', valueName: 'filter', description: 'Topic filter of --mqtt (+ and # allowed)' },
    payload: { type: 'string', choices: ['number', 'json'], default: 'number', description: 'Payload of --mqtt messages' },
    stream: { type: 'string', valueName: 'name', description: 'Stream name for a --serial or --mqtt source (default: the path or topic)' },
    count: { type: 'integer', valueName: 'n', description: 'Exit after this many readings' },
  },
  async run({ options, stdout, stderr, signal }) {
    // Rejects and status changes are printed below; the drivers' own log lines would repeat them.
    const logger = createLogger({ level: 'error', format: 'human', stream: { write: (s: string) => stderr.write(s) } });
    let sensors: SensorsConfig;
    if (options.config !== undefined) {
      if (options.serial !== undefined || options.mqtt !== undefined) throw new UsageError('give --config, or one source by flags, not both');
      sensors = (await loadConfigFile(options.config, devConfigSchema)).sensors;
      if (sensors.sources.length === 0 && !sensors.broker.enabled) throw new UsageError(`${options.config} declares no sensor sources ("sensors": {"sources": [...]})`);
    } else {
      const base = configDefaults(devConfigSchema).sensors;
      let source: SourceConfig;
      if (options.serial !== undefined) {
        if (options.format === undefined) throw new UsageError('--serial needs --format jsonl|csv|kv|nmea');
        const stream = options.stream ?? options.serial.split('/').pop() ?? 'serial';
        const format =
          options.format === 'jsonl'
            ? { kind: 'jsonl' as const, stream, fields: parsePairs(options.fields ?? 'value=value', '--fields') }
            : options.format === 'csv'
              ? { kind: 'csv' as const, stream, columns: (options.columns ?? 'value').split(',') }
              : options.format === 'kv'
                ? { kind: 'kv' as const, stream }
                : { kind: 'nmea' as const, stream };
        source = { kind: 'serial', name: 'watch-serial', path: options.serial, baudRate: options.baud, format } as SourceConfig;
      } else if (options.mqtt !== undefined) {
        if (options.topic === undefined) throw new UsageError('--mqtt needs --topic FILTER');
        source = {
          kind: 'mqtt',
          name: 'watch-mqtt',
          url: options.mqtt,
          subscriptions: [{ topic: options.topic, stream: options.stream ?? options.topic.replace(/[+#]/g, '_'), payload: options.payload, qos: 0, ...(options.payload === 'json' ? { fields: parsePairs(options.fields ?? 'value=value', '--fields') } : {}) }],
        } as SourceConfig;
      } else {
        throw new UsageError('give --config FILE, --serial PATH --format F, or --mqtt URL --topic FILTER; run "datagate sensors watch --help"');
      }
      sensors = { ...base, sources: [source] };
    }
    // An observer: MQTT sources get a client id and clean session of their own, so a watcher never takes the
    // running gateway's session over, never acknowledges for it, and two watchers do not kick each other off.
    const running = await startSensors(sensors, logger, { signal, observer: true });
    const done = new AbortController();
    let printed = 0;
    const pump = async (d: SensorDriver) => {
      for await (const r of d.readings()) {
        stdout.write((options.ndjson ? ndjson(r) : formatReading(r)) + '\n');
        printed++;
        if (options.count !== undefined && printed >= options.count) done.abort();
        if (done.signal.aborted) break;
      }
    };
    for (const d of running.drivers) {
      d.on('status', (s) => stderr.write(`${d.name}: ${s.state}${'reason' in s ? ` (${s.reason})` : ''}${s.state === 'retrying' ? `, next attempt in ${Math.max(0, Math.round((s.nextAttemptAt - Date.now()) / 1000))} s` : ''}\n`));
      d.on('reject', (r) => stderr.write(`${d.name}: rejected ${r.reason}: ${r.detail}\n`));
      stderr.write(`${d.name}: ${d.status().state}\n`);
    }
    if (running.brokerUrl !== null) stderr.write(`embedded MQTT broker on ${running.brokerUrl}\n`);
    const pumps = running.drivers.map(pump);
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
      done.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await running.stop();
    await Promise.allSettled(pumps);
    for (const d of running.drivers) {
      const c = d.counters();
      stderr.write(`${d.name}: ${c.readings} readings, ${Object.values(c.rejects).reduce((a, b) => a + b, 0)} rejected ${JSON.stringify(c.rejects)}, ${c.reconnects} reconnects\n`);
    }
    return 0;
  },
});

const ports = defineCommand({
  name: 'sensors ports',
  summary: 'List serial ports (with their stable /dev/serial/by-id names)',
  options: {},
  async run({ stdout, stderr }) {
    const result = await listSerialPorts();
    if (!result.ok) {
      stderr.write(`cannot list serial ports: ${result.reason}\n`);
      return 1;
    }
    if (result.warning !== undefined) stderr.write(`${result.warning}\n`);
    if (result.ports.length === 0) stdout.write('no serial ports found\n');
    for (const p of result.ports) stdout.write(`${p.path}${p.byId !== undefined ? `  (${p.byId})` : ''}${p.manufacturer !== undefined ? `  ${p.manufacturer}` : ''}\n`);
    return 0;
  },
});

/** `datagate sensors <watch|ports>`. */
export const sensorsCommand: Command = defineCommandGroup('sensors', 'Watch live sensor readings, list serial ports', [watch, ports]);
