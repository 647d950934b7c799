// A running node's status on its API port, for operators (`datagate status`) and monitoring (Prometheus): the
// pipeline's counters, gauges and disk alarm, each sensor driver's state and counters, the disk bounds and the
// chain head, as one snapshot taken per request. Counters count since the node started. Like the rest of the
// admin API (content/admin-api.ts) both endpoints need the bearer token of `<data dir>/api.json`; Prometheus
// sends it with `authorization: {credentials_file: ...}`.
//
//   GET /api/v0/status  200 application/json: the NodeStatus of nodeStatus()
//   GET /metrics        200 text/plain; version=0.0.4: statusMetrics() in the Prometheus text format, then
//                       with a consensus source the datagate_lbft_* families of consensusMetrics()
//
// Other methods answer 405, a missing or wrong token 401, a request that carries a body (none is expected) 413.
// Errors are JSON {error, code}.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../chain/index.ts';
import { nopLogger } from '../../chain/index.ts';
import type { DriverCounters, DriverStatus, SensorDriver } from '../../sensors/index.ts';
import { authorized, sendJson } from './content-api.ts';
import { DISK_BOUNDS } from '../pipeline/disk-bounds.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import type { FullPolicy, PipelineStatus } from '../pipeline/pipeline-options.ts';
import type { ConsensusSource } from './consensus-metrics.ts';
import { consensusMetrics } from './consensus-metrics.ts';
import type { MetricFamily } from './prometheus.ts';
import { PROMETHEUS_CONTENT_TYPE, formatMetrics } from './prometheus.ts';

export const STATUS_PATH = '/api/v0/status';
export const METRICS_PATH = '/metrics';

/** The pipeline's disk bounds as the node was configured. */
export interface StatusLimits {
  readonly maxQueueBytes: number;
  readonly maxStoreBytes: number;
  readonly policy: FullPolicy;
  /** Free bytes the pipeline leaves on its filesystem (pipeline.minFreeBytes). */
  readonly minFreeBytes: number;
}

export interface SensorStatus {
  /** The source name of the configuration. */
  readonly name: string;
  readonly status: DriverStatus;
  readonly counters: DriverCounters;
}

/** What GET /api/v0/status answers. */
export interface NodeStatus {
  readonly pipeline: PipelineStatus;
  readonly sensors: readonly SensorStatus[];
  readonly limits: StatusLimits;
  readonly chain: { readonly head: number };
}

/** Where a node's status comes from. */
export interface StatusSources {
  readonly pipeline: Pick<Pipeline, 'status'>;
  readonly drivers: readonly Pick<SensorDriver, 'name' | 'status' | 'counters'>[];
  readonly limits: StatusLimits;
  /** Height of the chain head the node serves. */
  readonly chainHead: () => number | bigint;
}

export interface StatusApiOptions {
  /** The data plane's sources; absent on a node without one (no device key), whose /metrics is consensus only. */
  readonly data?: StatusSources;
  readonly token: string;
  /** The consensus driver the node's API speaks for: its families are appended to /metrics. */
  readonly consensus?: ConsensusSource;
  readonly logger?: Logger;
}

/** A snapshot of `src`. */
export function nodeStatus(src: StatusSources): NodeStatus {
  const { maxQueueBytes, maxStoreBytes, policy, minFreeBytes } = src.limits;
  return {
    pipeline: src.pipeline.status(),
    sensors: src.drivers.map((d) => ({ name: d.name, status: d.status(), counters: d.counters() })),
    limits: { maxQueueBytes, maxStoreBytes, policy, minFreeBytes },
    chain: { head: Number(src.chainHead()) },
  };
}

type CounterKey = 'ingested' | 'rejectedInvalid' | 'rejectedFull' | 'commits' | 'backlogWaits' | 'sealed' | 'stored' | 'droppedSegments' | 'droppedReadings' | 'sealErrors' | 'storeErrors' | 'alarms';
type GaugeKey = 'queueBytes' | 'queuedReadings' | 'storeBytes' | 'openSegments' | 'awaitingSeal' | 'awaitingStore';

const PIPELINE_COUNTERS: readonly [CounterKey, string, string][] = [
  ['ingested', 'ingested', 'Readings made durable in the queue (and acknowledged to their source).'],
  ['rejectedInvalid', 'rejected_invalid', 'Readings refused at ingest as invalid (they could not be sealed).'],
  ['rejectedFull', 'rejected_full', 'Readings refused at ingest because a disk bound was reached (PIPELINE_FULL); not acknowledged.'],
  ['commits', 'commits', "fsync'd queue writes (group commits)."],
  ['backlogWaits', 'backlog_waits', 'Times a group commit waited for the sealer because closed segments awaiting their seal held too many bytes.'],
  ['sealed', 'sealed', 'Segments sealed (signed and encrypted).'],
  ['stored', 'stored', 'Sealed segments stored in the content store.'],
  ['droppedSegments', 'dropped_segments', 'Stored, unsold segments dropped to make room (policy drop-oldest-unsold).'],
  ['droppedReadings', 'dropped_readings', 'Readings of the dropped segments.'],
  ['sealErrors', 'seal_errors', 'Attempts to seal a segment that failed (its readings stay queued and are retried).'],
  ['storeErrors', 'store_errors', 'Attempts to store a sealed segment that failed (retried).'],
  ['alarms', 'alarms', 'Times a disk-bound alarm went on.'],
];

