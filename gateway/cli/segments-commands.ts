// `datagate segments list|key|open|verify`: look at the data segments a gateway sealed and stored. list, key
// and verify read the node's data directory when the node is stopped; while it runs (its LevelDB databases are
// locked) they go through its admin API instead (URL and bearer token from <data dir>/api.json, endpoints in
// pipeline/segments-api.ts), with the same output and exit codes. On a running node, verify checks the
// segments stored when it starts (see pipeline/verify-store.ts). open decrypts one segment from its CID with
// a key file, checking key commitment, AEAD tag, Merkle root and device signature, and prints the readings as
// NDJSON; it reads the content store directly or, while the node runs, through its trustless gateway.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bytesToHex, hasCode, hexToBytes, openSealedBox, parseReaderPublicKey, readerKeyPair, sealToReader } from '../../chain/index.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand, defineCommandGroup } from './args.ts';
import { NodeApiClient, NodeApiError } from '../api/client.ts';
import { UnixFsContentStore } from '../content/unixfs-store.ts';
import { fetchVerified } from './ipfs-commands.ts';
import { P_SEGMENT, decodeSegment, keyNumber, numberKey, prefixRange } from '../pipeline/pipeline-records.ts';
import { segmentLine } from '../api/segments-api.ts';
import type { Db } from '../pipeline/segment-steps.ts';
import { openPipelineDb, segmentRecordOf } from '../pipeline/segment-steps.ts';
import { loadOrCreateMasterKey, openSegment, readManifest, unwrapKey } from '../pipeline/segment-crypto.ts';
import type { VerifyStoreReport } from '../pipeline/verify-store.ts';
import { verifyStore } from '../pipeline/verify-store.ts';

/** A list or a verify of a large store streams for a long time; a stuck node still gets noticed. */
const LONG_CALL_MS = 10 * 60_000;

const dataDir = {
  'data-dir': { type: 'string', valueName: 'dir', default: './data/dev', description: 'Data directory of the node (while the node runs: its API, from <dir>/api.json)' },
} as const;

/**
 * `local()` on the data of a stopped node in `dir`; when a running node holds its databases (the LevelDB
 * lock), `remote(api)` through that node's API instead. Returns what the one that ran returns.
 */
async function localOrApi<T>(dir: string, local: () => Promise<T>, remote: (api: NodeApiClient) => Promise<T>): Promise<T> {
  try {
    return await local();
  } catch (err) {
    if (!hasCode(err, 'PIPELINE_LOCKED') && !hasCode(err, 'CONTENT_STORE_LOCKED')) throw err;
  }
  return remote(await NodeApiClient.open(dir, `the node using ${dir} is running (its databases are locked) but its API cannot be reached`));
}

