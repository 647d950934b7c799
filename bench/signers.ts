// Signer benchmark: signatures per second of a software key (what a keystore signer does once its file is
// decrypted: the chain's secp256k1 backend, and P-256 through chain/crypto) against keys in SoftHSM2 through
// Pkcs11Signer, with the share of the PKCS#11 signer's time spent in the token call, low-s normalisation,
// recovery-id computation (secp256k1) and the self-check verify (P-256). Signatures are made one after
// another, as a validator makes them. Prints figures; asserts nothing.
//   npm run bench:signers [-- --ms 2000]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { KeyType } from '../chain/index.ts';
import { p256BackendName, p256Sign, secp256k1, secp256k1BackendName } from '../chain/index.ts';
import { Pkcs11Signer, newPkcs11SignStats } from '../device/index.ts';
import { setupSoftHsm, softHsmSkipReason } from '../test/helpers/softhsm.ts';

const { values } = parseArgs({ options: { ms: { type: 'string', default: '2000' } } });
const BUDGET_MS = Number(values.ms);
if (!Number.isFinite(BUDGET_MS) || BUDGET_MS <= 0) throw new Error('--ms must be a positive number of milliseconds');
const WARMUP = 200;

/** Random 32-byte digests, made up front so generating them is not measured. */
const DIGESTS = Array.from({ length: 4096 }, () => new Uint8Array(randomBytes(32)));
const digest = (i: number): Uint8Array => DIGESTS[i % DIGESTS.length] as Uint8Array;

/** Calls `sign` for BUDGET_MS after a warm-up (`onStart` runs between them); returns count and elapsed ms. */
async function measure(sign: (d: Uint8Array) => unknown, onStart?: () => void): Promise<{ count: number; ms: number }> {
  for (let i = 0; i < WARMUP; i++) await sign(digest(i));
  onStart?.();
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < BUDGET_MS) {
    for (let k = 0; k < 50; k++) await sign(digest(count++));
    now = performance.now();
  }
  return { count, ms: now - start };
}

function line(name: string, r: { count: number; ms: number }, extra = ''): void {
  const perSec = (r.count / r.ms) * 1000;
  const us = (r.ms / r.count) * 1000;
  console.log(`${name.padEnd(44)} ${perSec.toFixed(0).padStart(8)} sig/s ${us.toFixed(1).padStart(8)} µs/sig${extra}`);
}

function validKey(n: bigint): Uint8Array {
  for (;;) {
    const k = new Uint8Array(randomBytes(32));
    const v = k.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
    if (v > 0n && v < n) return k;
  }
}

async function softwarePart(): Promise<void> {
  console.log(`software keys (keystore path once decrypted); secp256k1 backend: ${secp256k1BackendName()}, P-256 backend: ${p256BackendName()}`);
  const k1 = validKey(0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n);
  line('software secp256k1 (backend sign + recid)', await measure((d) => {
    const { signature, recid } = secp256k1.sign(d, k1);
    const out = new Uint8Array(65);
    out.set(signature, 0);
    out[64] = recid;
    return out;
  }));
  const p = validKey(0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n);
  line('software P-256 (p256Sign over sha256)', await measure((d) => p256Sign(d, p)));
  k1.fill(0);
  p.fill(0);
}

async function softHsmPart(): Promise<void> {
  const skip = softHsmSkipReason();
  if (skip !== false) {
    console.log(`SoftHSM2 part ${skip}`);
    return;
  }
  const hsm = setupSoftHsm({ tokens: ['datagate-bench'] });
  try {
    const token = { modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: hsm.pin };
    console.log(`SoftHSM2 through Pkcs11Signer (pkcs11js, C_Sign on a worker thread), module ${hsm.modulePath}`);
    for (const keyType of ['secp256k1', 'p256'] as KeyType[]) {
      const objectLabel = `bench-${keyType}`;
      await Pkcs11Signer.generate({ ...token, objectLabel, keyType });
      const stats = newPkcs11SignStats();
      const signer = await Pkcs11Signer.open({ ...token, objectLabel, stats });
      try {
        // Stats and counters also run during the warm-up: take the measured part as a difference.
        let before = { ...stats };
        let countsBefore = signer.counters;
        const r = await measure((d) => signer.sign(d, 'message'), () => {
          before = { ...stats };
          countsBefore = signer.counters;
        });
        const delta = (k: keyof typeof stats): number => stats[k] - before[k];
        const pct = (ms: number): string => `${((ms / r.ms) * 100).toFixed(1)}%`;
        const normalised = signer.counters.normalised - countsBefore.normalised;
        const step = keyType === 'secp256k1' ? `recovery id ${pct(delta('recoveryMs'))}` : `verify ${pct(delta('verifyMs'))}`;
        const rest = r.ms - delta('tokenMs') - delta('normaliseMs') - delta('recoveryMs') - delta('verifyMs');
        line(`SoftHSM2 ${keyType} (Pkcs11Signer)`, r);
        console.log(
          `${''.padEnd(44)} time: token ${pct(delta('tokenMs'))}, low-s ${pct(delta('normaliseMs'))}, ${step}, other ${pct(rest)}` +
            ` (queue, hashing, copies); high-s normalised ${normalised} of ${r.count}`,
        );
      } finally {
        await signer.close();
      }
    }
  } finally {
    hsm.cleanup();
  }
}

console.log(`signers benchmark: ${BUDGET_MS} ms per case, one signature at a time, node ${process.version}`);
await softwarePart();
await softHsmPart();
