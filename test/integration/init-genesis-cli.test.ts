// Provisioning a committee as operators do it, with the real `datagate` process: keystore keys made by
// `datagate key new`, one `datagate init` per node (4 validators, 1 proposer, each its own data directory),
// then `datagate genesis` from the records. The genesis file must hold the committee, schedule and bootstrap
// peers of the records and read back to the printed genesis hash; a tampered record, a P-256 proposer and a
// committee under 4 are refused with their codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { loadGenesisFile } from '../../gateway/config/genesis-file.ts';
import { parseEnrolment, type EnrolmentRecord } from '../../gateway/enrolment.ts';
import { setupSoftHsm, softHsmSkipReason } from '../helpers/softhsm.ts';

const BIN = fileURLToPath(new URL('../../gateway/bin/datagate.mjs', import.meta.url));
let dir: string;
let pass: string;

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, DATAGATE_KEYSTORE_PASSPHRASE: '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await run(args, env);
  assert.equal(r.code, 0, `datagate ${args.join(' ')}\n${r.stderr}`);
  return r.stdout;
}

async function newKey(name: string, type: 'secp256k1' | 'p256'): Promise<string> {
  const out = await ok(['key', 'new', '--type', type, '--keystore', join(dir, `${name}.key.json`), '--passphrase-file', pass]);
  return (JSON.parse(out) as { uri: string }).uri;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'datagate-provision-'));
  pass = join(dir, 'pass');
  writeFileSync(pass, 'correct horse battery\n', { mode: 0o600 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

const NODES = [
  { name: 'v0', role: 'validator', type: 'secp256k1' },
  { name: 'v1', role: 'validator', type: 'p256' },
  { name: 'v2', role: 'validator', type: 'secp256k1' },
  { name: 'v3', role: 'validator', type: 'secp256k1' },
  { name: 'p0', role: 'proposer', type: 'secp256k1' },
] as const;

test('init on 5 nodes, genesis from their records, tampered record refused', { timeout: 240_000 }, async () => {
  const uris = await Promise.all(NODES.map((n) => newKey(n.name, n.type)));
  const files = NODES.map((n) => join(dir, `${n.name}.record.json`));
  const printed = await Promise.all(
    NODES.map((n, i) =>
      ok(['init', '--role', n.role, '--key', uris[i]!, '--passphrase-file', pass, '--data-dir', join(dir, 'data', n.name), '--listen', `/ip4/127.0.0.1/tcp/${31_000 + i}`, '--out', files[i]!]),
    ),
  );
  printed.forEach((line, i) => assert.match(line, new RegExp(`^${NODES[i]!.role} 0x[0-9a-f]{40} \\(${NODES[i]!.type}\\), peer 12D3KooW`)));
  const records = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as EnrolmentRecord);
  for (const [i, r] of records.entries()) {
    assert.equal(r.version, 1);
    assert.equal(r.keyType, NODES[i]!.type);
    assert.deepEqual(r.listen, [`/ip4/127.0.0.1/tcp/${31_000 + i}/p2p/${r.peerId}`]);
    assert.equal(statSync(join(dir, 'data', NODES[i]!.name, 'peer.key')).mode & 0o777, 0o600);
  }
  // init again on the same data directory keeps the peer id; without --out the record goes to stdout.
  const again = JSON.parse(await ok(['init', '--role', 'validator', '--key', uris[0]!, '--passphrase-file', pass, '--data-dir', join(dir, 'data', 'v0'), '--listen', '/ip4/127.0.0.1/tcp/31000'])) as EnrolmentRecord;
  assert.equal(again.peerId, records[0]!.peerId);

  const genesisPath = join(dir, 'genesis.json');
  const alloc = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8=1000000000000000000';
  const out = await ok(['genesis', '--chain-id', '4242', '--records', ...files, '--alloc', alloc, '--period-ms', '500', '--timeout-ms', '1500', '--out', genesisPath]);
  const hash = /genesis hash (0x[0-9a-f]{64})/.exec(out)?.[1];
  assert.ok(hash, out);
  const genesis = await loadGenesisFile(genesisPath);
  assert.equal(genesis.genesisHash, hash);
  assert.equal(genesis.spec.chainId, 4242n);
  assert.deepEqual(genesis.spec.committee.map((m) => [m.address, m.keyType]), records.slice(0, 4).map((r) => [r.address, r.keyType]));
  assert.deepEqual(genesis.spec.proposers, [records[4]!.address]);
  assert.deepEqual(genesis.bootstrap, records.flatMap((r) => r.listen));
  assert.equal(genesis.spec.alloc.get('0x70997970c51812dc3a010c7d01b50e0d17dc79c8'), 10n ** 18n);
  assert.deepEqual([genesis.spec.periodMs, genesis.spec.timeoutMs], [500, 1500]);

  // The same records and flags give the same genesis hash (a second founder can check the first).
  const twin = await ok(['genesis', '--chain-id', '4242', '--records', ...files, '--alloc', alloc, '--period-ms', '500', '--timeout-ms', '1500', '--out', join(dir, 'twin.json')]);
  assert.match(twin, new RegExp(`genesis hash ${hash}`));
  // Several allocations after one --alloc, as plain arguments.
  const second = '0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc=5';
  await ok(['genesis', '--chain-id', '4242', '--out', join(dir, 'two-allocs.json'), '--records', ...files, '--alloc', alloc, second]);
  assert.equal((await loadGenesisFile(join(dir, 'two-allocs.json'))).spec.alloc.get('0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc'), 5n);
  const exists = await run(['genesis', '--chain-id', '4242', '--records', ...files, '--out', genesisPath]);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /\[GENESIS_EXISTS\]/);

  // A tampered record (another node's listen address slipped in) is refused, naming the file and field.
  const tampered = join(dir, 'tampered.json');
  writeFileSync(tampered, JSON.stringify({ ...records[2], listen: [`/ip4/203.0.113.9/tcp/31002/p2p/${records[2]!.peerId}`] }, null, 2));
  const refused = await run(['genesis', '--chain-id', '4242', '--records', files[0]!, files[1]!, tampered, files[3]!, files[4]!, '--out', join(dir, 'bad.json')]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`${tampered.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: signature: does not verify.*\\[ENROLMENT_INVALID\\]`));
  assert.throws(() => statSync(join(dir, 'bad.json')));

  const small = await run(['genesis', '--chain-id', '4242', '--records', files[0]!, files[1]!, files[2]!, files[4]!, '--out', join(dir, 'small.json')]);
  assert.equal(small.code, 1);
  assert.match(small.stderr, /n >= 3f \+ 1.*\[GENESIS_COMMITTEE_TOO_SMALL\]/);
  const dev = await run(['genesis', '--chain-id', '1337', '--records', ...files, '--out', join(dir, 'dev.json')]);
  assert.match(dev.stderr, /\[GENESIS_DEV_CHAIN_ID\]/);
});

