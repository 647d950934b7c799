// The double-sign guard: identical re-signs, refusals, persistence across reopen, the state file's mode and
// format, the start-up check against what a real chain shows the key signed, and a signer process killed
// with SIGKILL never leading to a conflicting signature after restart.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SignPurpose } from '../../chain/index.ts';
import { Ledger, TxPool, bytesToHex, hasCode } from '../../chain/index.ts';
import { GuardedSigner, MemorySigner, signedOnChain } from '../../device/index.ts';
import { tempDir, testSpec, validator } from '../helpers/chain.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { SoloSealer } from '../helpers/solo-sealer.ts';
import { CHILD_KEY, CHILD_PURPOSES, childDigest, childHash } from '../helpers/guard-signer.ts';

const CHILD = fileURLToPath(new URL('../helpers/guard-signer.ts', import.meta.url));

async function openGuard(t: { after(fn: () => void): void }, dir = tempDir(t)) {
  const stateFile = join(dir, 'sign-state.json');
  return { stateFile, guard: await GuardedSigner.open({ inner: new MemorySigner(CHILD_KEY), stateFile }) };
}

/** Sign the child's hash for (purpose, h, r), or a conflicting one when `variant` is given. */
function signAt(guard: GuardedSigner, purpose: SignPurpose, height: bigint, round: number, variant = ''): Promise<Uint8Array> {
  const hash = childHash(purpose, height, round, variant);
  return guard.sign(childDigest(purpose, height, round, hash), purpose, { height, round, hash });
}

async function conflictFields(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    assert.ok(hasCode(err, 'SIGN_CONFLICT'), `expected SIGN_CONFLICT, got ${(err as { code?: string }).code}: ${(err as Error).message}`);
    return (err as { fields: Record<string, unknown> }).fields;
  }
  return assert.fail('expected SIGN_CONFLICT, the guard signed');
}

test('an identical request returns the stored signature; a different hash at the same point is refused', async (t) => {
  const { guard } = await openGuard(t);
  const first = await signAt(guard, 'prepare', 5n, 0);
  assert.equal(first.length, 65);
  assert.deepEqual(await signAt(guard, 'prepare', 5n, 0), first);
  const fields = await conflictFields(signAt(guard, 'prepare', 5n, 0, 'other'));
  assert.deepEqual(fields, { purpose: 'prepare', height: 5n, round: 0, lastHeight: 5n, lastRound: 0 });
  // The same hash under another digest (another chain id, say) is not the identical request either.
  const hash = childHash('prepare', 5n, 0);
  await conflictFields(guard.sign(new Uint8Array(32).fill(1), 'prepare', { height: 5n, round: 0, hash }));
  assert.deepEqual(guard.lastSigned('prepare')?.signature, first);
});

test('lower rounds and heights are refused; higher ones are signed; purposes are independent', async (t) => {
  const { guard } = await openGuard(t);
  await signAt(guard, 'commit', 10n, 2);
  assert.deepEqual(await conflictFields(signAt(guard, 'commit', 10n, 1)), {
    purpose: 'commit',
    height: 10n,
    round: 1,
    lastHeight: 10n,
    lastRound: 2,
  });
  await conflictFields(signAt(guard, 'commit', 9n, 5));
  await signAt(guard, 'commit', 10n, 3);
  await signAt(guard, 'commit', 11n, 0);
  assert.equal(guard.lastSigned('commit')?.height, 11n);
  assert.equal(guard.lastSigned('commit')?.round, 0);
  // Another purpose has its own last point.
  await signAt(guard, 'prepare', 10n, 0);
  await signAt(guard, 'round-change', 3n, 1);
  await signAt(guard, 'seal', 1n, 0);
});

test('concurrent conflicting requests: exactly one is signed', async (t) => {
  const { guard } = await openGuard(t);
  const results = await Promise.allSettled([signAt(guard, 'prepare', 7n, 0, 'a'), signAt(guard, 'prepare', 7n, 0, 'b'), signAt(guard, 'prepare', 7n, 0, 'c')]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results) if (r.status === 'rejected') assert.ok(hasCode(r.reason, 'SIGN_CONFLICT'));
});

