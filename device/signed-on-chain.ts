// What the committed chain shows a consensus key signed: its commit votes in the blocks' commit certificates
// and the seals of blocks it proposed. The double-sign guard compares its state with this at start-up, so that
// a state file deleted or restored from an old backup is noticed before the key signs again.
import type { Address, Ledger } from '../chain/index.ts';
import type { GuardedPurpose, SignedPoint } from './double-sign-guard.ts';

/**
 * How many blocks below the head are searched. Signatures older than this are final long since, and the guard
 * only has to protect the heights still being decided; a live key signs within a few blocks of the head.
 */
export const SIGNED_ON_CHAIN_WINDOW = 1024;

/**
 * The newest commit vote and seal of `address` among the last `window` blocks of `ledger` (by purpose; a
 * purpose is absent when the key made no such signature there).
 */
export async function signedOnChain(ledger: Ledger, address: Address, window = SIGNED_ON_CHAIN_WINDOW): Promise<Map<GuardedPurpose, SignedPoint>> {
  if (!Number.isSafeInteger(window) || window < 1) throw new RangeError(`signedOnChain: window must be an integer >= 1, got ${window}`);
  const found = new Map<GuardedPurpose, SignedPoint>();
  const votes = ledger.spec.committee.some((m) => m.address === address);
  const seals = ledger.spec.proposers.includes(address);
  const head = ledger.head.header.number;
  const lowest = head - BigInt(window) + 1n > 1n ? head - BigInt(window) + 1n : 1n;
  for (let n = head; n >= lowest && ((votes && !found.has('commit')) || (seals && !found.has('seal'))); n--) {
    const block = await ledger.blockByNumber(n);
    if (block === undefined) break;
    if (seals && !found.has('seal') && block.header.proposer === address && block.header.seal.length > 0) {
      found.set('seal', { height: n, round: block.header.round });
    }
    if (votes && !found.has('commit')) {
      const cert = await ledger.certificate(block.hash);
      if (cert?.signatures.some((s) => s.signer === address)) found.set('commit', { height: n, round: cert.round });
    }
  }
  return found;
}
