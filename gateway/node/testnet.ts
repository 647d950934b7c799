// A committee of separate `datagate start` processes on this machine (docs/architecture.md "Provisioning a
// committee"): keys in keystore files, enrolment records, the genesis file and one config per node, made with the
// same code as `datagate init` and `datagate genesis`; then every node started as its own process. `datagate
// testnet` and the end-to-end tests use it. Everything listens on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../../chain/index.ts';
import { DatagateError, genesisOf, publicKeyToAddress, secp256k1 } from '../../chain/index.ts';
import { KeystoreSigner, MIN_SCRYPT_N, encryptKeystore } from '../../device/index.ts';
import { buildGenesis } from '../committee-genesis.ts';
import { writeGenesisFile } from '../config/genesis-file.ts';
import type { EnrolmentRole } from '../enrolment.ts';
import { createEnrolment } from '../enrolment.ts';
import { loadOrCreatePeerKey } from '../peer-key.ts';

/** The `datagate` entry point and its V8 flags, found from here in the sources and in dist/ alike. */
async function entryPoint(): Promise<{ bin: string; flags: readonly string[] }> {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const bin = join(dir, 'gateway', 'bin', 'datagate.mjs');
    if (!existsSync(bin)) continue;
    const { GATEWAY_NODE_FLAGS } = (await import(pathToFileURL(join(dir, 'gateway', 'bin', 'node-flags.mjs')).href)) as { GATEWAY_NODE_FLAGS: readonly string[] };
    return { bin, flags: GATEWAY_NODE_FLAGS };
  }
  throw new Error('gateway/bin/datagate.mjs not found above ' + fileURLToPath(import.meta.url));
}
/** Chain id of a testnet unless told otherwise (not the dev chain's: testnet keys are made fresh). */
export const TESTNET_CHAIN_ID = 4242;
/** Time a node has to print its start line. */
const START_TIMEOUT_MS = 120_000;

/** A testnet node that did not start (TESTNET_NODE_FAILED). */
export class TestnetError extends DatagateError<'TESTNET_NODE_FAILED'> {}

export interface TestnetOptions {
  readonly dir: string;
  readonly validators: number;
  readonly proposers: number;
  readonly followers: number;
  readonly chainId?: number;
  readonly periodMs?: number;
  readonly timeoutMs?: number;
  /** Prefunded with 1,000,000 ether each (e.g. test senders). */
  readonly alloc?: readonly string[];
  /**
   * Gives every validator the data plane of a gateway: a device key and a simulator source of this many streams
   * at `rateHz` each (the memory goal is for a validator with its data plane and sensors).
   */
  readonly sensors?: { readonly streams: number; readonly rateHz: number };
  readonly logger: Logger;
}

export interface TestnetNodeSpec {
  readonly name: string;
  readonly role: 'validator' | 'proposer' | 'follower';
  readonly dataDir: string;
  readonly configFile: string;
  readonly address: string | null;
  readonly peerPort: number;
  readonly rpcPort: number;
  readonly rpcUrl: string;
}

/** A fresh secp256k1 key in a keystore file; returns its address. */
async function writeTestKey(file: string, passphrase: string): Promise<string> {
  const privateKey = randomSecpKey();
  try {
    // The minimum scrypt cost: a testnet starts many nodes on one machine, and these keys guard nothing.
    await writeFile(file, await encryptKeystore(privateKey, new TextEncoder().encode(passphrase), { scryptN: MIN_SCRYPT_N }), { mode: 0o600, flag: 'wx' });
    return publicKeyToAddress(secp256k1.publicKey(privateKey));
  } finally {
    privateKey.fill(0);
  }
}