test('a P-256 key cannot enrol as proposer; usage errors exit 2; help lists the flags', { timeout: 120_000 }, async () => {
  const uri = await newKey('tpm-like', 'p256');
  const r = await run(['init', '--role', 'proposer', '--key', uri, '--passphrase-file', pass, '--data-dir', join(dir, 'data', 'tpm')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /secp256k1.*\[ENROLMENT_KEY_UNSUITABLE\]/);
  const noRole = await run(['init', '--key', uri]);
  assert.equal(noRole.code, 2);
  const badListen = await run(['init', '--role', 'validator', '--key', uri, '--passphrase-file', pass, '--data-dir', join(dir, 'data', 'tpm'), '--listen', '/ip4/0.0.0.0/tcp/1']);
  assert.equal(badListen.code, 2);
  assert.match(badListen.stderr, /cannot be dialled/);
  const help = await ok(['init', '--help']);
  for (const flag of ['--role', '--key', '--device-key', '--data-dir', '--listen', '--out', '--passphrase-file', '--pin-file', '--pkcs11-module']) assert.ok(help.includes(flag), flag);
  const ghelp = await ok(['genesis', '--help']);
  for (const flag of ['--chain-id', '--records', '--alloc', '--period-ms', '--timeout-ms', '--out', '--allow-small-committee', '--dev']) assert.ok(ghelp.includes(flag), flag);
});

test('a validator key on a PKCS#11 token (SoftHSM2, P-256) with a device key: the record verifies', { timeout: 120_000, skip: softHsmSkipReason() }, async (t) => {
  const hsm = setupSoftHsm({ tokens: ['gw'] });
  t.after(() => hsm.cleanup());
  const pin = join(dir, 'pin');
  writeFileSync(pin, `${hsm.pin}\n`, { mode: 0o600 });
  const env = { SOFTHSM2_CONF: process.env['SOFTHSM2_CONF']! };
  const created = JSON.parse(await ok(['key', 'new', '--type', 'p256', '--pkcs11-module', hsm.modulePath, '--token', 'gw', '--label', 'validator', '--pin-file', pin], env)) as { uri: string; publicKey: string };
  const device = await newKey('device', 'secp256k1');
  const out = await ok(['init', '--role', 'validator', '--key', created.uri, '--pin-file', pin, '--device-key', device, '--passphrase-file', pass, '--data-dir', join(dir, 'data', 'hsm'), '--listen', '/dns4/gw7.example.org/tcp/30340'], env);
  const record = parseEnrolment(out, 'stdout');
  assert.equal(record.keyType, 'p256');
  assert.equal(record.publicKey, created.publicKey);
  assert.match(record.deviceAddress ?? '', /^0x[0-9a-f]{40}$/);
  assert.deepEqual(record.listen, [`/dns4/gw7.example.org/tcp/30340/p2p/${record.peerId}`]);
});
