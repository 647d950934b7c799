// `datagate status`: the status of the node running on a data directory, from its admin API (URL and bearer
// token from <data dir>/api.json; the endpoint is in status-api.ts), printed as indented JSON. The exit code is
// for scripts and monitoring (EXIT_CODES, also in --help); each problem is said in one line on stderr.
import { resolve } from 'node:path';
import { defineCommand } from './args.ts';
import { NodeApiClient, NodeApiError } from '../api/client.ts';
import type { NodeStatus } from '../api/status-api.ts';
import { STATUS_PATH } from '../api/status-api.ts';

/** How long `datagate status` waits for the node's answer. */
export const STATUS_TIMEOUT_MS = 10_000;

/** The status of the node that wrote `<dir>/api.json`. Throws NodeApiError. */
export async function fetchNodeStatus(dir: string, signal?: AbortSignal): Promise<NodeStatus> {
  const api = await NodeApiClient.open(dir, `no node runs on ${dir}`);
  const body = await api.json(STATUS_PATH, { timeoutMs: STATUS_TIMEOUT_MS, ...(signal !== undefined ? { signal } : {}) });
  const s = body as { pipeline?: Partial<NodeStatus['pipeline']>; sensors?: unknown; limits?: unknown } | null;
  if (s === null || typeof s !== 'object' || typeof s.pipeline?.alarm !== 'boolean' || !Array.isArray(s.pipeline.alarmOn) || (s.pipeline.failed !== null && typeof s.pipeline.failed !== 'string') || !Array.isArray(s.sensors) || typeof s.limits !== 'object') {
    throw new NodeApiError('NODE_API_BAD_ANSWER', `the node's API at ${api.url} sent no status (pipeline, sensors, limits); is it a datagate node of this version?`, { url: api.url });
  }
  return body as NodeStatus;
}

/** What is wrong with the pipeline in one line, or null when nothing is: its alarm is on, or it has failed. */
export function pipelineProblem(s: Pick<NodeStatus, 'pipeline' | 'limits'>): string | null {
  const p = s.pipeline;
  const problems: string[] = [];
  if (p.failed !== null) problems.push(`the pipeline has failed and takes no readings: ${p.failed}`);
  if (p.alarm) {
    const bounds = p.alarmOn.map((b) => {
      if (b === 'queue') return `queue ${p.queueBytes} of ${s.limits.maxQueueBytes} bytes`;
      if (b === 'store') return `store ${p.storeBytes} of ${s.limits.maxStoreBytes} bytes`;
      return `disk ${p.freeBytes ?? 'unknown'} bytes free, reserve ${s.limits.minFreeBytes}`;
    });
    problems.push(`pipeline alarm on: ${[...bounds, `policy ${s.limits.policy}`].join(', ')}${p.full ? '; readings are being rejected' : ''}`);
  }
  return problems.length === 0 ? null : problems.join('; ').replace(/\s*\n\s*/g, ' ');
}

/** The sensor sources that deliver nothing, in one line, or null when every one is up or starting. */
export function sourcesProblem(s: Pick<NodeStatus, 'sensors'>): string | null {
  const down = s.sensors.flatMap(({ name, status }) => {
    if (status.state === 'retrying') return [`source '${name}' is retrying (attempt ${status.attempt}): ${status.reason}`];
    if (status.state === 'failed') return [`source '${name}' has failed: ${status.reason}`];
    return [];
  });
  return down.length === 0 ? null : down.join('; ').replace(/\s*\n\s*/g, ' ');
}

/** What `datagate status` exits with, for scripts and monitoring; the worst problem decides. */
export const EXIT_CODES = {
  ok: 0,
  /** The pipeline's disk alarm is on or the pipeline has failed: readings are, or soon will be, lost. */
  pipeline: 1,
  /** No status could be had: no node runs on the directory, it does not answer, or it refused the token (also a bad command line). */
  noStatus: 2,
  /** The pipeline is fine but a sensor source is retrying (device missing, broker unreachable) or has failed. */
  sources: 3,
} as const;

/** `datagate status`. */
export const statusCommand = defineCommand({
  name: 'status',
  summary: "Print the running node's status as JSON (pipeline, sensors, chain head); non-zero exit when something is wrong",
  notes: [
    'Exit codes:',
    `  ${EXIT_CODES.ok}   the pipeline is fine and every sensor source is connected (or starting)`,
    `  ${EXIT_CODES.pipeline}   the pipeline's disk alarm is on or the pipeline has failed`,
    `  ${EXIT_CODES.noStatus}   no status could be had: no node runs on --data-dir, it does not answer, or it refused the token`,
    `  ${EXIT_CODES.sources}   the pipeline is fine, but a sensor source is retrying (device or broker missing) or has failed`,
    'The JSON is printed whenever a status was had; each problem is also one line on stderr.',
  ].join('\n'),
  options: {
    'data-dir': { type: 'string', valueName: 'dir', default: './data/dev', description: 'Data directory of the node (its API is found through <dir>/api.json)' },
  },
  async run({ options, stdout, stderr, signal }) {
    const dir = resolve(options['data-dir']);
    let status: NodeStatus;
    try {
      status = await fetchNodeStatus(dir, signal);
    } catch (err) {
      if (!(err instanceof NodeApiError)) throw err;
      stderr.write(`error: ${err.message} [${err.code}]\n`);
      return EXIT_CODES.noStatus;
    }
    stdout.write(JSON.stringify(status, null, 2) + '\n');
    const pipeline = pipelineProblem(status);
    const sources = sourcesProblem(status);
    for (const problem of [pipeline, sources]) if (problem !== null) stderr.write(`datagate status: ${problem}\n`);
    return pipeline !== null ? EXIT_CODES.pipeline : sources !== null ? EXIT_CODES.sources : EXIT_CODES.ok;
  },
});
