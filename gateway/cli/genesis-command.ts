// `datagate genesis`: the genesis file of a committee chain from the operators' enrolment records. Every record
// is verified (its signature by the key it enrols) before anything is written; see
// docs/architecture.md "Provisioning a committee".
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DatagateError } from '../../chain/index.ts';
import { buildGenesis, parseAllocs, type SourcedRecord } from '../committee-genesis.ts';
import { DEFAULT_BASE_FEE, DEFAULT_GAS_LIMIT, DEFAULT_PERIOD_MS, DEFAULT_TIMEOUT_MS, genesisFileText, parseGenesisFile, writeGenesisFile } from '../config/genesis-file.ts';
import { readEnrolmentFile } from '../enrolment.ts';
import type { Command } from './args.ts';
import { UsageError, defineCommand } from './args.ts';

/** An output file that exists (GENESIS_EXISTS): a chain's genesis is replaced only on purpose. */
class GenesisFileError extends DatagateError<'GENESIS_EXISTS'> {}

export const genesisCommand: Command = defineCommand({
  name: 'genesis',
  summary: "Write a committee chain's genesis file from the nodes' enrolment records and print its genesis hash",
  usage: '--chain-id N --out FILE [options] --records RECORD.json [RECORD.json...] [--alloc ADDRESS=WEI...]',
  options: {
    'chain-id': { type: 'integer', valueName: 'n', description: 'EIP-155 chain id of the new chain (1337, the dev chain\'s, only with --dev)' },
    records: { type: 'string', valueName: 'file', multiple: true, description: 'Enrolment records made by datagate init; more may follow as plain arguments' },
    alloc: { type: 'string', valueName: 'addr=wei', multiple: true, description: 'Initial balance: ADDRESS=WEI; more may follow as plain arguments or comma-separated' },
    'base-fee': { type: 'string', valueName: 'wei', description: `Constant base fee per gas in wei (default ${DEFAULT_BASE_FEE})` },
    'gas-limit': { type: 'integer', valueName: 'gas', default: DEFAULT_GAS_LIMIT, description: 'Gas limit of each block' },
    'period-ms': { type: 'integer', valueName: 'ms', default: DEFAULT_PERIOD_MS, description: 'Target time between blocks' },
    'timeout-ms': { type: 'integer', valueName: 'ms', default: DEFAULT_TIMEOUT_MS, description: 'Wait past the period before validators impeach the scheduled proposer' },
    timestamp: { type: 'integer', valueName: 'ms', default: 0, description: 'Genesis block timestamp (ms since 1970); the default keeps the genesis hash a function of the records and flags alone' },
    out: { type: 'string', valueName: 'file', description: 'Where to write the genesis file (atomically)' },
    force: { type: 'boolean', description: 'Replace --out when it exists' },
    'allow-small-committee': { type: 'boolean', description: 'Accept fewer than 4 validators (such a chain stops when any validator does)' },
    dev: { type: 'boolean', description: 'Allow the dev chain id 1337' },
  },
  positionals: [{ name: 'record', description: 'More enrolment record files (or ADDRESS=WEI allocations after --alloc)', variadic: true }],
  notes: [
    'Validators form the committee and proposers the schedule in the order their records are given; follower',
    'records only add bootstrap peers. Every record must verify (signed by the key it enrols); a proposer key must',
    'be secp256k1; a key or a validator node enrolled twice is refused. LBFT tolerates f faulty validators with',
    'n >= 3f + 1, so at least 4 are required unless --allow-small-committee. The bootstrap peers are the records\'',
    'listen addresses. Prints the genesis hash, which every node of the chain reports and checks at start.',
  ].join('\n'),
  async run({ options, positionals, stdout }) {
    const chainId = options['chain-id'];
    if (chainId === undefined || chainId < 1) throw new UsageError('--chain-id N (a positive integer) is required; run "datagate genesis --help"');
    if (options.out === undefined) throw new UsageError('--out FILE is required: where to write the genesis file');
    // Plain arguments follow --records or --alloc: `--records a.json b.json --alloc A=1 B=2` reads as written.
    const isAlloc = (arg: string): boolean => /^0x[0-9a-fA-F]{40}=/.test(arg);
    const files = [...options.records, ...positionals.filter((p) => !isAlloc(p))];
    const allocs = [...options.alloc, ...positionals.filter(isAlloc)];
    if (files.length === 0) throw new UsageError('no enrolment records: give --records FILE... (made by datagate init on each node)');
    const baseFeeText = options['base-fee'] ?? DEFAULT_BASE_FEE.toString();
    if (!/^\d+$/.test(baseFeeText)) throw new UsageError(`--base-fee must be a whole number of wei (got "${baseFeeText}")`, { flag: '--base-fee' });
    const out = resolve(options.out);
    if (!options.force && (await access(out).then(() => true, () => false))) {
      throw new GenesisFileError('GENESIS_EXISTS', `${out} exists; a chain's genesis is not replaced by accident: pass --force to replace it, or another --out`, { file: out });
    }
    const records: SourcedRecord[] = [];
    for (const file of files) records.push({ source: file, record: await readEnrolmentFile(file) });
    const { spec, bootstrap } = buildGenesis(records, {
      chainId: BigInt(chainId),
      alloc: parseAllocs(allocs),
      baseFee: BigInt(baseFeeText),
      gasLimit: BigInt(options['gas-limit']),
      periodMs: options['period-ms'],
      timeoutMs: options['timeout-ms'],
      genesisTimestamp: options.timestamp,
      allowSmallCommittee: options['allow-small-committee'],
      dev: options.dev,
    });
    // Read back what is about to be written, so a file that start would refuse is never produced.
    const { genesisHash } = parseGenesisFile(genesisFileText(spec, bootstrap), out);
    await writeGenesisFile(out, spec, bootstrap);
    stdout.write(
      [
        `genesis file ${out}: chain id ${chainId}, ${spec.committee.length} validators, ${spec.proposers.length} proposer${spec.proposers.length === 1 ? '' : 's'}, ${bootstrap.length} bootstrap peer${bootstrap.length === 1 ? '' : 's'}`,
        `genesis hash ${genesisHash}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
});
