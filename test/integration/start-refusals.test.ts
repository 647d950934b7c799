// What `datagate start` refuses before it opens a store (gateway/node/start.ts): a data directory of another
// genesis, a key the genesis did not enrol, a key derived from the public dev mnemonic off the dev chain, and a
// validator+proposer whose two keys differ; each with its code, each leaving the data directory as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore, MIN_SCRYPT_N } from '../../device/index.ts';
import { loadConfigFile } from '../../gateway/config/config.ts';
import { nodeConfigSchema } from '../../gateway/config/node-config.ts';
import { DEV_MNEMONIC, deriveAccounts } from '../../gateway/dev-accounts.ts';
import { createLogger } from '../../gateway/logger.ts';
import { startNode } from '../../gateway/node/start.ts';
import { provisionTestnet } from '../../gateway/node/testnet.ts';
import { spawnDatagate } from '../helpers/dev-process.ts';

const logger = createLogger({ level: 'error' });
const codeOf = (code: string) => (err: unknown) => (err as { code?: string }).code === code;

test('start refuses a foreign genesis, an unenrolled key, a dev key and split validator+proposer keys', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'datagate-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = await provisionTestnet({ dir: join(dir, 'a'), validators: 1, proposers: 1, followers: 0, logger });
  const b = await provisionTestnet({ dir: join(dir, 'b'), validators: 1, proposers: 1, followers: 0, chainId: 4343, logger });
  const [va, pa] = a.nodes;
  const [vb] = b.nodes;
  const configOf = async (file: string, change: (c: Record<string, unknown>) => void = () => {}) => {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    change(c);
    const out = join(dir, `config-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(out, JSON.stringify(c));
    return loadConfigFile(out, nodeConfigSchema);
  };

  // Chain a's validator on chain b's genesis: its key is not in b's committee. Nothing is opened or written, so
  // the data directory is not bound to b either.
  await assert.rejects(startNode(await configOf(va!.configFile, (c) => (c.genesis = b.genesisFile)), logger), codeOf('START_KEY_MISMATCH'));
  assert.equal(existsSync(join(va!.dataDir, 'chain')), false, 'no store opened');
  assert.equal(existsSync(join(va!.dataDir, 'genesis-hash')), false, 'not bound to the refused genesis');

  // A start that passes the checks binds the data dir to genesis a (here stopped by a signal before it opens a
  // store); afterwards it refuses genesis b even for a key b knows.
  await assert.rejects(startNode(await configOf(va!.configFile), logger, { signal: AbortSignal.abort() }), codeOf('NODE_START_STOPPED'));
  await assert.rejects(
    startNode(await configOf(vb!.configFile, (c) => (c.dataDir = va!.dataDir)), logger),
    (err: Error & { code?: string }) => err.code === 'GENESIS_MISMATCH' && err.message.includes(a.genesisHash) && err.message.includes(b.genesisHash),
  );

  // A keystore of the dev mnemonic's first validator key, on chain 4242.
  const devKeyFile = join(dir, 'dev-key.json');
  const passphrase = readFileSync(join(dir, 'a', 'passphrase'), 'utf8').trim();
  writeFileSync(devKeyFile, await encryptKeystore(deriveAccounts(DEV_MNEMONIC, 1, 1)[0]!.privateKey, new TextEncoder().encode(passphrase), { scryptN: MIN_SCRYPT_N }));
  await assert.rejects(
    startNode(await configOf(va!.configFile, (c) => ((c.keys as Record<string, string>).validator = `keystore:${devKeyFile}`)), logger),
    (err: Error & { code?: string }) => err.code === 'DEV_KEY_REFUSED' && /keys\.validator/.test(err.message),
  );

  // validator+proposer with a's validator key and a's proposer key: two keys, one driver.
  await assert.rejects(
    startNode(
      await configOf(va!.configFile, (c) => {
        c.role = 'validator+proposer';
        (c.keys as Record<string, string>).proposer = (JSON.parse(readFileSync(pa!.configFile, 'utf8')) as { keys: { proposer: string } }).keys.proposer;
      }),
      logger,
    ),
    (err: Error & { code?: string }) => err.code === 'START_KEY_MISMATCH' && /same key/.test(err.message),
  );
});

test('datagate start without --config is a usage error naming the flag', { timeout: 120_000 }, async (t) => {
  const p = spawnDatagate(['start'], { t });
  assert.equal(await p.exited, 2);
  assert.match(p.output(), /--config FILE is required/);
});
