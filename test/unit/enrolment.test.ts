// Enrolment records (enrolment.ts): signed by the committee key they enrol (secp256k1 or P-256), verified field
// by field; any change after signing, a key that does not match its address, a proposer key that is not
// secp256k1 or a listen address of another peer is refused naming the file and field.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import { createEnrolment, parseEnrolment, type EnrolmentRecord } from '../../gateway/enrolment.ts';
import { expectCode } from '../helpers/expect-code.ts';

async function peer(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
}

const k1 = (): MemorySigner => new MemorySigner(randomBytes(32));

async function record(overrides: { signer?: MemorySigner | MemoryP256Signer; role?: 'validator' | 'proposer' | 'follower' } = {}): Promise<EnrolmentRecord> {
  const peerId = await peer();
  return createEnrolment({
    role: overrides.role ?? 'validator',
    signer: overrides.signer ?? k1(),
    peerId,
    listen: [`/ip4/192.0.2.10/tcp/30340/p2p/${peerId}`, `/dns4/gw1.example.org/tcp/30340/p2p/${peerId}`],
    deviceAddress: '0x' + 'ab'.repeat(20),
    createdAt: new Date('2026-12-01T10:00:00Z'),
  });
}

const text = (r: unknown): string => JSON.stringify(r, null, 2);

test('a secp256k1 record and a P-256 record verify after a JSON round trip', { timeout: 30_000 }, async () => {
  const signer = k1();
  const r = await record({ signer, role: 'proposer' });
  assert.equal(r.address, signer.address.toLowerCase());
  assert.equal(r.keyType, 'secp256k1');
  assert.equal(r.createdAt, '2026-12-01T10:00:00.000Z');
  assert.deepEqual(parseEnrolment(text(r), 'r.json'), r);
  const p256 = await record({ signer: new MemoryP256Signer(randomBytes(32)) });
  assert.equal(p256.keyType, 'p256');
  assert.equal(parseEnrolment(text(p256), 'p.json').address, p256.address);
  const { deviceAddress: _, ...noDevice } = r;
  await expectCode(() => parseEnrolment(text(noDevice), 'r.json'), 'ENROLMENT_INVALID');
});

test('every changed field breaks the signature; errors name the file and field', { timeout: 30_000 }, async () => {
  const r = await record();
  const other = await peer();
  const changes: Partial<Record<keyof EnrolmentRecord, unknown>>[] = [
    { role: 'follower' },
    { listen: [r.listen[0]] },
    { deviceAddress: '0x' + 'cd'.repeat(20) },
    { createdAt: '2026-12-01T10:00:01.000Z' },
  ];
  for (const change of changes) {
    const fields = await expectCode(() => parseEnrolment(text({ ...r, ...change }), 'gw1.json'), 'ENROLMENT_INVALID');
    assert.deepEqual([fields.source, fields.field], ['gw1.json', 'signature'], JSON.stringify(change));
  }
  const swapped = await record();
  let fields = await expectCode(() => parseEnrolment(text({ ...r, publicKey: swapped.publicKey }), 'gw1.json'), 'ENROLMENT_INVALID');
  assert.equal(fields.field, 'address');
  fields = await expectCode(() => parseEnrolment(text({ ...r, peerId: other }), 'gw1.json'), 'ENROLMENT_INVALID');
  assert.equal(fields.field, 'listen[0]');
  fields = await expectCode(() => parseEnrolment(text({ ...r, peerId: 'not-a-peer-id' }), 'gw1.json'), 'ENROLMENT_INVALID');
  assert.equal(fields.field, 'peerId');
  assert.throws(() => parseEnrolment(text({ ...r, listen: ['/ip4/192.0.2.10/tcp/30340'] }), 'gw1.json'), /gw1\.json: listen\[0\].*\/p2p\//);
  assert.throws(() => parseEnrolment(text({ ...r, signature: '0x1234' }), 'gw1.json'), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID' && /gw1\.json:\d+:\d+: signature/.test(err.message));
  assert.throws(() => parseEnrolment(text({ ...r, extra: 1 }), 'gw1.json'), /unknown field extra/);
});

test('a proposer key must be secp256k1, at creation and in a record', { timeout: 30_000 }, async () => {
  await expectCode(record({ role: 'proposer', signer: new MemoryP256Signer(randomBytes(32)) }), 'ENROLMENT_KEY_UNSUITABLE');
  const v = await record({ signer: new MemoryP256Signer(randomBytes(32)) });
  await expectCode(() => parseEnrolment(text({ ...v, role: 'proposer' }), 'x.json'), 'ENROLMENT_KEY_UNSUITABLE');
});

test('listen addresses that nobody can dial are refused', { timeout: 30_000 }, async () => {
  const peerId = await peer();
  for (const listen of [`/ip4/0.0.0.0/tcp/30340/p2p/${peerId}`, `/ip4/192.0.2.1/udp/30340/p2p/${peerId}`]) {
    await expectCode(createEnrolment({ role: 'validator', signer: k1(), peerId, listen: [listen] }), 'ENROLMENT_INVALID');
  }
});
