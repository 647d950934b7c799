// The peer handshake's proofs (see docs/architecture.md, "Peers"): bound to the chain, the genesis, both
// peer ids and the verifier's fresh nonce, so none can be replayed, moved to another chain or another peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validatorKeyOf } from '../../chain/index.ts';
import { checkProof, makeProof, newNonce } from '../../chain/net/handshake.ts';
import type { AuthSession } from '../../chain/net/handshake.ts';
import { FrameDecoder, frame, SendQueue, TokenBucket } from '../../chain/net/frames.ts';
import { MemoryP256Signer, MemorySigner } from '../../device/index.ts';
import { expectCode } from '../helpers/expect-code.ts';

const member = new MemorySigner(new Uint8Array(32).fill(0x21));
const p256Member = new MemoryP256Signer(new Uint8Array(32).fill(0x22));
const committee = [validatorKeyOf(member), validatorKeyOf(p256Member)];
const GENESIS = '0x' + 'ab'.repeat(32);

/** A handshake between prover A and verifier B: the session as each side sees it. */
function sessions(over: Partial<AuthSession> = {}) {
  const a = newNonce();
  const b = newNonce();
  const prover: AuthSession = { chainId: 7n, genesisHash: GENESIS, localPeerId: 'peerA', remotePeerId: 'peerB', localNonce: a, remoteNonce: b };
  const verifier: AuthSession = { chainId: 7n, genesisHash: GENESIS, localPeerId: 'peerB', remotePeerId: 'peerA', localNonce: b, remoteNonce: a, ...over };
  return { prover, verifier };
}

test('a proof made for this session verifies to the prover address, for secp256k1 and P-256 keys; no key means a follower', { timeout: 10_000 }, async () => {
  for (const signer of [member, p256Member]) {
    const { prover, verifier } = sessions();
    assert.equal(checkProof(await makeProof(signer, prover), verifier, committee), signer.address);
  }
  const { prover, verifier } = sessions();
  assert.equal(checkProof(await makeProof(null, prover), verifier, committee), null);
  // A key outside the committee proves its address too; the transport makes it a follower.
  const outsider = new MemorySigner(new Uint8Array(32).fill(0x23));
  assert.equal(checkProof(await makeProof(outsider, prover), verifier, committee), outsider.address);
});

test('a replayed proof, one for another chain id or genesis, or one bound to another peer id is refused', { timeout: 10_000 }, async () => {
  const { prover, verifier } = sessions();
  const proof = await makeProof(member, prover);
  // Replayed into a later handshake: the verifier's nonce is fresh.
  await expectCode(async () => checkProof(proof, { ...verifier, localNonce: newNonce() }, committee), 'NET_AUTH_FAILED');
  await expectCode(async () => checkProof(proof, { ...verifier, chainId: 8n }, committee), 'NET_AUTH_FAILED');
  await expectCode(async () => checkProof(proof, { ...verifier, genesisHash: '0x' + 'cd'.repeat(32) }, committee), 'NET_AUTH_FAILED');
  // Relayed by a third peer C to B: B sees C's peer id, not A's.
  await expectCode(async () => checkProof(proof, { ...verifier, remotePeerId: 'peerC' }, committee), 'NET_AUTH_FAILED');
  // Reflected back to A on the same connection: A is the verifier now.
  await expectCode(async () => checkProof(proof, { ...prover }, committee), 'NET_AUTH_FAILED');
  await expectCode(async () => checkProof(new Uint8Array([0xc3, 1, 2, 3]), verifier, committee), 'NET_AUTH_FAILED');
  await expectCode(async () => checkProof(new Uint8Array([0xff]), verifier, committee), 'NET_AUTH_FAILED');
});

test('frames split across chunks come out whole; an oversized length is refused before its bytes arrive', { timeout: 10_000 }, () => {
  const d = new FrameDecoder(16);
  const bytes = new Uint8Array([...frame(new Uint8Array([1, 2, 3])), ...frame(new Uint8Array(0)), ...frame(new Uint8Array([9]))]);
  const out: Uint8Array[] = [];
  for (const b of bytes) out.push(...d.push(new Uint8Array([b])));
  assert.deepEqual(out.map((f) => [...f]), [[1, 2, 3], [], [9]]);
  assert.throws(() => new FrameDecoder(16).push(new Uint8Array([0, 0, 0, 17])), { code: 'NET_FRAME_TOO_LARGE' });
});

test('send queues drop the oldest frame of a full kind and drain consensus first; the token bucket refills at its rate', { timeout: 10_000 }, () => {
  const q = new SendQueue<'consensus' | 'txs'>(['consensus', 'txs'], 2);
  for (const n of [1, 2, 3]) q.push('txs', new Uint8Array([n]));
  q.push('consensus', new Uint8Array([7]));
  assert.equal(q.dropped, 1);
  assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()].map((f) => f?.[0]), [7, 2, 3, undefined]);
  let now = 0;
  const bucket = new TokenBucket(10, 2, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [true, true, false]);
  now += 100;
  assert.deepEqual([bucket.take(), bucket.take()], [true, false]);
});
