// MQTT ingest benchmark, side by side in one run: N QoS 1 readings over 10 topics from one publisher (a window
// of 1000 in flight, its own `seq` in each JSON payload) through a fresh mosquitto (deploy/mosquitto's
// settings) per run into
//   nr    stock Node-RED 4.1.8: mqtt in (QoS 1) -> json -> file (one line per message, not fsync'd);
//         end = the Nth line in the file
//   null  a subscriber that only acknowledges and appends payloads to a file (ingest-nullsub.ts): the most
//         this broker and publisher can give on this machine; end = the Nth line
//   dg    `datagate dev` with one MQTT source; end = the status API's pipeline.ingested >= N (readings in
//         fsync'd batches whose PUBACKs have gone out); then a clean stop and every segment opened
// interleaved per round. Per system: readings/s (N / (end - first publish)), lost and stored twice (by the
// publisher's seq), peak RSS (VmHWM); then the ratios. Prints figures; asserts nothing.
//   npm run bench:ingest [-- --n 100000 --rounds 1 --systems nr,null,dg --solo]
// Node-RED is installed from npm into a temp dir (a few minutes); set DATAGATE_BENCH_NODE_RED_DIR to a dir
// holding node_modules/node-red to reuse one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mosquittoSkipReason, startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.ts';
import { countSeqs, publishSeqs, storedSeqs } from '../test/helpers/seq-publisher.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_RED_VERSION = '4.1.8';
const FILTER = 'sensors/+/reading';
const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '1' },
    systems: { type: 'string', default: 'nr,null,dg' },
    window: { type: 'string', default: '1000' },
    solo: { type: 'boolean', default: false },
    'timeout-s': { type: 'string', default: '900' },
  },
});
const N = Number(args.n);
const WINDOW = Number(args.window);
const TIMEOUT_MS = Number(args['timeout-s']) * 1000;
const SYSTEMS = args.systems.split(',');
for (const s of SYSTEMS) if (!['nr', 'null', 'dg'].includes(s)) throw new Error(`--systems: unknown system '${s}' (nr, null, dg)`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => void process.stderr.write(`[bench:ingest ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface RunResult {
  readonly system: string;
  readonly round: number;
  readonly readingsPerS: number;
  readonly lost: number;
  readonly dup: number;
  readonly peakRssMiB: number;
  readonly publishRate: number;
  readonly extra: string;
}

/** VmHWM (peak RSS) of `pid` in MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** CPU seconds (user + system) `pid` has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Lost = seqs never stored, dup = extra copies (by the publisher's seq). */
function tally(seqs: readonly unknown[]): { lost: number; dup: number } {
  const { lost, outOfRange } = countSeqs(seqs, N);
  return { lost: lost.length, dup: seqs.length - outOfRange - (N - lost.length) };
}

/** Lines of `file` (0 when it does not exist yet). */
function lineCount(file: string): number {
  if (!existsSync(file)) return 0;
  const buf = readFileSync(file);
  let n = 0;
  for (const b of buf) if (b === 10) n++;
  return n;
}

function fileSeqs(file: string): unknown[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq?: unknown }).seq);
}

const publish = (url: string): ReturnType<typeof publishSeqs> => publishSeqs(url, N, { window: WINDOW, topics: 10, clientId: `bench-publisher-${process.pid}` });

/** Wait until `progress()` reaches N; resolves with the time it did (or throws after the timeout). */
async function until(progress: () => number | Promise<number>, child: ChildProcess, pollMs: number): Promise<number> {
  const deadline = performance.now() + TIMEOUT_MS;
  for (;;) {
    if ((await progress()) >= N) return performance.now();
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the system under test exited (${child.exitCode ?? child.signalCode})`);
    if (performance.now() > deadline) throw new Error(`not all ${N} readings arrived within ${TIMEOUT_MS / 1000} s (${await progress()})`);
    await sleep(pollMs);
  }
}

function stop(child: ChildProcess, ms = 300_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return exited.finally(() => clearTimeout(timer));
}

/** Spawn and wait for `ready` to match its output; the child is killed if this process exits. */
async function launch(cmd: string, argv: string[], env: NodeJS.ProcessEnv, ready: RegExp, outFile: string): Promise<ChildProcess> {
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  let out = '';
  const onData = (c: Buffer): void => {
    out += c.toString();
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.once('exit', () => writeFileSync(outFile, out));
  const deadline = Date.now() + 120_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${argv.join(' ')} did not get ready:\n${out.slice(-2000)}`);
    }
    await sleep(100);
  }
  return child;
}

function nodeRedDir(): string {
  const given = process.env['DATAGATE_BENCH_NODE_RED_DIR'];
  if (given !== undefined) {
    if (!existsSync(join(given, 'node_modules', 'node-red', 'red.js'))) throw new Error(`DATAGATE_BENCH_NODE_RED_DIR=${given} holds no node_modules/node-red`);
    return given;
  }
  const dir = mkdtempSync(join(tmpdir(), 'datagate-bench-node-red-'));
  log(`installing node-red@${NODE_RED_VERSION} into ${dir} (set DATAGATE_BENCH_NODE_RED_DIR=${dir} to reuse it)`);
  writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
  const r = spawnSync('npm', ['install', `node-red@${NODE_RED_VERSION}`, '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm install node-red@${NODE_RED_VERSION} failed`);
  return dir;
}

