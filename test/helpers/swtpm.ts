// A software TPM 2.0 (swtpm) on a free loopback port, with a tpm2-pkcs11 token holding one P-256 key: what a
// gateway with a TPM chip and tpm2-pkcs11 offers the PKCS#11 signer, without the chip.
//
// How the token is made. The tpm2-pkcs11 module itself initialises the token, sets the user PIN and
// generates the key (pkcs11-tool --init-token / --init-pin / --keypairgen), over the swtpm TCTI straight to
// the emulator. tpm2_ptool is not used here: it drives the tpm2-tools programs one process at a time, each
// of which leaves its transient objects loaded in the TPM, so against a bare swtpm (3 transient slots, no
// resource manager) `tpm2_ptool addtoken` fails with "tpm:warn(2.0): out of memory for object contexts"
// (0x902). It works behind tpm2-abrmd or the kernel's /dev/tpmrm0 (see deploy/tpm/README.md); the module
// manages its own transient objects and needs neither.
//
// Missing tools make startSwtpmToken() skip (tpmSkipReason() returns the reason) unless
// DATAGATE_REQUIRE_SYSTEM=1, when it throws instead, so CI cannot pass by skipping.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * Debian packages that provide everything this helper runs or loads (swtpm, pkcs11-tool, the tpm2-pkcs11
 * module and the TSS's swtpm TCTI). tpm2-tools and tpm2_ptool (libtpm2-pkcs11-tools) are not needed here.
 */
export const SWTPM_PACKAGES = 'swtpm libtpm2-pkcs11-1 libtss2-tcti-swtpm0 opensc';
export const SWTPM_SKIP_MESSAGE = `skipped: install ${SWTPM_PACKAGES}`;

export interface SwtpmToken {
  /** Path of the tpm2-pkcs11 module (libtpm2_pkcs11.so). */
  readonly modulePath: string;
  readonly tokenLabel: string;
  /** CKA_LABEL of the P-256 key pair. */
  readonly objectLabel: string;
  /** User PIN of the token. */
  readonly pin: string;
  readonly soPin: string;
  /** The key's uncompressed public point (65 bytes, 04 || x || y), read from the token by pkcs11-tool. */
  readonly publicKey: Uint8Array;
  /**
   * Variables the tpm2-pkcs11 module reads (TCTI and store). It reads them from its own process's
   * environment, so a test that loads the module in-process assigns them to process.env first.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Stops swtpm and deletes its state and the token store. Idempotent. */
  stop(): Promise<void>;
}

const TRIPLETS: Partial<Record<NodeJS.Architecture, string>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
};

function libDirs(): string[] {
  const triplet = TRIPLETS[process.arch];
  return [...(triplet === undefined ? [] : [`/usr/lib/${triplet}`]), '/usr/lib64', '/usr/lib'];
}

/** The tpm2-pkcs11 module: DATAGATE_TPM2_PKCS11_MODULE if set, else the distribution's usual places. */
export function findTpm2Pkcs11Module(): string | null {
  const configured = process.env.DATAGATE_TPM2_PKCS11_MODULE;
  if (configured !== undefined && configured !== '') return existsSync(configured) ? configured : null;
  for (const dir of libDirs()) {
    for (const rel of ['pkcs11/libtpm2_pkcs11.so', 'libtpm2_pkcs11.so.1', 'libtpm2_pkcs11.so']) {
      if (existsSync(join(dir, rel))) return join(dir, rel);
    }
  }
  return null;
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** What is missing, or [] when the helper can run. */
function missing(): string[] {
  const out: string[] = [];
  if (onPath('swtpm') === null) out.push('swtpm (package swtpm)');
  if (onPath('pkcs11-tool') === null) out.push('pkcs11-tool (package opensc)');
  if (findTpm2Pkcs11Module() === null) out.push('libtpm2_pkcs11.so (package libtpm2-pkcs11-1)');
  if (!libDirs().some((d) => existsSync(join(d, 'libtss2-tcti-swtpm.so.0')))) out.push('libtss2-tcti-swtpm.so.0 (package libtss2-tcti-swtpm0)');
  return out;
}

/**
 * null when swtpm and tpm2-pkcs11 are usable; otherwise the skip message for node:test. With
 * DATAGATE_REQUIRE_SYSTEM=1 a missing tool throws instead of skipping.
 */
export function tpmSkipReason(): string | null {
  const gone = missing();
  if (gone.length === 0) return null;
  if (process.env.DATAGATE_REQUIRE_SYSTEM === '1') {
    throw new Error(`DATAGATE_REQUIRE_SYSTEM=1 but the software TPM test cannot run: missing ${gone.join(', ')}; ${SWTPM_SKIP_MESSAGE.replace('skipped: ', '')}`);
  }
  return SWTPM_SKIP_MESSAGE;
}

/** A loopback port P with P + 1 free too (swtpm's command and control ports). Racy by nature: callers retry. */
async function freePortPair(): Promise<number> {
  const listen = (port: number) =>
    new Promise<number | null>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(null));
      srv.listen(port, '127.0.0.1', () => {
        const addr = srv.address();
        const got = typeof addr === 'object' && addr !== null ? addr.port : null;
        srv.close(() => resolve(got));
      });
    });
  for (let i = 0; i < 20; i++) {
    const port = await listen(0);
    if (port === null || port >= 65535) continue;
    if ((await listen(port + 1)) !== null) return port;
  }
  throw new Error('no free pair of loopback ports for swtpm');
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${what} failed (${cmd} ${args.join(' ')}): ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

