// The config of `datagate start` (config/node-config.ts): defaults, the sections shared with `datagate dev`,
// and role/key consistency refused at load with a message that says which key is missing or unused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../../gateway/config/config.ts';
import { devConfigSchema, logSchema, rpcSchema } from '../../gateway/config/dev-config.ts';
import { DEFAULT_LISTEN, nodeConfigSchema } from '../../gateway/config/node-config.ts';

const KEYS = { validator: 'keystore:/etc/datagate/validator.json', proposer: 'pkcs11:token=gw;object=proposer' };

function load(value: unknown) {
  return parseConfig(JSON.stringify(value, null, 2), 'node.json', nodeConfigSchema);
}

function refused(value: unknown): string {
  try {
    load(value);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err.message;
  }
  return assert.fail(`accepted ${JSON.stringify(value)}`);
}

test('a minimal validator config gets the defaults; shared sections are the dev ones', { timeout: 30_000 }, () => {
  const c = load({ genesis: 'genesis.json', role: 'validator', keys: { validator: KEYS.validator } });
  assert.equal(c.dataDir, './data/node');
  assert.deepEqual(c.p2p, { listen: [DEFAULT_LISTEN], bootstrap: [], maxPeers: 50 });
  assert.equal(c.keys.proposer, undefined);
  assert.equal(c.rpc.host, '127.0.0.1');
  assert.equal(nodeConfigSchema.fields.rpc, rpcSchema);
  assert.equal(nodeConfigSchema.fields.log, logSchema);
  assert.equal(nodeConfigSchema.fields.sensors, devConfigSchema.fields.sensors);
  assert.equal(nodeConfigSchema.fields.pipeline, devConfigSchema.fields.pipeline);
  assert.equal(nodeConfigSchema.fields.txpool, devConfigSchema.fields.txpool);
  const both = load({ genesis: 'g.json', role: 'validator+proposer', keys: { ...KEYS, device: 'keystore:d.json', seller: 'keystore:s.json', passphraseFile: '/run/pass', pkcs11Module: '/usr/lib/softhsm/libsofthsm2.so' } });
  assert.equal(both.keys.proposer, KEYS.proposer);
  assert.equal(load({ genesis: 'g.json', role: 'follower' }).role, 'follower');
});

test('role and keys must agree', { timeout: 30_000 }, () => {
  assert.match(refused({ genesis: 'g.json', role: 'validator' }), /role validator needs keys\.validator/);
  assert.match(refused({ genesis: 'g.json', role: 'proposer', keys: { validator: KEYS.validator } }), /role proposer needs keys\.proposer/);
  assert.match(refused({ genesis: 'g.json', role: 'validator+proposer', keys: { validator: KEYS.validator } }), /needs keys\.proposer/);
  assert.match(refused({ genesis: 'g.json', role: 'validator', keys: KEYS }), /keys\.proposer is set but role validator does not seal blocks/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', keys: { validator: KEYS.validator } }), /keys\.validator is set but role follower does not vote/);
});

test('malformed fields are named with file:line:col', { timeout: 30_000 }, () => {
  assert.match(refused({ role: 'follower' }), /missing required field genesis/);
  assert.match(refused({ genesis: 'g.json', role: 'leader' }), /node\.json:\d+:\d+: role: must be one of "validator", "proposer", "validator\+proposer", "follower"/);
  assert.match(refused({ genesis: 'g.json', role: 'validator', keys: { validator: '/etc/validator.json' } }), /keys\.validator: must be a key URI/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', keys: { pin: 'x' } }), /unknown field keys\.pin/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', p2p: { listen: ['/ip4/127.0.0.1/udp/1'] } }), /node\.json:\d+:\d+: p2p\.listen\[0\]: .*needs a \/tcp\//);
  assert.match(refused({ genesis: 'g.json', role: 'follower', p2p: { listen: ['nonsense'] } }), /p2p\.listen\[0\]: nonsense is not a multiaddr/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', p2p: { bootstrap: ['/ip4/192.0.2.1/tcp/30340'] } }), /node\.json:\d+:\d+: p2p\.bootstrap\[0\]: .*\/p2p\/<peer id>/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', p2p: { maxPeers: 0 } }), /p2p\.maxPeers: must be an integer between 1 and 1000/);
  assert.match(refused({ genesis: 'g.json', role: 'follower', txpool: { maxTotal: 1, maxPerSender: 2 } }), /maxPerSender \(2\) must not exceed maxTotal/);
});
