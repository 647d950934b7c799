// The `datagate` command line: the commands, their flags, and what each one starts.
import type { Command, CommandContext } from './args.ts';
import { defineCommand, runCli } from './args.ts';
import { configDefaults, loadConfigFile, withOverrides } from './config.ts';
import type { DevConfig } from './dev-config.ts';
import { devConfigSchema } from './dev-config.ts';
import { DEV_BALANCE, startDevNode } from './dev.ts';
import { DEV_MNEMONIC, hexKey } from './dev-accounts.ts';
import { createLogger } from './logger.ts';

const devOptions = {
  config: { type: 'string', valueName: 'file', description: 'JSON config file (see README); flags below override it' },
  'data-dir': { type: 'string', valueName: 'dir', description: 'Chain data directory (default ./data/dev, or dataDir of the config)' },
  'rpc-host': { type: 'string', valueName: 'address', description: 'Address the JSON-RPC server binds (default 127.0.0.1)' },
  'rpc-port': { type: 'integer', valueName: 'port', description: 'JSON-RPC port, HTTP and WebSocket (default 8545)' },
  'chain-id': { type: 'integer', valueName: 'id', description: 'EIP-155 chain id (default 1337)' },
  'block-period': { type: 'integer', valueName: 'ms', description: 'Milliseconds between blocks when no transactions are pending (default 2000)' },
  'log-level': { type: 'string', choices: ['debug', 'info', 'warn', 'error'], description: 'Lowest log level printed (default info)' },
  'log-format': { type: 'string', choices: ['auto', 'json', 'human'], description: 'Log format; auto = human on a terminal (default auto)' },
} as const;

type DevOptions = CommandContext<typeof devOptions>['options'];

/** The dev config from the config file (if any) and the flags on top. */
export async function devConfigFrom(options: DevOptions): Promise<DevConfig> {
  const base = options.config === undefined ? configDefaults(devConfigSchema) : await loadConfigFile(options.config, devConfigSchema);
  const overrides: Record<string, unknown> = {};
  if (options['data-dir'] !== undefined) overrides.dataDir = options['data-dir'];
  if (options['rpc-host'] !== undefined) overrides['rpc.host'] = options['rpc-host'];
  if (options['rpc-port'] !== undefined) overrides['rpc.port'] = options['rpc-port'];
  if (options['chain-id'] !== undefined) overrides.chainId = options['chain-id'];
  if (options['block-period'] !== undefined) overrides['block.periodMs'] = options['block-period'];
  if (options['log-level'] !== undefined) overrides['log.level'] = options['log-level'];
  if (options['log-format'] !== undefined) overrides['log.format'] = options['log-format'];
  return withOverrides(base, overrides, devConfigSchema);
}

const dev = defineCommand({
  name: 'dev',
  summary: 'Run a single-machine development chain with prefunded accounts and JSON-RPC',
  options: devOptions,
  async run({ options, stdout, signal }) {
    const config = await devConfigFrom(options);
    const logger = createLogger({ level: config.log.level as 'info', format: config.log.format as 'auto' });
    let fatal: unknown = null;
    const stopped = new AbortController();
    const node = await startDevNode(config, logger, (err) => {
      fatal = err;
      stopped.abort();
    });
    const lines = [
      `datagate dev: chain id ${config.chainId}, data dir ${node.dataDir}`,
      `JSON-RPC: ${node.rpcUrl} (WebSocket ${node.wsUrl})`,
      '',
      `Accounts (each ${DEV_BALANCE / 10n ** 18n} ETH), mnemonic "${DEV_MNEMONIC}":`,
      ...node.accounts.map((a, i) => `(${i}) ${a.address}  private key ${hexKey(a)}`),
      '',
      'These keys are public knowledge: never use them outside development. Ctrl-C stops the node.',
      '',
    ];
    stdout.write(lines.join('\n'));
    await new Promise<void>((resolve) => {
      if (signal.aborted || stopped.signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
      stopped.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    logger.info('stopping');
    await node.stop();
    if (fatal !== null) throw fatal;
    logger.info('stopped cleanly');
    return 0;
  },
});

export const commands: readonly Command[] = [dev];

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export function main(argv: readonly string[], signal: AbortSignal): Promise<number> {
  return runCli(argv, commands, { signal });
}
