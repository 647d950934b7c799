// `datagate segments list|key|open|verify`: look at the data segments a gateway sealed and stored. list and
// verify read the node's data directory (stop the node first: its databases are locked while it runs);
// open decrypts one segment from its CID with a key file, checking key commitment, AEAD tag, Merkle root and
// device signature, and prints the readings as NDJSON.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bytesToHex, hasCode, hexToBytes } from '../chain/index.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand, defineCommandGroup } from './args.ts';
import { UnixFsContentStore } from './content/unixfs-store.ts';
import { fetchVerified } from './ipfs-commands.ts';
import { API_FILE } from './content/admin-api.ts';
import { decodeSegment, keyNumber, prefixRange, P_SEGMENT } from './pipeline/pipeline-records.ts';
import { openPipelineDb } from './pipeline/segment-steps.ts';
import { loadOrCreateMasterKey, openSegment, readManifest, unwrapKey } from './pipeline/segment-crypto.ts';
import { verifyStore } from './pipeline/verify-store.ts';

const dataDir = { 'data-dir': { type: 'string', valueName: 'dir', default: './data/dev', description: 'Data directory of the node' } } as const;

function locked(err: unknown, dir: string): never {
  if (hasCode(err, 'PIPELINE_LOCKED') || hasCode(err, 'CONTENT_STORE_LOCKED') || /lock/i.test(String((err as Error).message))) {
    throw new UsageError(`the node using ${dir} is running; stop it first (its databases are locked while it runs)`);
  }
  throw err;
}

async function withDb<T>(dir: string, fn: (db: Awaited<ReturnType<typeof openPipelineDb>>) => Promise<T>): Promise<T> {
  let db;
  try {
    db = await openPipelineDb(join(resolve(dir), 'pipeline'), { create: false });
  } catch (err) {
    locked(err, dir);
  }
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

const list = defineCommand({
  name: 'segments list',
  summary: 'List the sealed and stored segments (NDJSON)',
  options: { stream: { type: 'string', valueName: 'name', description: 'Only this stream' }, ...dataDir },
  async run({ options, stdout }) {
    await withDb(options['data-dir'], async (db) => {
      for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
        const s = decodeSegment(keyNumber(k), v);
        if (options.stream !== undefined && s.stream !== options.stream) continue;
        stdout.write(
          JSON.stringify({ id: s.no, stream: s.stream, state: s.state, firstSeq: s.firstSeq, lastSeq: s.lastSeq, count: s.count, firstTs: s.firstTs, lastTs: s.lastTs, manifestHash: bytesToHex(s.manifestHash), cid: s.cid ?? null }) + '\n',
        );
      }
    });
    return 0;
  },
});

const key = defineCommand({
  name: 'segments key',
  summary: 'Write the decryption key of one segment to a file (mode 0600), as a seller hands it to a buyer',
  positionals: [{ name: 'ID', description: 'Segment id from `segments list`', required: true }],
  options: { output: { type: 'string', valueName: 'file', description: 'Key file to write (refuses to overwrite)' }, ...dataDir },
  async run({ options, positionals, stdout }) {
    if (options.output === undefined) throw new UsageError('--output FILE is required');
    const id = Number(positionals[0]);
    if (!Number.isSafeInteger(id) || id < 0) throw new UsageError('ID must be a segment id from `datagate segments list`');
    const dir = resolve(options['data-dir']);
    const master = await loadOrCreateMasterKey(join(dir, 'master.key'));
    try {
      const segmentKey = await withDb(dir, async (db) => {
        for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
          const s = decodeSegment(keyNumber(k), v);
          if (s.no === id) {
            if (s.state === 'dropped') throw new UsageError(`segment ${id} was dropped; its key is gone`);
            return unwrapKey(s.wrappedKey, master, s.manifestHash);
          }
        }
        throw new UsageError(`no segment ${id}; see datagate segments list`);
      });
      await writeFile(options.output, bytesToHex(segmentKey) + '\n', { mode: 0o600, flag: 'wx' });
      segmentKey.fill(0);
    } finally {
      master.fill(0);
    }
    stdout.write(`${options.output}\n`);
    return 0;
  },
});

const open = defineCommand({
  name: 'segments open',
  summary: 'Decrypt a segment by CID and print its readings as NDJSON, after checking every proof',
  positionals: [{ name: 'CID', description: 'The segment envelope CID', required: true }],
  options: { 'key-file': { type: 'string', valueName: 'file', description: 'File holding the segment key (hex)' }, ...dataDir },
  async run({ options, positionals, stdout, stderr }) {
    if (options['key-file'] === undefined) throw new UsageError('--key-file FILE is required');
    const segmentKey = hexToBytes((await readFile(options['key-file'], 'utf8')).trim());
    const dir = resolve(options['data-dir']);
    let envelope: Uint8Array;
    try {
      const store = await UnixFsContentStore.open(join(dir, 'content'));
      try {
        envelope = await store.get(positionals[0]!);
      } finally {
        await store.close();
      }
    } catch (err) {
      if (!hasCode(err, 'CONTENT_STORE_LOCKED')) throw err;
      const api = JSON.parse(await readFile(join(dir, API_FILE), 'utf8')) as { url: string };
      envelope = await fetchVerified(api.url, positionals[0]!);
    }
    const manifest = readManifest(envelope);
    const readings = openSegment(envelope, segmentKey);
    segmentKey.fill(0);
    stderr.write(`segment of ${manifest.stream}: ${readings.length} readings, signed by device ${manifest.device.address} (${manifest.device.keyType}); key commitment, AEAD tag, Merkle root and signature checked\n`);
    for (const r of readings) stdout.write(JSON.stringify(r) + '\n');
    return 0;
  },
});

const verify = defineCommand({
  name: 'segments verify',
  summary: 'Check every stored segment; prints segments, readings, gaps, duplicates, corrupt (exit 1 unless all clean)',
  options: dataDir,
  async run({ options, stdout }) {
    const dir = resolve(options['data-dir']);
    let store;
    try {
      store = await UnixFsContentStore.open(join(dir, 'content'));
    } catch (err) {
      locked(err, dir);
    }
    try {
      const report = await verifyStore({ dir: join(dir, 'pipeline'), contentStore: store, masterKeyPath: join(dir, 'master.key') }).catch((err: unknown) => locked(err, dir));
      for (const line of report.details) stdout.write(`${line}\n`);
      stdout.write(`segments: ${report.segments}, readings: ${report.readings}, gaps: ${report.gaps}, duplicates: ${report.duplicates}, corrupt: ${report.corrupt}\n`);
      return report.gaps === 0 && report.duplicates === 0 && report.corrupt === 0 ? 0 : 1;
    } finally {
      await store.close();
    }
  },
});

/** `datagate segments <list|key|open|verify>`. */
export const segmentsCommand: Command = defineCommandGroup('segments', 'List, verify and open the encrypted data segments', [list, key, open, verify]);
