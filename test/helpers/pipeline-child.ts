// Child process of the pipeline power-cut test: opens a real UnixFsContentStore and a Pipeline in the base
// directory argv[2] and, with mode 'run', ingests simulator-like readings of two streams at argv[4]
// readings/s until it is killed, printing `a <stream> <seq> <ts>` for each reading whose ingest() resolved
// (acknowledged; stdout to a pipe is synchronous on Linux, so a printed line is never lost to SIGKILL).
// Every run starts each stream's seq at 0, as a restarted driver does: the pipeline records the run
// boundary itself (seq did not increase), and ts (the wall clock) tells runs apart. Mode 'flush' seals and
// stores everything left, closes cleanly and prints `flushed`. Prints `loaded` once its modules are in and
// `ready` once the pipeline has opened (and resumed).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MemorySigner } from '../../device/index.ts';
import { UnixFsContentStore } from '../../gateway/content/unixfs-store.ts';
import { Pipeline } from '../../gateway/pipeline/pipeline.ts';
import { simReading } from './pipeline-fixtures.ts';

export const CHILD_STREAMS = ['sim/temp', 'sim/gps'] as const;
export const CHILD_SIGNER_KEY = new Uint8Array(32).fill(0x5a);

const out = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const [base, mode = 'run', rateArg = '5000', windowArg = '200'] = process.argv.slice(2);
  if (base === undefined) throw new Error('usage: pipeline-child.ts <baseDir> [run|flush] [readings/s] [windowMs]');
  out('loaded');
  const content = await UnixFsContentStore.open(join(base, 'content'));
  const pipeline = await Pipeline.open({
    dir: join(base, 'pipeline'), contentStore: content, signer: new MemorySigner(CHILD_SIGNER_KEY), masterKeyPath: join(base, 'master.key'),
    windowMs: Number(windowArg), maxSegmentBytes: 16_384, limits: { maxQueueBytes: 256 << 20, maxStoreBytes: 1 << 30, policy: 'stop-accepting' },
  });
  out('ready');
  if (mode === 'flush') {
    await pipeline.flush();
    await pipeline.close();
    await content.close();
    out('flushed');
    return;
  }
  const rate = Number(rateArg);
  const start = performance.now();
  const seq = CHILD_STREAMS.map(() => 0);
  let issued = 0;
  let inFlight = 0;
  const pump = (): void => {
    const due = Math.floor(((performance.now() - start) * rate) / 1000);
    while (issued < due && inFlight < 4000) {
      const i = issued++ % CHILD_STREAMS.length;
      const reading = simReading(CHILD_STREAMS[i]!, seq[i]!++, Date.now());
      inFlight++;
      pipeline.ingest(reading).then(
        () => {
          inFlight--;
          out(`a ${reading.stream} ${reading.seq} ${Math.floor(reading.ts)}`);
        },
        (err: unknown) => {
          inFlight--;
          out(`r ${reading.stream} ${reading.seq} ${(err as { code?: string }).code ?? (err as Error).message}`);
        },
      );
    }
  };
  setInterval(pump, 5);
  setTimeout(() => {
    out('timeout');
    process.exit(2);
  }, 20_000).unref();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