/** Starts swtpm in `stateDir` on a free port pair; resolves once its control port accepts connections. */
async function startSwtpm(stateDir: string): Promise<Running> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePortPair();
    const child = spawn(
      'swtpm',
      [
        'socket', '--tpm2',
        '--tpmstate', `dir=${stateDir}`,
        '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
        '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
        '--flags', 'not-need-init,startup-clear',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A test process that dies without stop() must not leave a simulator behind.
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    void exited.then(() => process.off('exit', killOnExit));
    child.once('error', (e) => (out += `spawn error: ${e.message}\n`));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    };
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      if (await canConnect(port + 1)) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (ready) return { child, port, output: () => out, stop };
    await stop();
    lastError = new Error(`swtpm did not start on 127.0.0.1:${port} (exit ${child.exitCode ?? child.signalCode}):\n${out}`);
  }
  throw lastError;
}

/** The 65-byte uncompressed point of a DER SubjectPublicKeyInfo P-256 key. */
function spkiToPoint(der: Buffer): Uint8Array {
  const jwk = createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.x === undefined || jwk.y === undefined) {
    throw new Error(`the token's key is not P-256: ${JSON.stringify({ kty: jwk.kty, crv: jwk.crv })}`);
  }
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(Buffer.from(jwk.x, 'base64url'), 1);
  out.set(Buffer.from(jwk.y, 'base64url'), 33);
  return out;
}

export interface SwtpmTokenOptions {
  tokenLabel?: string;
  objectLabel?: string;
  pin?: string;
  soPin?: string;
}

/**
 * Starts swtpm and provisions a tpm2-pkcs11 token with one P-256 key pair (about 0.3 s here). Call
 * tpmSkipReason() first: this throws when the tools are missing. Always call stop().
 */
export async function startSwtpmToken(options: SwtpmTokenOptions = {}): Promise<SwtpmToken> {
  const tokenLabel = options.tokenLabel ?? 'gw';
  const objectLabel = options.objectLabel ?? 'validator';
  const pin = options.pin ?? '123456';
  const soPin = options.soPin ?? '12345678';
  const gone = missing();
  if (gone.length > 0) throw new Error(`cannot start a software TPM: missing ${gone.join(', ')}`);
  const modulePath = findTpm2Pkcs11Module()!;

  const dir = mkdtempSync(join(tmpdir(), 'datagate-swtpm-'));
  const stateDir = join(dir, 'state');
  const storeDir = join(dir, 'store');
  mkdirSync(stateDir);
  mkdirSync(storeDir);
  let tpm: Running | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await tpm?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    tpm = await startSwtpm(stateDir);
    const tcti = `swtpm:host=127.0.0.1,port=${tpm.port}`;
    const env: Record<string, string> = {
      TPM2_PKCS11_TCTI: tcti,
      TPM2_PKCS11_STORE: storeDir,
      TPM2TOOLS_TCTI: tcti,
      // Errors only: the module otherwise warns about the empty store's missing schema table.
      TPM2_PKCS11_LOG_LEVEL: '0',
    };
    const childEnv = { ...process.env, ...env };
    const tool = (args: string[], what: string) => run('pkcs11-tool', ['--module', modulePath, ...args], childEnv, what);
    await tool(['--init-token', '--label', tokenLabel, '--so-pin', soPin], 'init token');
    await tool(['--token-label', tokenLabel, '--login', '--login-type', 'so', '--so-pin', soPin, '--init-pin', '--pin', pin], 'init user PIN');
    await tool(
      ['--token-label', tokenLabel, '--login', '--pin', pin, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', objectLabel, '--id', '01'],
      'generate the P-256 key',
    );
    const pubFile = join(dir, 'pub.der');
    await tool(['--token-label', tokenLabel, '--read-object', '--type', 'pubkey', '--label', objectLabel, '--output-file', pubFile], 'read the public key');
    const publicKey = spkiToPoint(readFileSync(pubFile));
    return { modulePath, tokenLabel, objectLabel, pin, soPin, publicKey, env, stop };
  } catch (e) {
    const log = tpm?.output() ?? '';
    await stop();
    if (e instanceof Error && log !== '') e.message += `\nswtpm output:\n${log}`;
    throw e;
  }
}
