// The ingest benchmark's limit: an MQTT subscriber that does nothing but acknowledge QoS 1 messages (mqtt.js
// acknowledges each as soon as it is handled) and append each payload as a line to a file (buffered, no
// fsync), so the bench can count what it took by the publisher's seq. Prints `subscribed` once ready.
//   node --import tsx bench/ingest-nullsub.ts <broker url> <topic filter> <out file>
import { closeSync, openSync, writeSync } from 'node:fs';
import mqtt from 'mqtt';

const [url, filter, outFile] = process.argv.slice(2);
if (url === undefined || filter === undefined || outFile === undefined) throw new Error('usage: ingest-nullsub.ts <url> <filter> <out file>');
const fd = openSync(outFile, 'a');
let lines: string[] = [];
const flush = (): void => {
  if (lines.length === 0) return;
  writeSync(fd, lines.join(''));
  lines = [];
};
setInterval(flush, 5);
const client = mqtt.connect(url, { clientId: `bench-nullsub-${process.pid}`, protocolVersion: 5, clean: true });
client.on('connect', () => client.subscribe(filter, { qos: 1 }, () => process.stdout.write('subscribed\n')));
client.on('message', (_topic, payload) => void lines.push(`${payload.toString()}\n`));
process.once('SIGTERM', () => {
  flush();
  closeSync(fd);
  client.end(true, {}, () => process.exit(0));
});
