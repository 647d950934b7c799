// Child process for the WAL crash test: opens the WAL in argv[2] (max file size argv[3]), counts the records
// already there, then appends numbered records with sync:true forever, printing each record's index on its
// own line once its append has resolved. The test kills it with SIGKILL at a random moment.
import { pathToFileURL } from 'node:url';
import { Wal } from '../../chain/lbft/wal.ts';

/** Record `i`: its index (u32 BE) followed by a filler whose length and bytes are derived from i. */
export function walRecord(i: number): Uint8Array {
  const out = new Uint8Array(4 + ((i * 7919) % 3000) + 1);
  new DataView(out.buffer).setUint32(0, i);
  for (let k = 4; k < out.length; k++) out[k] = (i + k) & 0xff;
  return out;
}

async function main(): Promise<void> {
  const [dir, maxFileBytes] = process.argv.slice(2);
  if (dir === undefined) throw new Error('usage: wal-writer.ts <dir> [maxFileBytes]');
  const wal = await Wal.open(dir, { maxFileBytes: maxFileBytes === undefined ? undefined : Number(maxFileBytes) });
  let next = 0;
  for await (const _ of wal.replay()) next++;
  process.stdout.write(`start ${next}\n`);
  for (;;) {
    await wal.append(walRecord(next), { sync: true });
    process.stdout.write(`${next}\n`);
    next++;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
