// The IPFS trustless gateway over our blockstore (https://specs.ipfs.tech/http-gateways/trustless-gateway/):
// `GET|HEAD /ipfs/{cid}` answers with a single raw block (`?format=raw`, `Accept: application/vnd.ipld.raw`)
// or a CAR v1 of the DAG below the CID in depth-first order (`?format=car`, `Accept: application/vnd.ipld.car`),
// so any IPFS client can fetch a segment and verify every byte against its CID without trusting us.
// Deserialized responses (the file itself) are never served: a request without a verifiable format gets 406,
// as kubo/boxo answer in trustless-only mode. Not implemented: paths below the CID (501 for CAR, 400 for raw,
// which the spec forbids), `entity-bytes`, CAR version 2, `/ipns/`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { CarWriter } from '@ipld/car/writer';
import { CID } from 'multiformats/cid';
import type { Logger } from '../../chain/index.ts';
import { ContentError, nopLogger } from '../../chain/index.ts';
import type { BlockReader, WalkedBlock } from '../content/blockstore.ts';
import { walkDag } from '../content/blockstore.ts';

export const RAW_TYPE = 'application/vnd.ipld.raw';
export const CAR_TYPE = 'application/vnd.ipld.car';
const IMMUTABLE = 'public, max-age=29030400, immutable';

export interface TrustlessGatewayOptions {
  /** Where blocks come from; every read is verified against its CID. */
  readonly blocks: BlockReader;
  readonly logger?: Logger;
}

/** A node:http handler: answers and returns true for `/ipfs/...`, returns false (untouched) for anything else. */
export type GatewayHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The response format a request asked for; `fromAccept` when it came from the Accept header, not ?format. */
type Format = { kind: 'raw'; fromAccept: boolean } | { kind: 'car'; dups: boolean; fromAccept: boolean };
type Negotiated = Format | { error: number; message: string };

const NOT_TRUSTLESS =
  'this is a trustless gateway: it serves verifiable responses only, never deserialized files (https://specs.ipfs.tech/http-gateways/trustless-gateway/). ' +
  `Ask for a raw block with ?format=raw or "Accept: ${RAW_TYPE}", or for a CAR with ?format=car or "Accept: ${CAR_TYPE}"`;

/** Splits an Accept header into media types with their parameters, highest q first (ties keep their order). */
function parseAccept(header: string): Array<{ type: string; params: Map<string, string> }> {
  const out: Array<{ type: string; params: Map<string, string>; q: number; i: number }> = [];
  header.split(',').forEach((part, i) => {
    const [type = '', ...rest] = part.split(';').map((s) => s.trim());
    const params = new Map<string, string>();
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"|"$/g, ''));
    }
    const q = params.has('q') ? Number(params.get('q')) : 1;
    if (type !== '' && q > 0) out.push({ type: type.toLowerCase(), params, q, i });
  });
  return out.sort((a, b) => b.q - a.q || a.i - b.i);
}

/** CAR variant from query parameters (which take precedence) and Accept parameters; null when unsupported. */
function carVariant(query: URLSearchParams, params: Map<string, string>): { dups: boolean } | { error: string } {
  const version = query.get('car-version') ?? params.get('version') ?? '1';
  if (version !== '1') return { error: `CAR version ${version} is not served here; ask for version=1` };
  const order = query.get('car-order') ?? params.get('order') ?? 'dfs';
  if (order !== 'dfs' && order !== 'unk' && order !== '') return { error: `CAR order ${order} is not served here; ask for order=dfs` };
  const dups = query.get('car-dups') ?? params.get('dups') ?? 'n';
  if (dups !== 'y' && dups !== 'n') return { error: `CAR dups=${dups} is not understood; use y or n` };
  return { dups: dups === 'y' };
}

function negotiate(req: IncomingMessage, query: URLSearchParams): Negotiated {
  const format = query.get('format');
  if (format !== null && format !== '') {
    if (format === 'raw') return { kind: 'raw', fromAccept: false };
    if (format === 'car') {
      const v = carVariant(query, new Map());
      return 'error' in v ? { error: 406, message: v.error } : { kind: 'car', dups: v.dups, fromAccept: false };
    }
    return { error: 406, message: `format=${format} is not served here. ${NOT_TRUSTLESS}` };
  }
  let carError: string | undefined;
  for (const { type, params } of parseAccept(req.headers.accept ?? '')) {
    if (type === RAW_TYPE) return { kind: 'raw', fromAccept: true };
    if (type === CAR_TYPE) {
      const v = carVariant(query, params);
      if (!('error' in v)) return { kind: 'car', dups: v.dups, fromAccept: true };
      carError ??= v.error;
    }
  }
  return { error: 406, message: carError ?? NOT_TRUSTLESS };
}

