// The data plane of a gateway (docs/architecture.md "Composition"): the content store, the durable pipeline
// that seals readings into segments signed by the device key, and the sensor drivers feeding it, opened in that
// order on a Lifecycle. At stop the drivers stop first, then the pipeline seals what is queued (so the last
// window's readings are in segments too) and closes, then the content store.
import { join } from 'node:path';
import type { Logger, Signer } from '../../chain/index.ts';
import type { PipelineConfig } from '../config/dev-config.ts';
import type { SensorsConfig } from '../config/sensors-config.ts';
import { UnixFsContentStore } from '../content/unixfs-store.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { RunningSensors } from '../sensors.ts';
import { DEFAULT_SIMULATOR, pumpInto, startSensors } from '../sensors.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface DataPlaneOptions {
  readonly dataDir: string;
  readonly sensors: SensorsConfig;
  readonly pipeline: PipelineConfig;
  /** Signs segment manifests. */
  readonly deviceKey: Signer;
  readonly logger: Logger;
}

export interface DataPlane {
  readonly content: UnixFsContentStore;
  readonly pipeline: Pipeline;
  readonly sensors: RunningSensors;
  readonly limits: { maxQueueBytes: number; maxStoreBytes: number; policy: 'stop-accepting' | 'drop-oldest-unsold'; minFreeBytes: number };
}

/** Open the content store, the pipeline and the sensors (the configured sources, or the simulator). */
export async function openDataPlane(life: Lifecycle, opts: DataPlaneOptions): Promise<DataPlane> {
  const { dataDir, pipeline: cfg, logger } = opts;
  const log = logger.child({ module: 'pipeline' });
  const limits: DataPlane['limits'] = { maxQueueBytes: cfg.maxQueueBytes, maxStoreBytes: cfg.maxStoreBytes, policy: cfg.policy as DataPlane['limits']['policy'], minFreeBytes: cfg.minFreeBytes };
  const content = await life.open('content store', () => UnixFsContentStore.open(join(dataDir, 'content')), (c) => c.close());
  const pipeline = await life.open(
    'pipeline',
    () =>
      Pipeline.open({
        dir: join(dataDir, 'pipeline'),
        contentStore: content,
        signer: opts.deviceKey,
        masterKeyPath: join(dataDir, 'master.key'),
        windowMs: cfg.segmentSeconds * 1000,
        maxSegmentBytes: cfg.maxSegmentBytes,
        limits,
        logger: log,
      }),
    async (p) => {
      // A clean stop seals what is queued, so the data of the last window is in segments too.
      await p.flush().catch((err: unknown) => log.error('sealing at shutdown failed; the readings stay queued', { error: err }));
      await p.close();
    },
  );
  const sensors = await life.open(
    'sensors',
    () => startSensors(opts.sensors, logger, { fallback: DEFAULT_SIMULATOR, durable: true, deliveries: pipeline, consume: (d) => pumpInto(d, pipeline, log) }),
    async (s) => {
      await s.stop();
      await Promise.allSettled(s.consumers);
    },
  );
  return { content, pipeline, sensors, limits };
}