const PIPELINE_GAUGES: readonly [GaugeKey, string, string][] = [
  ['queueBytes', 'queue_bytes', 'Bytes of queued readings not yet sealed.'],
  ['queuedReadings', 'queued_readings', 'Readings queued, not yet sealed.'],
  ['storeBytes', 'store_bytes', 'Envelope bytes of sealed and stored segments.'],
  ['openSegments', 'open_segments', 'Segments open (taking readings).'],
  ['awaitingSeal', 'awaiting_seal', 'Closed segments waiting to be sealed.'],
  ['awaitingStore', 'awaiting_store', 'Sealed segments waiting to be stored.'],
];

const flag = (on: boolean): number => (on ? 1 : 0);

/** The metric families of `s`: `datagate_pipeline_*`, `datagate_sensor_*{driver}`, `datagate_chain_head`. */
export function statusMetrics(s: NodeStatus): MetricFamily[] {
  const p = s.pipeline;
  const one = (name: string, type: MetricFamily['type'], help: string, value: number): MetricFamily => ({ name, type, help, samples: [{ value }] });
  const perDriver = (name: string, type: MetricFamily['type'], help: string, value: (d: SensorStatus) => number): MetricFamily => ({
    name, type, help, samples: s.sensors.map((d) => ({ labels: { driver: d.name }, value: value(d) })),
  });
  return [
    ...PIPELINE_COUNTERS.map(([key, name, help]) => one(`datagate_pipeline_${name}_total`, 'counter', help, p[key])),
    ...PIPELINE_GAUGES.map(([key, name, help]) => one(`datagate_pipeline_${name}`, 'gauge', help, p[key])),
    {
      name: 'datagate_pipeline_alarm', type: 'gauge', help: 'Whether disk use is near this bound (1) or not (0); near the store bound the policy applies.',
      samples: DISK_BOUNDS.map((bound) => ({ labels: { bound }, value: flag(p.alarmOn.includes(bound)) })),
    },
    one('datagate_pipeline_full', 'gauge', 'Whether ingest rejects readings with PIPELINE_FULL (1) or not (0).', flag(p.full)),
    one('datagate_pipeline_failed', 'gauge', 'Whether a database write failed and the pipeline stopped taking readings (1) or not (0).', flag(p.failed !== null)),
    one('datagate_pipeline_max_queue_bytes', 'gauge', 'Configured bound on the bytes of queued readings (pipeline.maxQueueBytes).', s.limits.maxQueueBytes),
    one('datagate_pipeline_max_store_bytes', 'gauge', 'Configured bound on the bytes of stored segments (pipeline.maxStoreBytes).', s.limits.maxStoreBytes),
    ...(p.freeBytes === null ? [] : [one('datagate_pipeline_free_bytes', 'gauge', "Bytes free on the pipeline's filesystem (statfs).", p.freeBytes)]),
    one('datagate_pipeline_min_free_bytes', 'gauge', 'Configured free-space reserve (pipeline.minFreeBytes): ingest stops before free space falls under it.', s.limits.minFreeBytes),
    { name: 'datagate_pipeline_policy', type: 'gauge', help: 'The policy at the store bound (pipeline.policy), as a label; always 1.', samples: [{ labels: { policy: s.limits.policy }, value: 1 }] },
    perDriver('datagate_sensor_readings_total', 'counter', 'Readings the driver produced.', (d) => d.counters.readings),
    {
      name: 'datagate_sensor_rejects_total', type: 'counter', help: 'Inputs the driver rejected, by reason.',
      samples: s.sensors.flatMap((d) => Object.entries(d.counters.rejects).map(([reason, value]) => ({ labels: { driver: d.name, reason }, value }))),
    },
    perDriver('datagate_sensor_reconnects_total', 'counter', 'Times the driver reconnected to its source.', (d) => d.counters.reconnects),
    perDriver('datagate_sensor_connected', 'gauge', 'Whether the driver is connected to its source (1) or not (0).', (d) => flag(d.status.state === 'connected')),
    one('datagate_chain_head', 'gauge', 'Height of the chain head this node serves.', s.chain.head),
  ];
}

/** The handler for GET /api/v0/status and GET /metrics; returns false for other paths. */
export function createStatusApiHandler(opts: StatusApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const log = opts.logger ?? nopLogger;
  return (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname !== STATUS_PATH && pathname !== METRICS_PATH) return false;
    if (req.method !== 'GET') {
      res.setHeader('allow', 'GET');
      sendJson(res, 405, { error: 'use GET', code: 'METHOD_NOT_ALLOWED' });
      return true;
    }
    if (!authorized(req, opts.token)) {
      sendJson(res, 401, { error: 'missing or wrong bearer token; read it from <data dir>/api.json', code: 'UNAUTHORIZED' });
      return true;
    }
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) {
      // Not read: the connection closes after the answer, so an unwanted body costs nothing.
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: `GET ${pathname} takes no request body`, code: 'BODY_TOO_LARGE' });
      return true;
    }
    if (pathname === STATUS_PATH && opts.data === undefined) {
      sendJson(res, 404, { error: 'this node runs no data plane (its config names no keys.device): no pipeline or sensor status; /metrics has its consensus', code: 'NO_DATA_PLANE' });
      return true;
    }
    let body: string;
    try {
      const status = opts.data === undefined ? null : nodeStatus(opts.data);
      body =
        pathname === STATUS_PATH
          ? JSON.stringify(status)
          : formatMetrics([...(status === null ? [] : statusMetrics(status)), ...(opts.consensus === undefined ? [] : consensusMetrics(opts.consensus))]);
    } catch (err) {
      log.warn('reading the node status failed', { error: err });
      sendJson(res, 500, { error: `reading the node status failed: ${(err as Error).message}`, code: 'INTERNAL' });
      return true;
    }
    res.writeHead(200, {
      'content-type': pathname === STATUS_PATH ? 'application/json' : PROMETHEUS_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(body);
    return true;
  };
}
