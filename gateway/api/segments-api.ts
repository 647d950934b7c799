// The segments part of a running node's admin API, on its API port beside POST /api/v0/add
// (content/admin-api.ts): what `datagate segments list|key|verify` use while the node holds its databases.
// Everything here is the seller's business, so every endpoint needs the bearer token of `<data dir>/api.json`.
//
//   GET  /api/v0/segments[?stream=S]  200 application/x-ndjson: one segmentLine() per segment, in seal order
//   POST /api/v0/segments/{id}/key    200 application/octet-stream: the segment key, its 32 raw bytes (raw so no
//                                     copy of it ends up in an unzeroable string); 400 id not a decimal integer,
//                                     404 no such segment, 410 segment dropped (its key is gone)
//   POST /api/v0/segments/verify      200 application/json: the VerifyPipelineReport of verifyPipeline (the live
//                                     check, see verify-store.ts for what it covers); 409 while one is running
//
// Other methods answer 405, a missing or wrong token 401 (before the id or anything else is looked at), a
// request body (none is expected) over MAX_BODY_BYTES 413. Errors are JSON {error, code}. Keys are never logged.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../chain/index.ts';
import { hasCode, nopLogger } from '../../chain/index.ts';
import { authorized, sendJson } from './content-api.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { PipelineContentStore, SegmentRecord } from '../pipeline/pipeline-options.ts';
import { verifyPipeline } from '../pipeline/verify-store.ts';

/** Largest request body these endpoints read (and discard): they take none. */
export const MAX_BODY_BYTES = 4096;

const PREFIX = '/api/v0/segments';

export interface SegmentsApiOptions {
  readonly pipeline: Pick<Pipeline, 'segments' | 'segmentKey' | 'status'>;
  /** The store the pipeline puts segments in (the live verify reads envelopes from it). */
  readonly contentStore: Pick<PipelineContentStore, 'get'>;
  readonly token: string;
  readonly logger?: Logger;
}

/** One line of `datagate segments list` (without the newline): the same from the database and from the API. */
export function segmentLine(s: SegmentRecord): string {
  const { id, stream, state, firstSeq, lastSeq, count, firstTs, lastTs, manifestHash } = s;
  return JSON.stringify({ id, stream, state, firstSeq, lastSeq, count, firstTs, lastTs, manifestHash, cid: s.cid ?? null });
}

type Route = { kind: 'list'; method: 'GET' } | { kind: 'verify'; method: 'POST' } | { kind: 'key'; method: 'POST'; id: number | null };

function routeOf(pathname: string): Route | null {
  if (pathname === PREFIX) return { kind: 'list', method: 'GET' };
  if (pathname === `${PREFIX}/verify`) return { kind: 'verify', method: 'POST' };
  const m = /^\/api\/v0\/segments\/([^/]*)\/key$/.exec(pathname);
  if (m === null) return null;
  const id = /^(0|[1-9][0-9]{0,15})$/.test(m[1]!) ? Number(m[1]) : NaN;
  return { kind: 'key', method: 'POST', id: Number.isSafeInteger(id) ? id : null };
}

/** Read and discard the request body; false (413 sent) when it passes MAX_BODY_BYTES. */
function discardBody(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const tooLarge = (): false => {
    res.setHeader('connection', 'close');
    sendJson(res, 413, { error: `these endpoints take no request body (at most ${MAX_BODY_BYTES} bytes are read)`, code: 'BODY_TOO_LARGE' });
    res.once('finish', () => req.destroy());
    return false;
  };
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.resolve(tooLarge());
  return new Promise((resolve, reject) => {
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) return;
      req.off('data', onData);
      req.pause();
      resolve(tooLarge());
    };
    req.on('data', onData);
    req.once('end', () => resolve(true));
    req.once('error', reject);
  });
}

