// SoftHSM2 tokens for the PKCS#11 integration tests and the signer benchmark: a temporary token directory
// and config file (named by SOFTHSM2_CONF), with tokens initialised by softhsm2-util.
//
// SoftHSM reads SOFTHSM2_CONF, and scans its token directory, when the module is C_Initialized; tokens made
// later are invisible until it is initialised again. So setupSoftHsm() sets the variable, creates all
// tokens it is asked for, and finalizes the module first if this process had it loaded (which ends every
// signer open on it). Use one setup per test file, created before any signer is opened.
//
// Missing SoftHSM2 makes softHsmSkipReason() return SOFTHSM_SKIP (the tests skip with it) unless
// DATAGATE_REQUIRE_SYSTEM=1, when it throws instead, so CI cannot pass by skipping.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pkcs11Module } from '../../device/index.ts';

export const SOFTHSM_SKIP = 'skipped: install softhsm2 and opensc (apt-get install softhsm2 opensc)';

const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

/** Path of libsofthsm2.so, or null when it is not installed. */
export function softHsmModulePath(): string | null {
  return MODULE_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

function hasCommand(cmd: string, arg: string): boolean {
  const r = spawnSync(cmd, [arg], { stdio: 'ignore' });
  return r.error === undefined;
}

/** True when OpenSC's pkcs11-tool is on PATH. */
export function hasPkcs11Tool(): boolean {
  return hasCommand('pkcs11-tool', '--help');
}

/**
 * false when SoftHSM2 (softhsm2-util and the module) is usable, else SOFTHSM_SKIP. Throws instead when
 * DATAGATE_REQUIRE_SYSTEM=1.
 */
export function softHsmSkipReason(): string | false {
  const missing: string[] = [];
  if (!hasCommand('softhsm2-util', '--version')) missing.push('softhsm2-util');
  if (softHsmModulePath() === null) missing.push('libsofthsm2.so');
  if (missing.length === 0) return false;
  if (process.env['DATAGATE_REQUIRE_SYSTEM'] === '1') {
    throw new Error(`DATAGATE_REQUIRE_SYSTEM=1 but ${missing.join(' and ')} not found; apt-get install softhsm2 opensc`);
  }
  return SOFTHSM_SKIP;
}

export interface SoftHsm {
  readonly modulePath: string;
  /** Label of the first token. */
  readonly tokenLabel: string;
  /** Labels of all tokens made (the first is tokenLabel). */
  readonly tokenLabels: readonly string[];
  /** User PIN of every token. */
  readonly pin: string;
  readonly soPin: string;
  /** The temporary directory holding the config and the tokens. */
  readonly dir: string;
  /** Finalizes the module, restores SOFTHSM2_CONF and deletes the directory. */
  cleanup(): void;
}

export interface SoftHsmOptions {
  /** Token labels to initialise; default ['datagate-test']. */
  readonly tokens?: readonly string[];
  readonly pin?: string;
  readonly soPin?: string;
}

/** A fresh SoftHSM2 token directory with initialised tokens; see the file comment. Throws if SoftHSM2 is missing. */
export function setupSoftHsm(opts: SoftHsmOptions = {}): SoftHsm {
  const modulePath = softHsmModulePath();
  if (modulePath === null) throw new Error(`libsofthsm2.so not found; ${SOFTHSM_SKIP}`);
  const tokens = opts.tokens ?? ['datagate-test'];
  const [tokenLabel] = tokens;
  if (tokenLabel === undefined) throw new TypeError('setupSoftHsm: tokens must not be empty');
  const pin = opts.pin ?? '246810';
  const soPin = opts.soPin ?? '13579111';

  // Before SOFTHSM2_CONF changes: a module loaded earlier in this process must read the new config.
  Pkcs11Module.finalize(modulePath);
  const previousConf = process.env['SOFTHSM2_CONF'];
  const dir = mkdtempSync(join(tmpdir(), 'datagate-softhsm-'));
  const conf = join(dir, 'softhsm2.conf');
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`, { mode: 0o600 });
  process.env['SOFTHSM2_CONF'] = conf;
  try {
    for (const label of tokens) {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], {
        env: process.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let cleaned = false;
  return {
    modulePath, tokenLabel, tokenLabels: [...tokens], pin, soPin, dir,
    cleanup() {
      if (cleaned) return;
      cleaned = true;
      Pkcs11Module.finalize(modulePath);
      if (previousConf === undefined) delete process.env['SOFTHSM2_CONF'];
      else process.env['SOFTHSM2_CONF'] = previousConf;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
