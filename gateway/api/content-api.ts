// The node's content admin API on its API port: `POST /api/v0/add?cid-version=0|1` stores the request body and
// answers {"cid": ...}. Adding is an admin action, so it needs the bearer token the node writes to
// `<data dir>/api.json` (mode 0600) at start: whoever can read the data directory may use it, nobody else.
// The token itself lives in `<data dir>/api-token` (0600, made once, kept across restarts so a monitoring
// system's credentials file stays valid; delete the file to rotate it).
// Reading needs no token: anyone fetches and verifies content through the trustless gateway (/ipfs/...).
// The segments endpoints on the same token are in ../pipeline/segments-api.ts, the status ones in ../status-api.ts.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { ContentStore, Logger } from '../../chain/index.ts';
import { DatagateError, hasCode, nopLogger } from '../../chain/index.ts';
import { writeFileAtomic } from '../../device/index.ts';

export const TOKEN_FILE = 'api-token';

/** Error of the token file: unreadable, open to others, or not a token. */
export class ApiTokenError extends DatagateError<'API_TOKEN_INVALID'> {
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('API_TOKEN_INVALID', message, fields);
    this.name = 'ApiTokenError';
  }
}

/**
 * The admin API's bearer token from `<dataDir>/api-token`, made (64 hex digits, mode 0600, atomically) when
 * the file is missing. Throws ApiTokenError for a file that group or others may read, or that holds no token.
 */
export async function loadOrCreateApiToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    return await readToken(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // exclusive: never replaces, so a node started at the same moment that made the file first wins, and both read it.
  await writeFileAtomic(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, exclusive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return readToken(file);
}

async function readToken(file: string): Promise<string> {
  const st = await stat(file);
  if ((st.mode & 0o077) !== 0) throw new ApiTokenError(`${file} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it, or delete it to make a new token`, { file });
  const token = (await readFile(file, 'utf8')).trim();
  if (!/^[0-9a-f]{64}$/.test(token)) throw new ApiTokenError(`${file} does not hold a token (64 hex digits); delete it to make a new one`, { file });
  return token;
}

/** Largest file the API accepts in one request. */
export const MAX_ADD_BYTES = 64 * 1024 * 1024;

/** What a local client needs to reach the node's admin API. */
export interface ApiAccess {
  readonly url: string;
  readonly token: string;
}

export const API_FILE = 'api.json';

/** Write `<dataDir>/api.json` (atomically, mode 0600) with the API's URL and token. */
export async function writeApiAccess(dataDir: string, url: string, token: string): Promise<ApiAccess> {
  const access = { url, token };
  await writeFileAtomic(join(dataDir, API_FILE), JSON.stringify(access), { mode: 0o600 });
  return access;
}

/**
 * The access a running node wrote to `<dataDir>/api.json`, or null when there is no such file (no node has
 * started there, or it stopped cleanly). Throws when the file cannot be read or is not {url, token}.
 */
export async function readApiAccess(dataDir: string): Promise<ApiAccess | null> {
  const file = join(dataDir, API_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Reported below with the file named.
  }
  const v = parsed as Partial<Record<keyof ApiAccess, unknown>> | null;
  if (typeof v?.url !== 'string' || typeof v.token !== 'string') throw new Error(`${file} is not the {url, token} a running node writes; remove it if no node runs there`);
  return { url: v.url, token: v.token };
}

export async function removeApiAccess(dataDir: string): Promise<void> {
  await rm(join(dataDir, API_FILE), { force: true });
}

/** Answer `status` with `body` as JSON. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Whether `req` carries `Authorization: Bearer <token>` (compared in constant time; only the length is not). */
export function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The handler for /api/v0/add; returns false for other paths. */
export function createContentApiHandler(opts: { store: ContentStore; token: string; logger?: Logger }): (req: IncomingMessage, res: ServerResponse) => boolean {
  const log = opts.logger ?? nopLogger;
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/api/v0/')) return false;
    if (url.pathname !== '/api/v0/add') {
      sendJson(res, 404, { error: `unknown API path ${url.pathname}; this node offers POST /api/v0/add, GET /api/v0/status and the segments API under /api/v0/segments` });
      return true;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use POST' });
      return true;
    }
    if (!authorized(req, opts.token)) {
      sendJson(res, 401, { error: 'missing or wrong bearer token; read it from <data dir>/api.json' });
      return true;
    }
    const v = url.searchParams.get('cid-version') ?? '1';
    if (v !== '0' && v !== '1') {
      sendJson(res, 400, { error: 'cid-version must be 0 or 1' });
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_ADD_BYTES) {
        sendJson(res, 413, { error: `body larger than ${MAX_ADD_BYTES} bytes` });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_ADD_BYTES) return;
      opts.store.add(Buffer.concat(chunks), { cidVersion: v === '0' ? 0 : 1 }).then(
        (cid) => sendJson(res, 200, { cid }),
        (err: unknown) => {
          log.warn('content add failed', { error: err });
          sendJson(res, hasCode(err, 'CONTENT_INVALID_ARGUMENT') ? 400 : 500, { error: (err as Error).message });
        },
      );
    });
    return true;
  };
}