async function withDb<T>(dir: string, fn: (db: Db) => Promise<T>): Promise<T> {
  if (!existsSync(join(dir, 'pipeline'))) throw new UsageError(`${dir} holds no pipeline database: not a datagate data directory, or no node ran there yet (see --data-dir)`);
  const db = await openPipelineDb(join(dir, 'pipeline'), { create: false });
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
    const dir = resolve(options['data-dir']);
    const { stream } = options;
    await localOrApi(
      dir,
      () =>
        withDb(dir, async (db) => {
          for await (const [k, v] of db.iterator(prefixRange(P_SEGMENT))) {
            const s = segmentRecordOf(decodeSegment(keyNumber(k), v));
            if (stream === undefined || s.stream === stream) stdout.write(segmentLine(s) + '\n');
          }
        }),
      async (api) => {
        const res = await api.call(`/api/v0/segments${stream !== undefined ? `?stream=${encodeURIComponent(stream)}` : ''}`, { timeoutMs: LONG_CALL_MS });
        const text = new TextDecoder();
        try {
          for await (const chunk of res.body ?? []) stdout.write(text.decode(chunk, { stream: true }));
        } catch (err) {
          throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API broke off the list: ${(err as Error).message}`, {}, { cause: err });
        }
        stdout.write(text.decode());
      },
    );
    return 0;
  },
});

const key = defineCommand({
  name: 'segments key',
  summary: 'Write the decryption key of one segment to a file (mode 0600), or sealed to a buyer with --to',
  positionals: [{ name: 'ID', description: 'Segment id from `segments list`', required: true }],
  options: {
    output: { type: 'string', valueName: 'file', description: 'Key file to write (refuses to overwrite)' },
    to: { type: 'string', valueName: 'pubkey', description: "Seal the key to this reader: an X25519 public key in base64 (eth_getEncryptionPublicKey's format, or `segments reader-key`); the file then holds an EIP-1024 sealed box, not the key" },
    ...dataDir,
  },
  async run({ options, positionals, stdout }) {
    if (options.output === undefined) throw new UsageError('--output FILE is required');
    const id = Number(positionals[0]);
    if (!/^[0-9]+$/.test(positionals[0]!) || !Number.isSafeInteger(id)) throw new UsageError('ID must be a segment id from `datagate segments list`');
    const reader = options.to === undefined ? null : readerPublicKeyOf(options.to);
    const dir = resolve(options['data-dir']);
    const notFound = (): never => {
      throw new UsageError(`no segment ${id}; see datagate segments list`);
    };
    const dropped = (): never => {
      throw new UsageError(`segment ${id} was dropped; its key is gone`);
    };
    const segmentKey = await localOrApi(
      dir,
      () =>
        withDb(dir, async (db) => {
          const v = await db.get(numberKey(P_SEGMENT, id));
          if (v === undefined) return notFound();
          const s = decodeSegment(id, v);
          if (s.state === 'dropped') return dropped();
          const master = await loadOrCreateMasterKey(join(dir, 'master.key'));
          try {
            return unwrapKey(s.wrappedKey, master, s.manifestHash);
          } finally {
            master.fill(0);
          }
        }),
      async (api) => {
        let res: Response;
        try {
          res = await api.call(`/api/v0/segments/${id}/key`, { method: 'POST' });
        } catch (err) {
          if (err instanceof NodeApiError && err.fields.status === 404) return notFound();
          if (err instanceof NodeApiError && err.fields.status === 410) return dropped();
          throw err;
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length !== 32) {
          bytes.fill(0);
          throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API sent a ${bytes.length}-byte segment key, not 32 bytes`, { bytes: bytes.length });
        }
        return bytes;
      },
    );
    try {
      // Sealed, the key text (hex) is what a wallet's eth_decrypt shows.
      const text = bytesToHex(segmentKey);
      const out = reader === null ? text : JSON.stringify(sealToReader(new TextEncoder().encode(text), reader));
      await writeFile(options.output, out + '\n', { mode: 0o600, flag: 'wx' });
    } finally {
      segmentKey.fill(0);
    }
    stdout.write(`${options.output}\n`);
    return 0;
  },
});

const open = defineCommand({
  name: 'segments open',
  summary: 'Decrypt a segment by CID and print its readings as NDJSON, after checking every proof',
  positionals: [{ name: 'CID', description: 'The segment envelope CID', required: true }],
  options: {
    'key-file': { type: 'string', valueName: 'file', description: 'File holding the segment key (hex), or the key sealed to you (JSON, from `segments key --to`)' },
    'reader-key': { type: 'string', valueName: 'file', description: 'Your reader secret key (from `segments reader-key`), to open a sealed key file' },
    ...dataDir,
  },
  async run({ options, positionals, stdout, stderr }) {
    if (options['key-file'] === undefined) throw new UsageError('--key-file FILE is required');
    const segmentKey = await readSegmentKey(options['key-file'], options['reader-key']);
    const dir = resolve(options['data-dir']);
    const envelope = await localOrApi(
      dir,
      async () => {
        const store = await openExistingStore(dir);
        try {
          return await store.get(positionals[0]!);
        } finally {
          await store.close();
        }
      },
      (api) => fetchVerified(api.url, positionals[0]!),
    );
    const manifest = readManifest(envelope);
    const readings = openSegment(envelope, segmentKey);
    segmentKey.fill(0);
    stderr.write(`segment of ${manifest.stream}: ${readings.length} readings, signed by device ${manifest.device.address} (${manifest.device.keyType}); key commitment, AEAD tag, Merkle root and signature checked\n`);
    for (const r of readings) stdout.write(JSON.stringify(r) + '\n');
    return 0;
  },
});

