// Child process for the double-sign guard crash test: opens a GuardedSigner on the state file argv[2] and,
// from height argv[3] upwards, signs every guarded purpose at rounds 0 and 1, printing one JSON line per
// signature once guard.sign has returned it. The test kills it with SIGKILL at a random moment.
import { pathToFileURL } from 'node:url';
import { bytesToHex, consensusDigest, keccak256 } from '../../chain/index.ts';
import type { SignPurpose } from '../../chain/index.ts';
import { GuardedSigner, MemorySigner } from '../../device/index.ts';

export const CHILD_KEY = new Uint8Array(32).fill(7);
export const CHILD_PURPOSES = ['proposal', 'prepare', 'commit', 'round-change', 'seal'] as const satisfies readonly SignPurpose[];
const CHAIN_ID = 1337n;

/** The block hash the child signs for (purpose, height, round); `variant` gives a conflicting one. */
export function childHash(purpose: string, height: bigint, round: number, variant = ''): Uint8Array {
  return keccak256(new TextEncoder().encode(`${variant}${purpose}/${height}/${round}`));
}

/** The digest signed over `hash` for (purpose, height, round). */
export function childDigest(purpose: SignPurpose, height: bigint, round: number, hash: Uint8Array): Uint8Array {
  return consensusDigest(purpose, CHAIN_ID, height, round, hash);
}

async function main(): Promise<void> {
  const [stateFile, start] = process.argv.slice(2);
  if (stateFile === undefined || start === undefined) throw new Error('usage: guard-signer.ts <stateFile> <startHeight>');
  const guard = await GuardedSigner.open({ inner: new MemorySigner(CHILD_KEY), stateFile });
  process.stdout.write('ready\n');
  for (let h = BigInt(start); ; h++) {
    for (const round of [0, 1]) {
      for (const purpose of CHILD_PURPOSES) {
        const hash = childHash(purpose, h, round);
        const sig = await guard.sign(childDigest(purpose, h, round, hash), purpose, { height: h, round, hash });
        process.stdout.write(`${JSON.stringify({ purpose, h: h.toString(), round, sig: bytesToHex(sig) })}\n`);
      }
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