/** Keys, records, genesis and configs of a testnet in `dir` (which must be new or empty of testnet files). */
export async function provisionTestnet(opts: TestnetOptions): Promise<{ nodes: TestnetNodeSpec[]; genesisFile: string; genesisHash: string }> {
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // One passphrase for the testnet's keystores, in a file only the owner reads: these are test keys, not the
  // dev chain's public ones, and they never leave this directory.
  const passphraseFile = join(dir, 'passphrase');
  const passphrase = randomBytes(24).toString('hex');
  await writeFile(passphraseFile, passphrase + '\n', { mode: 0o600, flag: 'wx' });
  const roles: EnrolmentRole[] = [...Array<EnrolmentRole>(opts.validators).fill('validator'), ...Array<EnrolmentRole>(opts.proposers).fill('proposer'), ...Array<EnrolmentRole>(opts.followers).fill('follower')];
  const counters: Record<string, number> = {};
  const nodes: TestnetNodeSpec[] = [];
  const records = [];
  for (const role of roles) {
    const index = counters[role] = (counters[role] ?? -1) + 1;
    const name = `${role}-${index}`;
    const dataDir = join(dir, name);
    const [peerPort, rpcPort] = [await freePort(), await freePort()];
    const peerId = (await loadOrCreatePeerKey(dataDir)).peerId.toString();
    let keyFile: string | null = null;
    let address: string | null = null;
    const keys: Record<string, string> = {};
    let sensors: object | undefined;
    if (role !== 'follower') {
      keyFile = join(dataDir, 'key.json');
      address = await writeTestKey(keyFile, passphrase);
      keys[role] = `keystore:${keyFile}`;
      const signer = await KeystoreSigner.open(keyFile, new TextEncoder().encode(passphrase));
      const listen = [`/ip4/127.0.0.1/tcp/${peerPort}/p2p/${peerId}`];
      records.push({ source: name, record: await createEnrolment({ role, signer, peerId, listen }) });
      if (role === 'validator' && opts.sensors !== undefined) {
        const deviceKeyFile = join(dataDir, 'device-key.json');
        await writeTestKey(deviceKeyFile, passphrase);
        keys.device = `keystore:${deviceKeyFile}`;
        const { streams, rateHz } = opts.sensors;
        const simulated = Array.from({ length: streams }, (_, i) => ({ stream: `sim/${name}/${i}`, shape: 'random-walk', rateHz, min: 0, max: 100, seed: i + 1 }));
        sensors = { sources: [{ kind: 'simulator', name: 'sim', streams: simulated }] };
      }
    }
    const configFile = join(dataDir, 'config.json');
    const config = {
      dataDir,
      genesis: join(dir, 'genesis.json'),
      role,
      keys: keyFile === null ? {} : { ...keys, passphraseFile },
      ...(sensors === undefined ? {} : { sensors }),
      p2p: { listen: [`/ip4/127.0.0.1/tcp/${peerPort}`] },
      rpc: { host: '127.0.0.1', port: rpcPort },
      log: { format: 'json' },
    };
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
    nodes.push({ name, role, dataDir, configFile, address, peerPort, rpcPort, rpcUrl: `http://127.0.0.1:${rpcPort}` });
  }
  const { spec, bootstrap } = buildGenesis(records, {
    chainId: BigInt(opts.chainId ?? TESTNET_CHAIN_ID),
    alloc: new Map((opts.alloc ?? []).map((a) => [a.toLowerCase(), 10n ** 24n])),
    baseFee: 1_000_000_000n,
    gasLimit: 30_000_000n,
    periodMs: opts.periodMs ?? 1000,
    timeoutMs: opts.timeoutMs ?? 2000,
    genesisTimestamp: 0,
    allowSmallCommittee: opts.validators < 4,
  });
  const genesisFile = join(dir, 'genesis.json');
  await writeGenesisFile(genesisFile, spec, bootstrap);
  return { nodes, genesisFile, genesisHash: genesisOf(spec).block.hash };
}

export interface TestnetProcess extends TestnetNodeSpec {
  readonly child: ChildProcess;
  /** Everything the process wrote (stdout and stderr), for diagnostics. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once it ended. */
  readonly exited: Promise<number | string>;
}

/** How much of `<data dir>/node.log` output() returns. */
const KEPT_OUTPUT = 64 * 1024;

/**
 * Start one node as a `datagate start` process writing to `<data dir>/node.log` (straight to the file, so its
 * log outlives this process); resolves once it printed its start line.
 */
export async function startTestnetNode(node: TestnetNodeSpec, env: NodeJS.ProcessEnv = process.env): Promise<TestnetProcess> {
  const entry = await entryPoint();
  const logFile = join(node.dataDir, 'node.log');
  const fd = openSync(logFile, 'a', 0o600);
  const from = fstatSync(fd).size;
  let child: ChildProcess;
  try {
    // Each node in a process group of its own: Ctrl-C reaches the testnet alone, which stops the nodes once each
    // (a second signal would make a node exit at once, without a clean stop). A node stops by itself if the
    // testnet process is killed (DATAGATE_STOP_WITH_PARENT), so none is left behind.
    child = spawn(process.execPath, [...entry.flags, entry.bin, 'start', '--config', node.configFile], { stdio: ['ignore', fd, fd], env: { ...env, DATAGATE_STOP_WITH_PARENT: '1' }, detached: true });
  } finally {
    closeSync(fd);
  }
  const output = (): string => {
    const text = readFileSync(logFile);
    return text.subarray(Math.max(from, text.length - KEPT_OUTPUT)).toString();
  };
  const exited = new Promise<number | string>((done) => child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (output().includes('datagate start:')) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new TestnetError('TESTNET_NODE_FAILED', `${node.name} exited (${child.exitCode ?? child.signalCode}) before it started; its output:\n${output().slice(-4000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new TestnetError('TESTNET_NODE_FAILED', `${node.name} printed no start line within ${START_TIMEOUT_MS / 1000} s; its output:\n${output().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { ...node, child, exited, output };
}

/** Stop `nodes` with SIGTERM; any still running after `graceMs` gets SIGKILL. Resolves once all have exited. */
export async function stopTestnetNodes(nodes: readonly TestnetProcess[], graceMs = 25_000): Promise<void> {
  await Promise.all(
    nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return;
      n.child.kill('SIGTERM');
      const timer = setTimeout(() => n.child.kill('SIGKILL'), graceMs);
      await n.exited;
      clearTimeout(timer);
    }),
  );
}

function randomSecpKey(): Uint8Array {
  // Below the group order with overwhelming probability; secp256k1.publicKey refuses the rest, so retry then.
  for (;;) {
    const key = new Uint8Array(randomBytes(32));
    try {
      secp256k1.publicKey(key);
      return key;
    } catch {
      key.fill(0);
    }
  }
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}