test('state survives reopen; the state file is 0600 JSON version 1 with decimal heights', async (t) => {
  const dir = tempDir(t);
  const { guard, stateFile } = await openGuard(t, dir);
  assert.equal(statSync(stateFile).mode & 0o777, 0o600);
  const sig = await signAt(guard, 'commit', 123456789012345678901234567890n, 4);
  assert.equal(statSync(stateFile).mode & 0o777, 0o600);
  const doc = JSON.parse(readFileSync(stateFile, 'utf8'));
  assert.equal(doc.version, 1);
  assert.deepEqual(doc.last.commit, {
    height: '123456789012345678901234567890',
    round: 4,
    hash: bytesToHex(childHash('commit', 123456789012345678901234567890n, 4)),
    digest: bytesToHex(childDigest('commit', 123456789012345678901234567890n, 4, childHash('commit', 123456789012345678901234567890n, 4))),
    signature: bytesToHex(sig),
  });

  const { guard: again } = await openGuard(t, dir);
  assert.deepEqual(await signAt(again, 'commit', 123456789012345678901234567890n, 4), sig);
  await conflictFields(signAt(again, 'commit', 123456789012345678901234567890n, 4, 'x'));
  await conflictFields(signAt(again, 'commit', 5n, 0));
});

test('a corrupt state file refuses to start with SIGN_STATE_CORRUPT', async (t) => {
  const dir = tempDir(t);
  const { guard, stateFile } = await openGuard(t, dir);
  await signAt(guard, 'prepare', 3n, 0);
  const good = JSON.parse(readFileSync(stateFile, 'utf8'));
  const variants: unknown[] = [
    'not json{',
    '',
    { ...good, version: 2 },
    { version: 1 },
    { version: 1, last: { vote: good.last.prepare } },
    { version: 1, last: { prepare: { ...good.last.prepare, height: 3 } } },
    { version: 1, last: { prepare: { ...good.last.prepare, height: '-3' } } },
    { version: 1, last: { prepare: { ...good.last.prepare, round: -1 } } },
    { version: 1, last: { prepare: { ...good.last.prepare, hash: '0x1234' } } },
    { version: 1, last: { prepare: { ...good.last.prepare, signature: 'zz' } } },
  ];
  for (const v of variants) {
    writeFileSync(stateFile, typeof v === 'string' ? v : JSON.stringify(v));
    await assert.rejects(
      GuardedSigner.open({ inner: new MemorySigner(CHILD_KEY), stateFile }),
      (err) => hasCode(err, 'SIGN_STATE_CORRUPT'),
      JSON.stringify(v),
    );
  }
});

test('guarded purposes need context with a hash; "message" passes through unguarded', async (t) => {
  const { guard } = await openGuard(t);
  const digest = new Uint8Array(32).fill(3);
  await assert.rejects(guard.sign(digest, 'prepare'), TypeError);
  await assert.rejects(guard.sign(digest, 'seal', { height: 1n, round: 0 }), TypeError);
  await assert.rejects(guard.sign(digest, 'commit', { height: 1n, round: 0, hash: new Uint8Array(31) }), TypeError);
  await assert.rejects(guard.sign(new Uint8Array(31), 'commit', { height: 1n, round: 0, hash: new Uint8Array(32) }), TypeError);
  await assert.rejects(guard.sign(digest, 'vote' as SignPurpose, { height: 1n, round: 0, hash: new Uint8Array(32) }), TypeError);
  const a = await guard.sign(digest, 'message');
  const b = await guard.sign(new Uint8Array(32).fill(4), 'message');
  assert.notDeepEqual(a, b);
  assert.equal(guard.lastSigned('prepare'), undefined);
});

