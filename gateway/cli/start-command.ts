// `datagate start --config FILE`: one gateway of a committee (gateway/node/start.ts), until SIGINT/SIGTERM or a
// fatal consensus error. It prints one line of what it runs and where to reach it; the rest goes to the log.
import { UsageError, defineCommand } from './args.ts';
import { loadConfigFile, withOverrides } from '../config/config.ts';
import { nodeConfigSchema } from '../config/node-config.ts';
import { startNode } from '../node/start.ts';
import { createLogger } from '../logger.ts';
import { serveUntilStopped } from './serve.ts';

export const startCommand = defineCommand({
  name: 'start',
  summary: 'Run one gateway of a committee (validator, proposer or follower) from a config file and a genesis file',
  options: {
    config: { type: 'string', valueName: 'file', description: 'JSON config: dataDir, genesis, role, keys (URIs), p2p, rpc, sensors, pipeline, log (see README, "A committee of gateways")' },
    'data-dir': { type: 'string', valueName: 'dir', description: 'Overrides dataDir of the config' },
    'rpc-port': { type: 'integer', valueName: 'port', description: 'Overrides rpc.port of the config (0 picks a free port)' },
    'log-level': { type: 'string', choices: ['debug', 'info', 'warn', 'error'], description: 'Overrides log.level of the config' },
  },
  async run({ options, stdout, signal }) {
    if (options.config === undefined) throw new UsageError('--config FILE is required (the node config; see datagate start --help)');
    const overrides: Record<string, unknown> = {};
    if (options['data-dir'] !== undefined) overrides.dataDir = options['data-dir'];
    if (options['rpc-port'] !== undefined) overrides['rpc.port'] = options['rpc-port'];
    if (options['log-level'] !== undefined) overrides['log.level'] = options['log-level'];
    const config = withOverrides(await loadConfigFile(options.config, nodeConfigSchema), overrides, nodeConfigSchema);
    const logger = createLogger({ level: config.log.level as 'info', format: config.log.format as 'auto' });
    let fatal: unknown = null;
    const stopped = new AbortController();
    const node = await startNode(config, logger, {
      onFatal: (err) => {
        fatal = err;
        stopped.abort();
      },
      signal,
    });
    // Started by `datagate testnet` in a process group of its own: stop when that process is gone.
    if (process.env.DATAGATE_STOP_WITH_PARENT === '1') {
      const parent = process.ppid;
      const watch = setInterval(() => {
        if (process.ppid === parent) return;
        logger.warn('the process that started this node is gone; stopping');
        stopped.abort();
      }, 1000);
      watch.unref();
      stopped.signal.addEventListener('abort', () => clearInterval(watch), { once: true });
      signal.addEventListener('abort', () => clearInterval(watch), { once: true });
    }
    const who = node.address === null ? '' : ` ${node.address}`;
    stdout.write(`datagate start: ${node.role}${who} on chain ${node.genesis.spec.chainId} (genesis ${node.genesis.genesisHash}); peer ${node.listen.join(' ')}; JSON-RPC ${node.rpcUrl}\n`);
    await serveUntilStopped({ stop: () => node.stop(), signal, stopped: stopped.signal, logger });
    if (fatal !== null) throw fatal;
    logger.info('stopped cleanly');
    return 0;
  },
});
