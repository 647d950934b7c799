// A 4-validator LBFT committee over real ledgers in which one validator signs through SoftHSM2 (PKCS#11),
// behind the double-sign guard, as a gateway with an HSM would.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { GuardedSigner, Pkcs11Signer } from '../../device/index.ts';
import { tempDir } from '../helpers/chain.ts';
import { startCluster, waitForHeight } from '../helpers/lbft-cluster.ts';
import { setupSoftHsm, softHsmSkipReason } from '../helpers/softhsm.ts';

test('a committee with one validator key in SoftHSM2 agrees on blocks', { skip: softHsmSkipReason() }, async (t) => {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  const dir = tempDir(t, cleanup);
  const hsm = setupSoftHsm({ tokens: ['validator-token'] });
  cleanup.push(() => hsm.cleanup());
  const access = { modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin };
  await Pkcs11Signer.generate({ ...access, objectLabel: 'validator-0', keyType: 'secp256k1' });
  const token = await Pkcs11Signer.open({ ...access, objectLabel: 'validator-0' });
  cleanup.push(() => token.close());
  const guarded = await GuardedSigner.open({ inner: token, stateFile: join(dir, 'validator-0.sign-state.json') });
  const cluster = await startCluster(join(dir, 'cluster'), { validatorSigners: [guarded] });
  cleanup.push(() => cluster.stop());
  assert.equal(cluster.spec.committee[0]!.address, token.address);
  // With validator 3 down, every quorum (3 of 4) needs the HSM-held validator 0.
  cluster.nodes[3]!.down = true;
  const from = cluster.nodes[1]!.ledger.head.header.number + 2n;
  const to = from + 4n;
  const up = cluster.nodes.filter((n) => !n.down);
  await waitForHeight(up, to);
  const hashes = await Promise.all(up.map(async (n) => (await n.ledger.blockByNumber(to))!.hash));
  assert.equal(new Set(hashes).size, 1);
  // Every block committed with validator 3 down carries the HSM validator's commit signature.
  const ledger = cluster.nodes[1]!.ledger;
  for (let h = from; h <= to; h++) {
    const cert = (await ledger.certificate((await ledger.blockByNumber(h))!.hash))!;
    assert.ok(cert.signatures.some((sig) => sig.signer === token.address), `certificate of height ${h} lacks the HSM validator`);
  }
  assert.ok(token.counters.signatures >= 2 * 5, `HSM signatures: ${token.counters.signatures}`);
  assert.ok((guarded.lastSigned('commit')?.height ?? 0n) >= to);
});
