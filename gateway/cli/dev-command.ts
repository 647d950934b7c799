// `datagate dev`: the zero-setup demo, a whole committee in one process (gateway/node/dev.ts), with its flags,
// its banner of public dev keys, and --kill-proposer to watch an impeachment.
import type { CommandContext } from './args.ts';
import { UsageError, defineCommand } from './args.ts';
import { configDefaults, loadConfigFile, withOverrides } from '../config/config.ts';
import type { DevConfig } from '../config/dev-config.ts';
import { devConfigSchema } from '../config/dev-config.ts';
import { DEV_BALANCE, startDevNode } from '../node/dev.ts';
import { DEV_MNEMONIC, hexKey } from '../dev-accounts.ts';
import { openKey } from '../../device/index.ts';
import { createLogger } from '../logger.ts';
import { serveUntilStopped } from './serve.ts';

const devOptions = {
  config: { type: 'string', valueName: 'file', description: 'JSON config file (see README); flags below override it' },
  'data-dir': { type: 'string', valueName: 'dir', description: 'Chain data directory (default ./data/dev, or dataDir of the config)' },
  'rpc-host': { type: 'string', valueName: 'address', description: 'Address the JSON-RPC server binds (default 127.0.0.1)' },
  'rpc-port': { type: 'integer', valueName: 'port', description: 'JSON-RPC port, HTTP and WebSocket (default 8545)' },
  'chain-id': { type: 'integer', valueName: 'id', description: 'EIP-155 chain id (default 1337)' },
  'block-period': { type: 'integer', valueName: 'ms', description: 'Milliseconds between blocks when no transactions are pending (default 1000)' },
  'block-timeout': { type: 'integer', valueName: 'ms', description: 'Wait past the period before impeaching a silent proposer (default 2000)' },
  validators: { type: 'integer', valueName: 'n', description: 'Validators in the LBFT committee (default 4)' },
  proposers: { type: 'integer', valueName: 'n', description: 'Proposers taking turns (default 2)' },
  solo: { type: 'boolean', description: 'Run one node that is the only validator and proposer (no fault tolerance, fastest)' },
  'kill-proposer': { type: 'integer', valueName: 'i', description: 'Stop proposer i (0-based) after --kill-after seconds, to watch its heights get impeached' },
  'kill-after': { type: 'integer', valueName: 's', default: 10, description: 'Seconds before --kill-proposer takes effect' },
  'segment-seconds': { type: 'integer', valueName: 's', description: 'Time window of a data segment (default 60)' },
  'validator-key': { type: 'string', valueName: 'uri', description: 'Key of validator 0 instead of the derived one: keystore:<path> or pkcs11:token=...;object=...' },
  'passphrase-file': { type: 'string', valueName: 'file', description: 'Keystore passphrase file for --validator-key (default: DATAGATE_KEYSTORE_PASSPHRASE)' },
  'pin-file': { type: 'string', valueName: 'file', description: "PKCS#11 PIN file for --validator-key (default: the URI's pin-source, then DATAGATE_PKCS11_PIN)" },
  'pkcs11-module': { type: 'string', valueName: 'so', description: 'PKCS#11 module when the --validator-key URI has no module-path' },
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
  if (options['block-timeout'] !== undefined) overrides['block.timeoutMs'] = options['block-timeout'];
  if (options.validators !== undefined) overrides['lbft.validators'] = options.validators;
  if (options.proposers !== undefined) overrides['lbft.proposers'] = options.proposers;
  if (options.solo) overrides['lbft.solo'] = true;
  if (options['segment-seconds'] !== undefined) overrides['pipeline.segmentSeconds'] = options['segment-seconds'];
  if (options['log-level'] !== undefined) overrides['log.level'] = options['log-level'];
  if (options['log-format'] !== undefined) overrides['log.format'] = options['log-format'];
  return withOverrides(base, overrides, devConfigSchema);
}

export const devCommand = defineCommand({
  name: 'dev',
  summary: 'Run a development chain (an LBFT committee in one process) with prefunded accounts and JSON-RPC',
  options: devOptions,
  async run({ options, stdout, signal }) {
    const config = await devConfigFrom(options);
    const logger = createLogger({ level: config.log.level as 'info', format: config.log.format as 'auto' });
    let fatal: unknown = null;
    const stopped = new AbortController();
    const keyUri = options['validator-key'];
    const validatorKey =
      keyUri === undefined
        ? undefined
        : {
            uri: keyUri,
            signer: await openKey(keyUri, {
              ...(options['passphrase-file'] !== undefined ? { passphraseFile: options['passphrase-file'] } : {}),
              ...(options['pin-file'] !== undefined ? { pinFile: options['pin-file'] } : {}),
              ...(options['pkcs11-module'] !== undefined ? { modulePath: options['pkcs11-module'] } : {}),
            }),
          };
    const node = await startDevNode(config, logger, {
      onFatal: (err) => {
        fatal = err;
        stopped.abort();
      },
      ...(validatorKey !== undefined ? { validatorKey } : {}),
      signal,
    });
    const committee = node.nodes.filter((n) => n.role !== 'follower').map((n) => `  ${n.name.padEnd(12)} ${n.address} (${n.role})`);
    const lines = [
      `datagate dev: chain id ${config.chainId}, data dir ${node.dataDir}`,
      `JSON-RPC: ${node.rpcUrl} (WebSocket ${node.wsUrl})`,
      '',
      `LBFT committee (block period ${config.block.periodMs} ms, impeachment after ${config.block.timeoutMs} ms more):`,
      ...committee,
      '',
      `Accounts (each ${DEV_BALANCE / 10n ** 18n} ETH), mnemonic "${DEV_MNEMONIC}":`,
      ...node.accounts.map((a, i) => `(${i}) ${a.address}  private key ${hexKey(a)}`),
      '',
      'These keys are public knowledge: never use them outside development. Ctrl-C stops the node.',
      '',
    ];
    stdout.write(lines.join('\n'));
    const killIndex = options['kill-proposer'];
    let killTimer: NodeJS.Timeout | undefined;
    if (killIndex !== undefined) {
      if (config.lbft.solo || killIndex < 0 || killIndex >= config.lbft.proposers) {
        await node.stop();
        throw new UsageError(`--kill-proposer ${killIndex}: there are proposers 0..${config.lbft.proposers - 1}${config.lbft.solo ? ' (none in --solo mode)' : ''}`);
      }
      killTimer = setTimeout(() => {
        const p = node.killProposer(killIndex);
        logger.warn('proposer killed: validators will impeach it at its heights', { proposer: p.address, node: p.name });
      }, options['kill-after'] * 1000);
    }
    await serveUntilStopped({ stop: () => node.stop(), signal, stopped: stopped.signal, logger, onStopping: () => clearTimeout(killTimer) });
    if (fatal !== null) throw fatal;
    logger.info('stopped cleanly');
    return 0;
  },
});