const readerKey = defineCommand({
  name: 'segments reader-key',
  summary: "Make an X25519 reader key pair for receiving sealed segment keys; prints the public key (base64)",
  options: { output: { type: 'string', valueName: 'file', description: 'Secret key file to write (mode 0600; refuses to overwrite)' } },
  async run({ options, stdout }) {
    if (options.output === undefined) throw new UsageError('--output FILE is required');
    const pair = readerKeyPair();
    try {
      await writeFile(options.output, bytesToHex(pair.secretKey) + '\n', { mode: 0o600, flag: 'wx' });
    } finally {
      pair.secretKey.fill(0);
    }
    stdout.write(`${Buffer.from(pair.publicKey).toString('base64')}\n`);
    return 0;
  },
});

function readerPublicKeyOf(base64: string): Uint8Array {
  try {
    return parseReaderPublicKey(base64);
  } catch (err) {
    throw new UsageError(`--to: ${(err as Error).message}`);
  }
}

/** The segment key of a key file: hex, or an EIP-1024 box sealed to the secret key in `readerKeyFile`. */
async function readSegmentKey(keyFile: string, readerKeyFile: string | undefined): Promise<Uint8Array> {
  const text = (await readFile(keyFile, 'utf8')).trim();
  if (!text.startsWith('{')) return hexToBytes(text);
  if (readerKeyFile === undefined) throw new UsageError(`${keyFile} holds a sealed key: name your reader secret key with --reader-key FILE`);
  let box: unknown;
  try {
    box = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${keyFile} is neither a hex key nor a sealed key (JSON): ${(err as Error).message}`);
  }
  const secret = hexToBytes((await readFile(readerKeyFile, 'utf8')).trim());
  try {
    return hexToBytes(new TextDecoder().decode(openSealedBox(box, secret)));
  } finally {
    secret.fill(0);
  }
}

/** The content store of data directory `dir`, refusing to create one in a directory no node used (a mistyped --data-dir). */
async function openExistingStore(dir: string): Promise<UnixFsContentStore> {
  if (!existsSync(join(dir, 'content')) && !existsSync(join(dir, 'pipeline'))) {
    throw new UsageError(`${dir} holds no content store: not a datagate data directory, or no node ran there yet (see --data-dir)`);
  }
  return UnixFsContentStore.open(join(dir, 'content'));
}

/** The report a node's API sent, checked for the fields the CLI prints. */
function reportOf(body: unknown): VerifyStoreReport {
  const r = body as Partial<Record<keyof VerifyStoreReport, unknown>> | null;
  const counts = ['segments', 'readings', 'gaps', 'duplicates', 'corrupt'] as const;
  if (r === null || typeof r !== 'object' || counts.some((f) => typeof r[f] !== 'number') || !Array.isArray(r.details)) {
    throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API sent no verify report (${counts.join(', ')}, details)`);
  }
  return r as unknown as VerifyStoreReport;
}

const verify = defineCommand({
  name: 'segments verify',
  summary: 'Check every stored segment; prints segments, readings, gaps, duplicates, corrupt (exit 1 unless all clean)',
  options: dataDir,
  async run({ options, stdout }) {
    const dir = resolve(options['data-dir']);
    const report = await localOrApi(
      dir,
      async () => {
        const store = await openExistingStore(dir);
        try {
          return await verifyStore({ dir: join(dir, 'pipeline'), contentStore: store, masterKeyPath: join(dir, 'master.key') });
        } finally {
          await store.close();
        }
      },
      async (api) => reportOf(await api.json('/api/v0/segments/verify', { method: 'POST', timeoutMs: LONG_CALL_MS })),
    );
    for (const line of report.details) stdout.write(`${line}\n`);
    stdout.write(`segments: ${report.segments}, readings: ${report.readings}, gaps: ${report.gaps}, duplicates: ${report.duplicates}, corrupt: ${report.corrupt}\n`);
    return report.gaps === 0 && report.duplicates === 0 && report.corrupt === 0 ? 0 : 1;
  },
});

/** `datagate segments <list|key|open|verify>`. */
export const segmentsCommand: Command = defineCommandGroup('segments', 'List, verify and open the encrypted data segments', [list, key, readerKey, open, verify]);
