// Configuration of `datagate dev`, the single-machine development chain: its schema (`devConfigSchema`, built
// with the toolkit in config.ts) and the resulting `DevConfig` type; and the sections every node config shares
// (rpc, txpool, pipeline, log), which `datagate start`'s schema reuses.

import { field, type Infer } from './config.ts';
import { LOG_LEVELS } from '../logger.ts';
import { DEFAULT_MIN_FREE_BYTES } from '../pipeline/pipeline-options.ts';
import { sensorsSchema } from './sensors-config.ts';

/** JSON-RPC server (with the HTTP APIs on the same port) of a node. */
export const rpcSchema = field.object({
  host: field.string({ minLength: 1, default: '127.0.0.1', description: 'Address the JSON-RPC server listens on' }),
  port: field.integer({ min: 0, max: 65535, default: 8545, description: 'JSON-RPC port (HTTP and WebSocket); 0 picks a free port' }),
  maxRequestBytes: field.integer({ min: 1024, default: 5_242_880, description: 'Largest accepted request body' }),
  maxBatch: field.integer({ min: 1, default: 100, description: 'Most calls in one JSON-RPC batch' }),
  maxLogRange: field.integer({ min: 1, default: 10_000, description: 'Most blocks one eth_getLogs may span' }),
});

/** Limits of the transaction pool. */
export const txpoolSchema = field.object(
  {
    maxTotal: field.integer({ min: 1, default: 20_000, description: 'Most pending transactions overall' }),
    maxPerSender: field.integer({ min: 1, default: 64, description: 'Most pending transactions per sender' }),
  },
  { refine: (v) => (v.maxPerSender > v.maxTotal ? `maxPerSender (${v.maxPerSender}) must not exceed maxTotal (${v.maxTotal})` : undefined) },
);

/** The data pipeline: segment windows and the disk bounds. */
export const pipelineSchema = field.object({
  segmentSeconds: field.integer({ min: 1, max: 86_400, default: 60, description: 'Time window of a segment' }),
  maxSegmentBytes: field.integer({ min: 1024, max: 16 * 1024 * 1024, default: 262_144, description: 'Size bound of a sealed segment (readings, signed manifest, tag); the default makes each segment one IPFS block' }),
  maxQueueBytes: field.integer({ min: 65_536, default: 256 * 1024 * 1024, description: 'Disk bound of readings not yet sealed' }),
  maxStoreBytes: field.integer({ min: 65_536, default: 4 * 1024 * 1024 * 1024, description: 'Disk bound of sealed and stored segments' }),
  policy: field.string({ enum: ['stop-accepting', 'drop-oldest-unsold'], default: 'stop-accepting', description: 'What happens at the store bound' }),
  minFreeBytes: field.integer({ min: 0, default: DEFAULT_MIN_FREE_BYTES, description: "Free space kept on the data directory's filesystem: ingest stops (PIPELINE_FULL, alarm 'disk' before it) rather than fill the disk" }),
});

/** Logging. */
export const logSchema = field.object({
  level: field.string({ enum: LOG_LEVELS, default: 'info', description: 'Lowest level logged' }),
  format: field.string({ enum: ['auto', 'json', 'human'], default: 'auto', description: 'auto: human on a terminal, JSON lines otherwise' }),
});

/** Config of `datagate dev`: a development chain (LBFT committee in one process) with JSON-RPC. */
export const devConfigSchema = field.object({
  chainId: field.integer({ min: 1, max: Number.MAX_SAFE_INTEGER, default: 1337, description: 'EIP-155 chain id' }),
  dataDir: field.string({ minLength: 1, default: './data/dev', description: 'Directory for the chain database' }),
  rpc: rpcSchema,
  block: field.object({
    periodMs: field.integer({ min: 1, default: 1000, description: 'Milliseconds between blocks when no transactions are pending' }),
    timeoutMs: field.integer({ min: 10, default: 2000, description: 'How long past the period validators wait for the scheduled proposer before impeaching it' }),
    gasLimit: field.integer({ min: 21_000, default: 30_000_000, description: 'Gas limit of each block' }),
  }),
  lbft: field.object({
    validators: field.integer({ min: 1, max: 64, default: 4, description: 'Validators in the committee' }),
    proposers: field.integer({ min: 1, max: 16, default: 2, description: 'Proposers taking turns' }),
    solo: field.boolean({ default: false, description: 'One node that is both the only validator and the only proposer (fastest; no fault tolerance)' }),
  }),
  txpool: txpoolSchema,
  sensors: sensorsSchema,
  pipeline: pipelineSchema,
  log: logSchema,
});

export type DevConfig = Infer<typeof devConfigSchema>;
export type PipelineConfig = Infer<typeof pipelineSchema>;
export type RpcConfig = Infer<typeof rpcSchema>;