/** Node-RED's flow: mqtt in (QoS 1, clean session, keepalive 60) -> json -> file (append a line). */
function nodeRedFlow(port: number, outFile: string): unknown[] {
  return [
    { id: 'f1', type: 'tab', label: 'ingest' },
    { id: 'b1', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(port), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true, autoUnsubscribe: true },
    { id: 'm1', type: 'mqtt in', z: 'f1', topic: FILTER, qos: '1', datatype: 'utf8', broker: 'b1', nl: false, rap: true, rh: 0, inputs: 0, wires: [['j1']] },
    { id: 'j1', type: 'json', z: 'f1', property: 'payload', action: 'obj', pretty: false, wires: [['w1']] },
    { id: 'w1', type: 'file', z: 'f1', filename: outFile, filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'none', wires: [[]] },
  ];
}

async function runNodeRed(broker: Mosquitto, dir: string, nrDir: string): Promise<Omit<RunResult, 'round' | 'publishRate'> & { t0: number; publishing: Promise<number> }> {
  const user = join(dir, 'userdir');
  mkdirSync(user, { recursive: true });
  const outFile = join(dir, 'out.ndjson');
  writeFileSync(join(user, 'flows.json'), JSON.stringify(nodeRedFlow(broker.port, outFile)));
  writeFileSync(join(user, 'settings.js'), `module.exports = ${JSON.stringify({ uiHost: '127.0.0.1', uiPort: 0, flowFile: 'flows.json', credentialSecret: false, telemetry: { enabled: false, updateNotification: false }, diagnostics: { enabled: false, ui: false }, runtimeState: { enabled: false, ui: false }, logging: { console: { level: 'info', metrics: false, audit: false } }, editorTheme: { projects: { enabled: false }, tours: false } })};\n`);
  const child = await launch(process.execPath, [join(nrDir, 'node_modules', 'node-red', 'red.js'), '--userDir', user, '--settings', join(user, 'settings.js')], {}, /Connected to broker/, join(dir, 'node-red.log'));
  return measureFile('nr', broker, child, outFile);
}

async function runNullSub(broker: Mosquitto, dir: string): Promise<Omit<RunResult, 'round' | 'publishRate'> & { t0: number; publishing: Promise<number> }> {
  const outFile = join(dir, 'out.ndjson');
  const child = await launch(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'ingest-nullsub.ts'), broker.url, FILTER, outFile], {}, /subscribed/, join(dir, 'nullsub.log'));
  return measureFile('null', broker, child, outFile);
}

async function measureFile(system: string, broker: Mosquitto, child: ChildProcess, outFile: string): Promise<Omit<RunResult, 'round' | 'publishRate'> & { t0: number; publishing: Promise<number> }> {
  await sleep(2000);
  const cpu0 = cpuSeconds(child.pid!);
  const { t0, done } = await publish(broker.url);
  const end = await until(() => lineCount(outFile), child, 20);
  const peak = peakRssMiB(child.pid!);
  const cpuMs = ((cpuSeconds(child.pid!) - cpu0) * 1e6) / N; // CPU µs per reading
  await stop(child);
  const t = tally(fileSeqs(outFile));
  return { system, readingsPerS: Math.round(N / ((end - t0) / 1000)), lost: t.lost, dup: t.dup, peakRssMiB: peak, extra: `CPU ${cpuMs.toFixed(0)} µs per reading`, t0, publishing: done };
}

