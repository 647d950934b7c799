// Child process of the MQTT exactly-once test: a real MqttDriver (QoS 1, persistent session, PUBACK after
// the consumer) feeding a real Pipeline over a UnixFsContentStore in argv[3], from the broker at argv[2].
// argv[4] = N > 0: the process SIGKILLs itself right after the Nth reading is durable and before its
// message is acknowledged, the window in which the broker must redeliver a message that is already stored.
// argv[4] = 0: run until SIGTERM, then flush, close and print `flushed`. argv[5] = 'no-dedup' runs without
// the pipeline as DeliveryLog (to show the test sees the duplicates it guards against). Prints `ready` once
// subscribed and `stored <value>` for each durable reading.
// argv[5] = 'pump': the gateway's own ingest path at speed instead: MQTT 5, JSON payloads with the publisher's
// `seq` (stored as values.seq), pumpInto (many readings per group commit), keepalive 5 s; prints
// `durable <ingested> <commits> <reconnects>` every 200 ms and runs until SIGTERM (the test SIGKILLs it).
import { join } from 'node:path';
import { nopLogger } from '../../chain/logger.ts';
import { MemorySigner } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { pumpInto } from '../../gateway/sensors.ts';
import { MqttDriver, nopSensorLogger } from '../../sensors/index.ts';

const out = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const [url, base, crashArg = '0', mode = 'dedup'] = process.argv.slice(2);
  if (url === undefined || base === undefined) throw new Error('usage: mqtt-pipeline-child.ts <brokerUrl> <baseDir> [crashAfter] [dedup|no-dedup|pump]');
  const crashAfter = Number(crashArg);
  const content = await UnixFsContentStore.open(join(base, 'content'));
  const pipeline = await Pipeline.open({
    dir: join(base, 'pipeline'), contentStore: content, signer: new MemorySigner(new Uint8Array(32).fill(0x5d)), masterKeyPath: join(base, 'master.key'),
    windowMs: 60_000, maxSegmentBytes: 65_536, limits: { maxQueueBytes: 64 << 20, maxStoreBytes: 1 << 30, policy: 'stop-accepting' },
  });
  const driver = mode === 'pump' ? new MqttDriver(
    {
      name: 'pump-once', url, keepaliveSec: 5, reconnect: { baseMs: 100, maxMs: 500 },
      subscriptions: [{ topic: 'sensors/+/reading', stream: 'seq/${1}', payload: 'json', fields: { seq: 'seq', value: 'value' }, qos: 1 }],
    },
    { logger: nopSensorLogger },
    { ackAfterConsumer: true, deliveries: pipeline },
  ) : new MqttDriver(
    { name: 'exactly-once', url, protocolVersion: 4, subscriptions: [{ topic: 'once/+', stream: 'once/${1}', payload: 'number', qos: 1 }] },
    { logger: nopSensorLogger },
    { ackAfterConsumer: true, ...(mode === 'dedup' ? { deliveries: pipeline } : {}) },
  );
  let stored = 0;
  const pump = mode === 'pump' ? pumpInto(driver, pipeline, nopLogger) : (async () => {
    for await (const r of driver.readings()) {
      await pipeline.ingest(r);
      out(`stored ${r.value}`);
      if (++stored === crashAfter) process.kill(process.pid, 'SIGKILL');
      driver.acknowledge(r);
    }
  })();
  await driver.start();
  out('ready');
  const report = mode !== 'pump' ? undefined : setInterval(() => {
    const s = pipeline.status();
    out(`durable ${s.ingested} ${s.commits} ${driver.counters().reconnects}`);
  }, 200);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  clearInterval(report);
  await driver.stop();
  await pump;
  await pipeline.flush();
  await pipeline.close();
  await content.close();
  out('flushed');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
