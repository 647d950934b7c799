// `datagate testnet --dir D`: a committee of separate `datagate start` processes on this machine (gateway/node/
// testnet.ts), provisioned on the first run and restarted as it is on later ones; stopped together on Ctrl-C.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError, defineCommand } from './args.ts';
import { createLogger } from '../logger.ts';
import type { TestnetNodeSpec, TestnetProcess } from '../node/testnet.ts';
import { TESTNET_CHAIN_ID, provisionTestnet, startTestnetNode, stopTestnetNodes } from '../node/testnet.ts';

const NODES_FILE = 'nodes.json';

export const testnetCommand = defineCommand({
  name: 'testnet',
  summary: 'Run a committee of separate datagate start processes on this machine (keys, records and genesis made for it)',
  options: {
    dir: { type: 'string', valueName: 'dir', description: 'Directory of the testnet: made on the first run, reused (same keys, chain and ports) afterwards' },
    validators: { type: 'integer', valueName: 'n', default: 4, description: 'Validators (at least 4 tolerate one fault)' },
    proposers: { type: 'integer', valueName: 'n', default: 2, description: 'Proposers taking turns' },
    followers: { type: 'integer', valueName: 'n', default: 1, description: 'Followers (serve JSON-RPC, hold no key)' },
    'chain-id': { type: 'integer', valueName: 'id', default: TESTNET_CHAIN_ID, description: 'EIP-155 chain id' },
    'block-period': { type: 'integer', valueName: 'ms', default: 1000, description: 'Milliseconds between blocks when no transactions are pending' },
    'block-timeout': { type: 'integer', valueName: 'ms', default: 2000, description: 'Wait past the period before impeaching a silent proposer' },
  },
  notes: 'Prints one line per node (name, role, JSON-RPC URL). Each node logs to <dir>/<name>/node.log. Ctrl-C or SIGTERM stops them all.',
  async run({ options, stdout, signal }) {
    if (options.dir === undefined) throw new UsageError('--dir DIR is required');
    if (options.validators < 1 || options.proposers < 1 || options.followers < 0) throw new UsageError('--validators and --proposers must be at least 1, --followers at least 0');
    const dir = resolve(options.dir);
    const logger = createLogger({ level: 'info' });
    let specs: TestnetNodeSpec[];
    if (existsSync(join(dir, NODES_FILE))) {
      specs = JSON.parse(await readFile(join(dir, NODES_FILE), 'utf8')) as TestnetNodeSpec[];
    } else {
      const made = await provisionTestnet({ dir, validators: options.validators, proposers: options.proposers, followers: options.followers, chainId: options['chain-id'], periodMs: options['block-period'], timeoutMs: options['block-timeout'], logger });
      specs = made.nodes;
      const { writeFileAtomic } = await import('../../device/index.ts');
      await writeFileAtomic(join(dir, NODES_FILE), JSON.stringify(specs, null, 2) + '\n');
      stdout.write(`testnet: chain ${options['chain-id']}, genesis ${made.genesisHash} (${made.genesisFile})\n`);
    }
    const running: TestnetProcess[] = [];
    try {
      for (const spec of specs) {
        if (signal.aborted) break;
        const p = await startTestnetNode(spec);
        running.push(p);
        stdout.write(`${spec.name.padEnd(12)} ${spec.role.padEnd(9)} ${spec.rpcUrl}\n`);
        void p.exited.then((code) => {
          if (!signal.aborted) logger.warn('a testnet node exited', { node: spec.name, code });
        });
      }
      if (!signal.aborted) await new Promise<void>((done) => signal.addEventListener('abort', () => done(), { once: true }));
    } finally {
      await stopTestnetNodes(running);
    }
    return 0;
  },
});
