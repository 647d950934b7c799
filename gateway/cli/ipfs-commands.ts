// `datagate ipfs add|get|unpin|gc`: put a file into the node's content store and get it back, with IPFS CIDs;
// give a file up and collect the garbage. They open the store in `--data-dir` directly; when a running node
// holds it (the LevelDB lock), add and get go through that node's API instead: adds with its admin token, gets
// through its trustless gateway, verifying every block. unpin and gc need the node stopped (a running node
// collects garbage itself after its pipeline drops segments).
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CarReader } from '@ipld/car';
import { exporter } from 'ipfs-unixfs-exporter';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { ContentError, hasCode } from '../../chain/index.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand, defineCommandGroup } from './args.ts';
import { NodeApiClient, NodeApiError } from '../api/client.ts';
import { UnixFsContentStore } from '../content/unixfs-store.ts';

/** Adding a large file through a running node's API may take a while on an SD card. */
const ADD_TIMEOUT_MS = 5 * 60_000;

const dataDirOption = { 'data-dir': { type: 'string', valueName: 'dir', default: './data/dev', description: 'Data directory of the node (its content store is <dir>/content)' } } as const;

/** The content store of `dataDir`, or null when a running node holds it. */
async function openLocal(dataDir: string): Promise<UnixFsContentStore | null> {
  try {
    return await UnixFsContentStore.open(join(resolve(dataDir), 'content'));
  } catch (err) {
    if (hasCode(err, 'CONTENT_STORE_LOCKED')) return null;
    throw err;
  }
}

/** The content store of `dataDir` for `command`, which needs the node stopped. Throws CONTENT_STORE_LOCKED saying so. */
async function openStopped(dataDir: string, command: string): Promise<UnixFsContentStore> {
  const local = await openLocal(dataDir);
  if (local !== null) return local;
  throw new ContentError(
    'CONTENT_STORE_LOCKED',
    `datagate ${command} needs the node stopped: a running node holds the content store in ${dataDir} (it collects garbage itself after its pipeline drops segments); stop it and run this again`,
    { dataDir },
  );
}

/** The API of the node that holds the content store of `dataDir` locked. */
function apiOf(dataDir: string): Promise<NodeApiClient> {
  return NodeApiClient.open(resolve(dataDir), `the content store in ${dataDir} is locked by a running node, but its API cannot be reached`);
}

