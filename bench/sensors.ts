// Sensor benchmark: readings/s through the JSON-line serial parser (framer + parser, as the serial driver
// runs them), through the NMEA parser, and through the MQTT driver from mosquitto on loopback (10 topics,
// QoS 1), plus the RSS of the process. Prints figures; asserts nothing.
//   npm run bench:sensors [-- --seconds 5 --mqtt-messages 50000]
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { LineFramer, MqttDriver, createLineParser, nmeaChecksum, nopSensorLogger } from '../sensors/index.ts';
import { mosquittoSkipReason, startMosquitto } from '../test/helpers/mosquitto.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, 'mqtt-messages': { type: 'string', default: '50000' } } });
const SECONDS = Number(values.seconds);
const MQTT_MESSAGES = Number(values['mqtt-messages']);
const rssMiB = () => (process.memoryUsage().rss / 1048576).toFixed(0);

function parserRate(label: string, chunk: Uint8Array, linesPerChunk: number, parser: (line: string, now: number) => { ok: boolean }): void {
  const framer = new LineFramer(4096);
  let readings = 0;
  let rejects = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) {
      for (const line of framer.push(chunk).lines) {
        if (parser(line, Date.now()).ok) readings++;
        else rejects++;
      }
    }
  }
  const secs = (performance.now() - start) / 1000;
  console.log(`${label}: ${(readings / secs).toFixed(0)} readings/s (${(readings / linesPerChunk / secs * chunk.length / 1048576).toFixed(1)} MiB/s of input), rejects ${rejects}`);
}

const jsonLines = Array.from({ length: 64 }, (_, i) => JSON.stringify({ t: 20 + (i % 7) * 0.25, h: 40 + (i % 11), ts: 1_795_000_000_000 + i * 1000 })).join('\n') + '\n';
parserRate('serial JSON lines (framer + parser)', new TextEncoder().encode(jsonLines), 64, createLineParser({ kind: 'jsonl', stream: 'barn', fields: { temperature: 't', humidity: 'h' }, tsField: 'ts' }));

const gga = (i: number) => {
  const body = `GPGGA,1235${String(i % 60).padStart(2, '0')},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,`;
  return `$${body}*${nmeaChecksum(body)}\r\n`;
};
parserRate('NMEA GGA (framer + parser)', new TextEncoder().encode(Array.from({ length: 64 }, (_, i) => gga(i)).join('')), 64, createLineParser({ kind: 'nmea', stream: 'gps' }));
console.log(`RSS after parsers: ${rssMiB()} MiB`);

const skip = mosquittoSkipReason();
if (skip !== false) {
  console.log(`MQTT: ${skip}`);
} else {
  const broker = await startMosquitto();
  const driver = new MqttDriver(
    { name: 'bench', url: broker.url, subscriptions: [{ topic: 'bench/+/value', stream: 'bench/${1}', payload: 'number', qos: 1 }] },
    { logger: nopSensorLogger },
  );
  await driver.start();
  const publisher = await mqtt.connectAsync(broker.url, { clientId: 'bench-publisher' });
  let received = 0;
  const consumer = (async () => {
    for await (const _r of driver.readings()) if (++received >= MQTT_MESSAGES) break;
  })();
  const start = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < MQTT_MESSAGES; i++) {
    inflight.push(publisher.publishAsync(`bench/${i % 10}/value`, String(i * 0.5), { qos: 1 }));
    if (inflight.length >= 500) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  await consumer;
  const secs = (performance.now() - start) / 1000;
  console.log(`MQTT (mosquitto on loopback, 10 topics, QoS 1, publisher in the same process): ${(received / secs).toFixed(0)} readings/s, rejects ${JSON.stringify(driver.counters().rejects)}`);
  console.log(`RSS after MQTT: ${rssMiB()} MiB`);
  await publisher.endAsync();
  await driver.stop();
  await broker.cleanup();
}
