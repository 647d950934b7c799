// The genesis file (config/genesis-file.ts) and building it from enrolment records (committee-genesis.ts):
// the file reads back to the same ChainSpec and genesis hash as genesisOf; bad members are named with
// file:line:col; record sets that must not become a chain are refused with a code that says why.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { genesisOf } from '../../chain/index.ts';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import { MIN_COMMITTEE, buildGenesis, parseAllocs, type GenesisParams, type SourcedRecord } from '../../gateway/committee-genesis.ts';
import { genesisFileText, parseGenesisFile } from '../../gateway/config/genesis-file.ts';
import { createEnrolment, type EnrolmentRole } from '../../gateway/enrolment.ts';
import { expectCode } from '../helpers/expect-code.ts';

async function enrol(role: EnrolmentRole, signer: MemorySigner | MemoryP256Signer = new MemorySigner(randomBytes(32)), peerId?: string): Promise<SourcedRecord> {
  const id = peerId ?? peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
  const record = await createEnrolment({ role, signer, peerId: id, listen: [`/ip4/127.0.0.1/tcp/${30_000 + Math.floor(Math.random() * 1000)}/p2p/${id}`] });
  return { source: `${role}-${record.address.slice(2, 8)}.json`, record };
}

const PARAMS: GenesisParams = {
  chainId: 4242n,
  alloc: new Map([['0x' + '01'.repeat(20), 10n ** 18n]]),
  baseFee: 7n,
  gasLimit: 10_000_000n,
  periodMs: 500,
  timeoutMs: 1500,
  genesisTimestamp: 0,
};

async function committee(validators: number, proposers = 1): Promise<SourcedRecord[]> {
  const out: SourcedRecord[] = [];
  for (let i = 0; i < validators; i++) out.push(await enrol('validator', i === 1 ? new MemoryP256Signer(randomBytes(32)) : undefined));
  for (let i = 0; i < proposers; i++) out.push(await enrol('proposer'));
  return out;
}

test('records -> spec -> file -> the same spec and genesis hash', { timeout: 30_000 }, async () => {
  const records = await committee(4, 2);
  const { spec, bootstrap } = buildGenesis(records, PARAMS);
  assert.deepEqual(spec.committee.map((m) => m.address), records.slice(0, 4).map((r) => r.record.address));
  assert.equal(spec.committee[1]!.keyType, 'p256');
  assert.deepEqual(spec.proposers, records.slice(4).map((r) => r.record.address));
  assert.deepEqual(bootstrap, records.flatMap((r) => r.record.listen));
  const text = genesisFileText(spec, bootstrap);
  const back = parseGenesisFile(text, 'genesis.json');
  assert.equal(back.genesisHash, genesisOf(spec).block.hash);
  assert.deepEqual(back.spec, spec);
  assert.deepEqual(back.bootstrap, bootstrap);
  // The hash commits to chain id, committee order, proposers and allocations.
  const reordered = buildGenesis([records[1]!, records[0]!, ...records.slice(2)], PARAMS).spec;
  assert.notEqual(genesisOf(reordered).block.hash, back.genesisHash);
  assert.notEqual(genesisOf({ ...spec, chainId: 4243n }).block.hash, back.genesisHash);
});