test('start-up: a missing or older state file is refused when the chain shows the key signed; a fence lets it start', { timeout: 60_000 }, async (t) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  const dir = tempDir(t, cleanup);
  const ledger = await Ledger.open(join(dir, 'chain'), testSpec());
  cleanup.push(() => ledger.close());
  const sealer = new SoloSealer({ ledger, pool: new TxPool({ nonceOf: () => 0n, minFee: 1n, blockGasLimit: ledger.spec.gasLimit }), signer: validator, periodMs: 1000 });
  for (let i = 0; i < 5; i++) await sealer.produceBlock();
  const onChain = await signedOnChain(ledger, validator.address);
  assert.deepEqual([...onChain].sort(), [['commit', { height: 5n, round: 0 }], ['seal', { height: 5n, round: 0 }]]);
  assert.equal((await signedOnChain(ledger, validator.address, 1)).size, 2);
  assert.equal((await signedOnChain(ledger, new MemorySigner(CHILD_KEY).address)).size, 0);
  const open = (stateFile: string) => GuardedSigner.open({ inner: validator, stateFile, signedOnChain: onChain });

  // No state file: refused, and nothing is created in its place.
  const missing = join(dir, 'missing.json');
  const m = await expectCode(open(missing), 'SIGN_STATE_MISSING');
  assert.deepEqual([m.file, m.height], [missing, 5n]);
  await expectCode(open(missing), 'SIGN_STATE_MISSING');

  // A state file from before height 5 (restored from an old backup): refused, naming the purpose behind.
  const old = join(dir, 'old.json');
  const guard = await GuardedSigner.open({ inner: validator, stateFile: old });
  const hash = new Uint8Array(32).fill(9);
  await guard.sign(new Uint8Array(32).fill(1), 'commit', { height: 4n, round: 0, hash });
  await guard.sign(new Uint8Array(32).fill(2), 'seal', { height: 5n, round: 0, hash });
  const b = await expectCode(open(old), 'SIGN_STATE_BEHIND');
  assert.deepEqual([b.purpose, b.height, b.stateHeight], ['commit', 5n, 4n]);
  await guard.sign(new Uint8Array(32).fill(3), 'commit', { height: 5n, round: 0, hash });
  await open(old);
  // Without what the chain shows, the guard opens as before; a key that signed nothing there opens too.
  await GuardedSigner.open({ inner: validator, stateFile: missing });
  await GuardedSigner.open({ inner: new MemorySigner(CHILD_KEY), stateFile: join(dir, 'other.json'), signedOnChain: await signedOnChain(ledger, new MemorySigner(CHILD_KEY).address) });

  // The way back without a copy: a fence above the committee's head. It refuses every height up to it.
  const fenced = join(dir, 'fenced.json');
  await GuardedSigner.fence(fenced, 6n);
  await expectCode(GuardedSigner.fence(fenced, 6n), 'SIGN_STATE_EXISTS');
  const after = await open(fenced);
  await expectCode(after.sign(new Uint8Array(32).fill(4), 'commit', { height: 6n, round: 3, hash }), 'SIGN_CONFLICT');
  await expectCode(after.sign(new Uint8Array(32).fill(4), 'prepare', { height: 6n, round: 0, hash }), 'SIGN_CONFLICT');
  assert.equal((await after.sign(new Uint8Array(32).fill(5), 'commit', { height: 7n, round: 0, hash })).length, 65);
  assert.equal(statSync(fenced).mode & 0o777, 0o600);
});

interface Printed {
  purpose: (typeof CHILD_PURPOSES)[number];
  h: string;
  round: number;
  sig: string;
}

/** Run the child from `start` until it printed some signatures, SIGKILL it at a random moment, return them. */
function runAndKill(stateFile: string, start: bigint): Promise<Printed[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, stateFile, start.toString()], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let killTimer: NodeJS.Timeout | undefined;
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`guard-signer made no progress:\n${out}\n${err}`));
    }, 30_000);
    child.stderr.on('data', (c: Buffer) => void (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (killTimer === undefined && out.includes('"sig"')) {
        killTimer = setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 200));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      if (signal !== 'SIGKILL') return reject(new Error(`guard-signer exited with ${code}:\n${out}\n${err}`));
      const lines = out.split('\n').slice(0, -1).filter((l) => l.startsWith('{'));
      resolve(lines.map((l) => JSON.parse(l) as Printed));
    });
  });
}

test('a signer SIGKILLed at random moments never signs a conflict after restart', async (t) => {
  const dir = tempDir(t);
  const stateFile = join(dir, 'sign-state.json');
  const printed: Printed[] = [];
  for (let run = 0; run < 4; run++) {
    const got = await runAndKill(stateFile, BigInt(run + 1) * 1_000_000n);
    assert.ok(got.length > 0, `run ${run}: the child printed no signature`);
    printed.push(...got);

    const guard = await GuardedSigner.open({ inner: new MemorySigner(CHILD_KEY), stateFile });
    for (const p of printed) {
      const h = BigInt(p.h);
      const f = await conflictFields(signAt(guard, p.purpose, h, p.round, 'conflicting'));
      assert.ok((f.lastHeight as bigint) > h || ((f.lastHeight as bigint) === h && (f.lastRound as number) >= p.round));
      const last = guard.lastSigned(p.purpose)!;
      if (last.height === h && last.round === p.round) {
        // The newest point of this purpose: the same request gets the very signature the child returned.
        assert.equal(bytesToHex(await signAt(guard, p.purpose, h, p.round)), p.sig);
      } else {
        await conflictFields(signAt(guard, p.purpose, h, p.round));
      }
    }
    // The newest printed signature of the last run is either the guard's last point or below it.
    const newest = got[got.length - 1]!;
    const last = guard.lastSigned(newest.purpose)!;
    assert.ok(last.height > BigInt(newest.h) || (last.height === BigInt(newest.h) && last.round >= newest.round));
  }
});