/** Fetch `cid` as a CAR from a trustless gateway, check every block against its CID, and export the file. */
export async function fetchVerified(gatewayUrl: string, cidText: string): Promise<Uint8Array> {
  const root = CID.parse(cidText);
  const res = await fetch(`${gatewayUrl}/ipfs/${root.toString()}?format=car`, { headers: { accept: 'application/vnd.ipld.car' } });
  if (res.status === 404) throw new UsageError(`${cidText} is not in the node's content store`);
  if (!res.ok) throw new Error(`gateway answered ${res.status}: ${await res.text()}`);
  const car = await CarReader.fromBytes(new Uint8Array(await res.arrayBuffer()));
  const blocks = new Map<string, Uint8Array>();
  for await (const { cid, bytes } of car.blocks()) {
    const digest = await sha256.digest(bytes);
    if (cid.multihash.code !== sha256.code || !equal(digest.digest, cid.multihash.digest)) throw new Error(`block ${cid} does not match its CID: the gateway sent corrupt data`);
    blocks.set(cid.toString(), bytes);
  }
  const store = {
    async *get(cid: CID) {
      const b = blocks.get(cid.toString()) ?? blocks.get(cid.toV1().toString());
      if (b === undefined) throw new Error(`block ${cid} missing from the CAR`);
      yield b;
    },
  };
  const entry = await exporter(root, store as never);
  if (entry.type !== 'file' && entry.type !== 'raw') throw new UsageError(`${cidText} is a ${entry.type}, not a file`);
  const parts: Uint8Array[] = [];
  for await (const chunk of entry.content()) parts.push(chunk as Uint8Array);
  return Buffer.concat(parts);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const add = defineCommand({
  name: 'ipfs add',
  summary: 'Add a file to the content store and print its CID',
  positionals: [{ name: 'FILE', description: 'The file to add', required: true }],
  options: {
    'cid-version': { type: 'integer', valueName: 'n', default: 1, description: '0 (kubo defaults: Qm... CIDs) or 1 (raw leaves: bafy.../bafk...)' },
    ...dataDirOption,
  },
  async run({ options, positionals, stdout }) {
    const version = options['cid-version'];
    if (version !== 0 && version !== 1) throw new UsageError('--cid-version must be 0 or 1');
    const bytes = await readFile(positionals[0]!);
    const local = await openLocal(options['data-dir']);
    if (local !== null) {
      try {
        stdout.write(`${await local.add(bytes, { cidVersion: version })}\n`);
      } finally {
        await local.close();
      }
      return 0;
    }
    const api = await apiOf(options['data-dir']);
    const body = (await api.json(`/api/v0/add?cid-version=${version}`, { method: 'POST', body: bytes, timeoutMs: ADD_TIMEOUT_MS })) as { cid?: unknown };
    if (typeof body.cid !== 'string') throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API at ${api.url} answered the add without a CID`);
    stdout.write(`${body.cid}\n`);
    return 0;
  },
});

const get = defineCommand({
  name: 'ipfs get',
  summary: 'Write the bytes of a CID (to --output, or standard output)',
  positionals: [{ name: 'CID', description: 'The content identifier', required: true }],
  options: { output: { type: 'string', valueName: 'file', description: 'Write here instead of standard output' }, ...dataDirOption },
  async run({ options, positionals, stdout }) {
    const cid = positionals[0]!;
    const local = await openLocal(options['data-dir']);
    let bytes: Uint8Array;
    if (local !== null) {
      try {
        bytes = await local.get(cid);
      } finally {
        await local.close();
      }
    } else {
      bytes = await fetchVerified((await apiOf(options['data-dir'])).url, cid);
    }
    if (options.output !== undefined) await writeFile(options.output, bytes);
    else stdout.write(Buffer.from(bytes) as unknown as string);
    return 0;
  },
});

const unpin = defineCommand({
  name: 'ipfs unpin',
  summary: 'Give a file up: the next `ipfs gc` removes its blocks (node stopped)',
  positionals: [{ name: 'CID', description: 'Root CID of the file (not a segment the pipeline still stores: it would be lost at the next gc)', required: true }],
  options: { ...dataDirOption },
  async run({ options, positionals, stdout }) {
    const cid = positionals[0]!;
    const store = await openStopped(options['data-dir'], 'ipfs unpin');
    try {
      if (!(await store.has(cid))) throw new ContentError('CONTENT_NOT_FOUND', `${cid} is not in the content store of ${options['data-dir']}; check the CID and --data-dir`, { cid });
      await store.unpin(cid);
    } finally {
      await store.close();
    }
    stdout.write(`unpinned ${cid}\n`);
    return 0;
  },
});

const gc = defineCommand({
  name: 'ipfs gc',
  summary: 'Remove the blocks no kept file needs and print what was freed, as JSON (node stopped)',
  options: { ...dataDirOption },
  async run({ options, stdout }) {
    const store = await openStopped(options['data-dir'], 'ipfs gc');
    try {
      const { removedBlocks, freedBytes, keptBlocks } = await store.gc({ compact: true });
      stdout.write(`${JSON.stringify({ removedBlocks, freedBytes, keptBlocks })}\n`);
    } finally {
      await store.close();
    }
    return 0;
  },
});

/** `datagate ipfs <add|get|unpin|gc>`. */
export const ipfsCommand: Command = defineCommandGroup('ipfs', 'Add files to the content store, get them back by CID, give them up and collect garbage', [add, get, unpin, gc]);
