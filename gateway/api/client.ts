// The one client of a running node's HTTP API, for the commands that talk to it (`datagate status`, `segments`,
// `ipfs`): it finds the node through `<data dir>/api.json`, sends the bearer token, bounds every call in time,
// and turns each way of failing into one error code that says what to do.
import { join } from 'node:path';
import { DatagateError } from '../../chain/index.ts';
import type { ApiAccess } from './content-api.ts';
import { API_FILE, readApiAccess } from './content-api.ts';

/** How long one call waits for the node's answer unless told otherwise. */
export const API_TIMEOUT_MS = 10_000;

/**
 * NODE_NOT_RUNNING: no usable api.json. NODE_API_UNREACHABLE: nothing answers at its URL. NODE_API_REFUSED: the
 * node answered with an error status (fields.status, fields.code). NODE_API_BAD_ANSWER: not what was asked for.
 */
export class NodeApiError extends DatagateError<'NODE_NOT_RUNNING' | 'NODE_API_UNREACHABLE' | 'NODE_API_REFUSED' | 'NODE_API_BAD_ANSWER'> {}

export interface CallOptions {
  readonly method?: 'GET' | 'POST';
  readonly body?: Uint8Array;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export class NodeApiClient {
  private constructor(
    readonly access: ApiAccess,
    private readonly file: string,
  ) {}

  /** The client of the node running on `dataDir`; NODE_NOT_RUNNING (saying `why` the command needs it) when none is. */
  static async open(dataDir: string, why = 'no node runs there'): Promise<NodeApiClient> {
    const file = join(dataDir, API_FILE);
    let access: ApiAccess | null;
    try {
      access = await readApiAccess(dataDir);
    } catch (err) {
      throw new NodeApiError('NODE_NOT_RUNNING', `${file} cannot be used to reach the node's API: ${(err as Error).message}`, { file }, { cause: err });
    }
    if (access === null) {
      throw new NodeApiError('NODE_NOT_RUNNING', `${why}: there is no ${file} (a node writes it once started and removes it when it stops); start one, wait until it has started, or name its directory with --data-dir`, { file });
    }
    return new NodeApiClient(access, file);
  }

  get url(): string {
    return this.access.url;
  }

  /** `path` on the node's API with its token. Resolves to the response when 2xx; throws NodeApiError otherwise. */
  async call(path: string, opts: CallOptions = {}): Promise<Response> {
    const timeoutMs = opts.timeoutMs ?? API_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(`${this.access.url}${path}`, {
        method: opts.method ?? 'GET',
        headers: { authorization: `Bearer ${this.access.token}` },
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        signal: opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout]),
      });
    } catch (err) {
      const why = timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : (((err as Error).cause as { code?: string } | undefined)?.code ?? (err as Error).message);
      throw new NodeApiError('NODE_API_UNREACHABLE', `no node answers at ${this.access.url} (from ${this.file}): ${why}; if no node runs there, that file was left by one that did not stop cleanly`, { url: this.access.url }, { cause: err });
    }
    if (res.ok) return res;
    const body = (await res.json().catch(() => ({}))) as { error?: unknown; code?: unknown };
    const error = typeof body.error === 'string' ? body.error : res.statusText;
    const why = res.status === 401 ? `it refused the token of ${this.file} (api-token replaced while the node runs? restart the node)` : `${res.status} ${error}`;
    throw new NodeApiError('NODE_API_REFUSED', `the node's API at ${this.access.url}: ${why}`, { status: res.status, ...(typeof body.code === 'string' ? { code: body.code } : {}) });
  }

  /** `call`, then the JSON body; NODE_API_BAD_ANSWER when it is not JSON. */
  async json(path: string, opts: CallOptions = {}): Promise<unknown> {
    const res = await this.call(path, opts);
    try {
      return (await res.json()) as unknown;
    } catch (err) {
      throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API at ${this.access.url} sent no JSON for ${path}; is it a datagate node of this version?`, { url: this.access.url }, { cause: err });
    }
  }
}