async function runDatagate(broker: Mosquitto, dir: string): Promise<Omit<RunResult, 'round' | 'publishRate'> & { t0: number; publishing: Promise<number> }> {
  const dataDir = join(dir, 'data');
  const config = join(dir, 'dg.json');
  writeFileSync(config, JSON.stringify({
    dataDir,
    rpc: { host: '127.0.0.1', port: 0 },
    sensors: { sources: [{ kind: 'mqtt', name: 'bench', url: broker.url, subscriptions: [{ topic: FILTER, stream: 'sensors/${1}', payload: 'json', fields: { value: 'value', seq: 'seq' }, tsField: 'ts', qos: 1 }] }] },
    log: { level: 'info', format: 'json' },
  }));
  // DATAGATE_BENCH_NODE_ARGS: extra node flags for the gateway, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
  const extra = process.env['DATAGATE_BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
  const argv = [...extra, '--max-semi-space-size=8', '--max-old-space-size=256', join(ROOT, 'gateway', 'bin', 'datagate.mjs'), 'dev', '--config', config, ...(args.solo ? ['--solo'] : [])];
  const child = await launch(process.execPath, argv, {}, /JSON-RPC: http/, join(dir, 'dg.log'));
  const status = async (): Promise<{ pipeline: { ingested: number; commits: number }; sensors: { status: { state: string }; counters: { reconnects: number } }[] } | null> => {
    try {
      const api = JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string; token: string };
      const res = await fetch(`${api.url}/api/v0/status`, { headers: { authorization: `Bearer ${api.token}` } });
      return (await res.json()) as never;
    } catch {
      return null;
    }
  };
  const deadline = Date.now() + 60_000;
  while ((await status())?.sensors[0]?.status.state !== 'connected') {
    if (Date.now() > deadline) throw new Error('datagate did not connect its MQTT source in 60 s');
    await sleep(100);
  }
  await sleep(2000);
  const cpu0 = cpuSeconds(child.pid!);
  const { t0, done } = await publish(broker.url);
  let last: Awaited<ReturnType<typeof status>> = null;
  const end = await until(async () => (last = (await status()) ?? last)?.pipeline.ingested ?? 0, child, 50);
  const peak = peakRssMiB(child.pid!);
  const cpuMs = ((cpuSeconds(child.pid!) - cpu0) * 1e6) / N; // CPU µs per reading
  await stop(child);
  const t = tally(await storedSeqs(dataDir));
  const p = last!.pipeline;
  return { system: args.solo ? 'dg --solo' : 'dg', readingsPerS: Math.round(N / ((end - t0) / 1000)), lost: t.lost, dup: t.dup, peakRssMiB: peak, extra: `CPU ${cpuMs.toFixed(0)} µs per reading, commits ${p.commits} for ${p.ingested} ingested (${(p.ingested / p.commits).toFixed(1)} per commit), reconnects ${last!.sensors[0]?.counters.reconnects}`, t0, publishing: done };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const skip = mosquittoSkipReason();
  if (skip !== false) {
    console.log(skip);
    return;
  }
  const shipped = readFileSync(join(ROOT, 'deploy', 'mosquitto', 'datagate.conf'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('persistence'));
  const nrDir = SYSTEMS.includes('nr') ? nodeRedDir() : '';
  const results: RunResult[] = [];
  const work = mkdtempSync(join(tmpdir(), 'datagate-bench-ingest-'));
  log(`N=${N} window=${WINDOW} rounds=${args.rounds} systems=${SYSTEMS.join(',')} work=${work}`);
  try {
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const system of SYSTEMS) {
        const dir = join(work, `${system}-${round}`);
        mkdirSync(dir, { recursive: true });
        const broker = await startMosquitto({ persistence: true, extra: shipped });
        try {
          const r = system === 'nr' ? await runNodeRed(broker, dir, nrDir) : system === 'null' ? await runNullSub(broker, dir) : await runDatagate(broker, dir);
          const publishRate = await r.publishing;
          const row: RunResult = { system: r.system, round, readingsPerS: r.readingsPerS, lost: r.lost, dup: r.dup, peakRssMiB: r.peakRssMiB, publishRate, extra: r.extra };
          results.push(row);
          console.log(`${row.system} round ${round}: ${row.readingsPerS} readings/s, lost ${row.lost}, stored twice ${row.dup}, peak RSS ${row.peakRssMiB.toFixed(1)} MiB, publisher acked at ${publishRate}/s${row.extra !== '' ? `; ${row.extra}` : ''}`);
          if (/being dropped/.test(broker.log())) console.log('  mosquitto dropped messages in this run');
        } finally {
          await broker.cleanup();
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const of = (s: string): RunResult[] => results.filter((r) => r.system.startsWith(s));
  const ratio = (a: string, b: string, k: 'readingsPerS' | 'peakRssMiB'): string => {
    const per = of(a).map((x) => x[k] / (of(b).find((y) => y.round === x.round)?.[k] ?? NaN));
    return `${per.map((v) => v.toFixed(2)).join(', ')} (median ${median(per).toFixed(2)})`;
  };
  if (of('dg').length > 0 && of('nr').length > 0) console.log(`dg / Node-RED: readings/s ${ratio('dg', 'nr', 'readingsPerS')}; peak RSS ${ratio('dg', 'nr', 'peakRssMiB')}`);
  if (of('dg').length > 0 && of('null').length > 0) console.log(`dg / do-nothing subscriber (the limit): readings/s ${ratio('dg', 'null', 'readingsPerS')}`);
  if (of('nr').length > 0 && of('null').length > 0) console.log(`Node-RED / do-nothing subscriber: readings/s ${ratio('nr', 'null', 'readingsPerS')}`);
}

await main();