/** True when the If-None-Match header names `etag` (weak comparison) or is `*`. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

function sendError(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  const body = message + '\n';
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Creates the handler; mount it in front of any other routes of an HTTP server. */
export function createTrustlessGatewayHandler(opts: TrustlessGatewayOptions): GatewayHandler {
  const { blocks } = opts;
  const log = opts.logger ?? nopLogger;

  async function serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, `method ${req.method} not allowed: this gateway is read-only (GET, HEAD)`, { Allow: 'GET, HEAD' });
    }
    const rest = url.pathname.slice('/ipfs/'.length);
    const slash = rest.indexOf('/');
    const cidText = slash < 0 ? rest : rest.slice(0, slash);
    const subPath = slash < 0 ? '' : rest.slice(slash + 1);
    if (cidText === '') return sendError(res, 400, 'missing CID: request /ipfs/{cid}');
    let cid: CID;
    try {
      cid = CID.parse(decodeURIComponent(cidText));
    } catch (err) {
      return sendError(res, 400, `invalid CID "${cidText.slice(0, 100)}": ${(err as Error).message}`);
    }
    const format = negotiate(req, url.searchParams);
    if ('error' in format) return sendError(res, format.error, format.message, { Vary: 'Accept' });
    if (subPath !== '') {
      if (format.kind === 'raw') return sendError(res, 400, `a raw block is requested by CID alone: /ipfs/${cid}?format=raw (no path below the CID)`);
      return sendError(res, 501, `paths below the CID are not resolved by this gateway; request the CID of the target itself: /ipfs/{cid}?format=car`);
    }
    if (url.searchParams.has('entity-bytes')) {
      return sendError(res, 501, 'entity-bytes is not implemented by this gateway; request the whole CAR (dag-scope=all)');
    }
    const scope = url.searchParams.get('dag-scope') ?? 'all';
    if (format.kind === 'car' && scope !== 'all' && scope !== 'block' && scope !== 'entity') {
      return sendError(res, 400, `dag-scope=${scope} is not one of block, entity, all`);
    }

    const ext = format.kind === 'raw' ? 'raw' : 'car';
    const etag = format.kind === 'raw' ? `"${cid}.raw"` : `W/"${cid}.car.${scope}.dfs.${format.dups ? 'y' : 'n'}"`;
    const headers: Record<string, string> = {
      'Cache-Control': IMMUTABLE,
      Etag: etag,
      Vary: 'Accept',
      'X-Content-Type-Options': 'nosniff',
      'X-Ipfs-Path': `/ipfs/${cid}`,
      'X-Ipfs-Roots': cid.toString(),
      'Content-Disposition': `attachment; filename="${cid}.${format.kind === 'raw' ? 'bin' : 'car'}"`,
    };
    if (format.fromAccept) headers['Content-Location'] = `/ipfs/${cid}?format=${ext}`;
    if (etagMatches(req.headers['if-none-match'], etag)) {
      if (!(await blocks.has(cid))) throw new ContentError('CONTENT_NOT_FOUND', `block ${cid} is not in this content store`, { cid: cid.toString() });
      res.writeHead(304, headers);
      res.end();
      return;
    }

    if (format.kind === 'raw') {
      const bytes = await blocks.get(cid);
      res.writeHead(200, { ...headers, 'Content-Type': RAW_TYPE, 'Content-Length': bytes.length });
      res.end(req.method === 'HEAD' ? undefined : bytes);
      return;
    }

    // CAR: read the root first, so a missing or damaged root still gets a proper status code.
    // (dag-scope=entity is served as all: this store holds UnixFS files, for which the two are the same.)
    const walk = walkDag(blocks, cid, { dups: format.dups, maxDepth: scope === 'block' ? 0 : undefined });
    const first = await walk.next();
    res.writeHead(200, { ...headers, 'Content-Type': `${CAR_TYPE}; version=1; order=dfs; dups=${format.dups ? 'y' : 'n'}` });
    if (req.method === 'HEAD') {
      await walk.return(undefined);
      res.end();
      return;
    }
    await pipeline(carStream(cid, first, walk), res);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    if (url.pathname !== '/ipfs' && !url.pathname.startsWith('/ipfs/')) return false;
    serve(req, res, url).catch((err: unknown) => {
      if (res.headersSent) {
        // Mid-stream failure of a CAR (or the client went away): cut the connection so the client sees an
        // incomplete response rather than a CAR that looks whole.
        const gone = (err as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE';
        log[gone ? 'debug' : 'warn']('trustless gateway response aborted', { url: req.url, error: String(err) });
        res.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (err instanceof ContentError && err.code === 'CONTENT_NOT_FOUND') return sendError(res, 404, `${err.message}`);
      if (err instanceof ContentError && err.code === 'CONTENT_BAD_CID') return sendError(res, 501, err.message);
      log.error('trustless gateway request failed', { url: req.url, error: String(err), code: err instanceof ContentError ? err.code : undefined });
      sendError(res, 500, err instanceof ContentError ? err.message : 'internal error');
    });
    return true;
  };
}

/**
 * The bytes of a CAR v1 with root `root` holding `first` and then the rest of `walk`. The CAR writer is fed
 * from the walk as the HTTP response drains it; a walk failure ends this stream with that error, so the
 * response is cut off instead of looking complete.
 */
async function* carStream(root: CID, first: IteratorResult<WalkedBlock>, walk: AsyncGenerator<WalkedBlock>): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root]);
  let failure: unknown;
  const pump = (async () => {
    try {
      if (!first.done) await writer.put(first.value);
      for await (const block of walk) await writer.put(block);
    } catch (err) {
      failure = err;
    } finally {
      await writer.close();
    }
  })();
  for await (const chunk of out) yield chunk;
  await pump;
  if (failure !== undefined) throw failure;
}
