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
  await waitForHeight(cluster.nodes, 6n);
  const hashes = await Promise.all(cluster.nodes.map(async (n) => (await n.ledger.blockByNumber(6n))!.hash));
  assert.equal(new Set(hashes).size, 1);
  // The HSM-held key took part in every height (a PREPARE and a COMMIT each). (Certificates keep the first Q commits to arrive, and the
  // token signs on a worker thread, so its commit is often the fourth and need not appear in them.)
  assert.ok(token.counters.signatures >= 2 * 6, `HSM signatures: ${token.counters.signatures}`);
  for (const purpose of ['prepare', 'commit'] as const) assert.ok((guarded.lastSigned(purpose)?.height ?? 0n) >= 5n, purpose);
});