test('refusals: small committee, no proposer, duplicates, dev chain id', { timeout: 30_000 }, async () => {
  const records = await committee(MIN_COMMITTEE - 1);
  const fields = await expectCode(() => buildGenesis(records, PARAMS), 'GENESIS_COMMITTEE_TOO_SMALL');
  assert.equal(fields.validators, 3);
  assert.throws(() => buildGenesis(records, PARAMS), /n >= 3f \+ 1/);
  assert.equal(buildGenesis(records, { ...PARAMS, allowSmallCommittee: true }).spec.committee.length, 3);
  const four = await committee(4, 0);
  await expectCode(() => buildGenesis(four, PARAMS), 'GENESIS_NO_PROPOSER');
  const full = await committee(4);
  await expectCode(() => buildGenesis([...full, full[0]!], PARAMS), 'GENESIS_DUPLICATE');
  await expectCode(() => buildGenesis([...full, full[4]!], PARAMS), 'GENESIS_DUPLICATE');
  // Two validators behind one peer id fail together.
  const shared = await enrol('validator', undefined, full[0]!.record.peerId);
  await expectCode(() => buildGenesis([...full, shared], PARAMS), 'GENESIS_DUPLICATE');
  // One node may validate and propose with two keys (one peer id).
  const proposerOnNode0 = await enrol('proposer', undefined, full[0]!.record.peerId);
  const both = buildGenesis([...full, proposerOnNode0], PARAMS);
  assert.equal(both.spec.proposers.length, 2);
  assert.equal(new Set(both.bootstrap).size, both.bootstrap.length);
  await expectCode(() => buildGenesis(full, { ...PARAMS, chainId: 1337n }), 'GENESIS_DEV_CHAIN_ID');
  assert.equal(buildGenesis(full, { ...PARAMS, chainId: 1337n, dev: true }).spec.chainId, 1337n);
});

test('--alloc values: ADDR=WEI, comma-separated or repeated; bad ones refused', { timeout: 30_000 }, async () => {
  const a = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
  const b = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
  assert.deepEqual([...parseAllocs([`${a}=5,${b}=6`, `0x${'00'.repeat(20)}=0`])], [[a, 5n], [b.toLowerCase(), 6n], ['0x' + '00'.repeat(20), 0n]]);
  await expectCode(() => parseAllocs([`${a}=-1`]), 'GENESIS_ALLOC_INVALID');
  await expectCode(() => parseAllocs([`${a.slice(0, -1)}=1`]), 'GENESIS_ALLOC_INVALID');
  await expectCode(() => parseAllocs([b.replace('C44', 'c44') + '=1']), 'GENESIS_ALLOC_INVALID');
  await expectCode(() => parseAllocs([`${a}=1`, `${a.toUpperCase().replace('0X', '0x')}=2`]), 'GENESIS_ALLOC_INVALID');
});

test('errors in a genesis file name file:line:col and the member', { timeout: 30_000 }, async () => {
  const { spec, bootstrap } = buildGenesis(await committee(4), PARAMS);
  const good = JSON.parse(genesisFileText(spec, bootstrap)) as Record<string, unknown>;
  const bad = (change: Record<string, unknown>): string => {
    try {
      parseGenesisFile(JSON.stringify({ ...good, ...change }, null, 2), 'genesis.json');
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'CONFIG_INVALID');
      return (err as Error).message;
    }
    return assert.fail(`accepted ${JSON.stringify(change)}`);
  };
  const committeeList = good.committee as { address: string; publicKey: string }[];
  assert.match(bad({ committee: [committeeList[0], committeeList[0]] }), /^genesis\.json:\d+:\d+: committee\[1\]: validator 0x[0-9a-f]{40} is already committee\[0\]/);
  assert.match(bad({ committee: [{ ...committeeList[0], publicKey: committeeList[1]!.publicKey }] }), /genesis\.json:\d+:\d+: committee\[0\]: address .* is not the address of publicKey/);
  assert.match(bad({ alloc: { '0x12': '1' } }), /genesis\.json:\d+:\d+: alloc: key "0x12" must be a 0x-prefixed 20-byte hex address/);
  assert.match(bad({ alloc: { ['0x' + '01'.repeat(20)]: '1.5' } }), /alloc\.0x0101.*: must be an amount in wei/);
  assert.match(bad({ bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), /genesis\.json:\d+:\d+: bootstrap\[0\]: .*\/p2p\//);
  assert.match(bad({ proposers: [] }), /proposers: must have at least 1 items/);
  assert.match(bad({ version: 2 }), /version: must be an integer between 1 and 1/);
  assert.match(bad({ chainId: undefined }), /missing required field chainId/);
  // Line numbers point at the offending member, not at the top of the file.
  const msg = bad({ committee: [committeeList[0], committeeList[0]] });
  assert.ok(Number(/genesis\.json:(\d+):/.exec(msg)![1]) > 5, msg);
});
