// Where secrets for keys come from: a passphrase or PIN read from a file (refused when group or others can
// read it, as ssh refuses keys) or from an environment variable. Never from argv (visible in `ps`), never logged.
import { open } from 'node:fs/promises';
import { DeviceError } from './errors.ts';

export interface PassphraseSource {
  /** A file holding the passphrase (one trailing newline is stripped). */
  readonly file?: string;
  /** The name of an environment variable holding the passphrase. */
  readonly env?: string;
  /** Accept a passphrase file that group or others can access (refused by default, as ssh refuses keys). */
  readonly allowWorldReadable?: boolean;
  /** Where `env` is looked up; default process.env. */
  readonly environment?: Readonly<Record<string, string | undefined>>;
}

/**
 * The passphrase bytes from exactly one of `source.file` or `source.env` (never from argv, never logged).
 * Throws DeviceError PASSPHRASE_MISSING when no source is given, the file or variable does not exist or it is
 * empty, PASSPHRASE_FILE_INSECURE when the file's mode allows group or others any access, TypeError when
 * both sources are given.
 */
export async function readPassphrase(source: PassphraseSource): Promise<Uint8Array> {
  const { file, env, allowWorldReadable = false, environment = process.env } = source ?? {};
  if (file !== undefined && env !== undefined) throw new TypeError('readPassphrase: give one of file or env, not both');
  if (file === undefined && env === undefined) {
    throw new DeviceError('PASSPHRASE_MISSING', 'no passphrase source: set a passphrase file or environment variable in the config');
  }
  if (env !== undefined) {
    if (typeof env !== 'string' || env === '') throw new TypeError('readPassphrase: env must be a variable name');
    const value = environment[env];
    if (value === undefined || value === '') {
      throw new DeviceError('PASSPHRASE_MISSING', `environment variable ${env} is ${value === undefined ? 'not set' : 'empty'}; it must hold the passphrase`, { env });
    }
    return new TextEncoder().encode(value);
  }
  if (typeof file !== 'string' || file === '') throw new TypeError('readPassphrase: file must be a non-empty path');
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new DeviceError('PASSPHRASE_MISSING', `passphrase file ${file} does not exist`, { file });
  }
  let buf: Buffer;
  try {
    const mode = (await fh.stat()).mode & 0o777;
    if (!allowWorldReadable && (mode & 0o077) !== 0) {
      const octal = `0${mode.toString(8)}`;
      throw new DeviceError('PASSPHRASE_FILE_INSECURE', `passphrase file ${file} has mode ${octal}, open to group or others; run chmod 600 ${file}`, { file, mode: octal });
    }
    buf = await fh.readFile();
  } finally {
    await fh.close();
  }
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end -= buf[end - 2] === 0x0d && end >= 2 ? 2 : 1;
  const out = Uint8Array.from(buf.subarray(0, end));
  buf.fill(0);
  if (out.length === 0) throw new DeviceError('PASSPHRASE_MISSING', `passphrase file ${file} is empty`, { file });
  return out;
}