/** Resolves when `res` can take more (or is gone). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** The handler for /api/v0/segments and below; returns false for other paths. */
export function createSegmentsApiHandler(opts: SegmentsApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const log = opts.logger ?? nopLogger;
  let verifying = false;

  const fail = (res: ServerResponse, what: string, err: unknown): void => {
    if (res.destroyed) return log.debug(`${what} through the admin API stopped: the client went away`, { error: err });
    log.warn(`${what} through the admin API failed`, { error: err });
    if (res.headersSent) res.destroy();
    else sendJson(res, hasCode(err, 'PIPELINE_CLOSED') ? 503 : 500, { error: `${what} failed: ${(err as Error).message}`, code: (err as { code?: string }).code ?? 'INTERNAL' });
  };

  async function list(res: ServerResponse, stream: string | null): Promise<void> {
    const it = opts.pipeline.segments(stream !== null ? { stream } : {});
    let next = await it.next(); // before the headers, so a failure still gets its status
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    try {
      while (next.done !== true && !res.destroyed) {
        if (!res.write(segmentLine(next.value) + '\n')) await drained(res);
        next = await it.next();
      }
    } finally {
      await it.return(undefined);
    }
    res.end();
  }

  async function key(res: ServerResponse, id: number): Promise<void> {
    let segmentKey: Uint8Array;
    try {
      segmentKey = await opts.pipeline.segmentKey(id);
    } catch (err) {
      if (hasCode(err, 'PIPELINE_SEGMENT_NOT_FOUND')) return sendJson(res, 404, { error: `no segment ${id}`, code: 'PIPELINE_SEGMENT_NOT_FOUND' });
      if (hasCode(err, 'PIPELINE_SEGMENT_DROPPED')) return sendJson(res, 410, { error: `segment ${id} was dropped; its key is gone`, code: 'PIPELINE_SEGMENT_DROPPED' });
      throw err;
    }
    const zero = (): void => void segmentKey.fill(0);
    res.once('close', zero);
    log.info('segment key handed out through the admin API', { id });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': segmentKey.length, 'cache-control': 'no-store' });
    res.end(Buffer.from(segmentKey.buffer, segmentKey.byteOffset, segmentKey.byteLength), zero);
  }

  async function verify(res: ServerResponse): Promise<void> {
    if (verifying) return sendJson(res, 409, { error: 'a verify is already running on this node; try again when it has finished', code: 'SEGMENTS_VERIFY_BUSY' });
    verifying = true;
    const gone = new AbortController();
    res.once('close', () => gone.abort(new Error('the client went away')));
    try {
      const report = await verifyPipeline({ pipeline: opts.pipeline, contentStore: opts.contentStore, signal: gone.signal });
      sendJson(res, 200, report);
    } finally {
      verifying = false;
    }
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== PREFIX && !url.pathname.startsWith(`${PREFIX}/`)) return false;
    const route = routeOf(url.pathname);
    if (route === null) {
      sendJson(res, 404, { error: `unknown API path ${url.pathname}; this node offers GET ${PREFIX}, POST ${PREFIX}/{id}/key, POST ${PREFIX}/verify`, code: 'NOT_FOUND' });
      return true;
    }
    if (req.method !== route.method) {
      res.setHeader('allow', route.method);
      sendJson(res, 405, { error: `use ${route.method}`, code: 'METHOD_NOT_ALLOWED' });
      return true;
    }
    if (!authorized(req, opts.token)) {
      sendJson(res, 401, { error: 'missing or wrong bearer token; read it from <data dir>/api.json', code: 'UNAUTHORIZED' });
      return true;
    }
    if (route.kind === 'key' && route.id === null) {
      sendJson(res, 400, { error: 'the segment id must be a decimal integer >= 0, as `datagate segments list` prints it', code: 'BAD_SEGMENT_ID' });
      return true;
    }
    const what = route.kind === 'list' ? 'listing segments' : route.kind === 'key' ? 'reading a segment key' : 'verifying segments';
    void discardBody(req, res)
      .then((ok) => {
        if (!ok) return;
        if (route.kind === 'list') return list(res, url.searchParams.get('stream'));
        if (route.kind === 'key') return key(res, route.id!);
        return verify(res);
      })
      .catch((err: unknown) => fail(res, what, err));
    return true;
  };
}
