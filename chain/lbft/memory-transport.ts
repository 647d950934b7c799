// An in-memory transport between LBFT nodes of one process (`datagate dev`, tests, benchmarks). Every
// delivery happens on a later macrotask, never re-entrantly, as it would over a network; a member marked
// down neither sends nor receives.
import type { Ledger } from '../ledger.ts';
import type { Address, SignedTx } from '../types.ts';
import type { EngineBlock } from './codec.ts';
import { engineBlock } from './codec.ts';
import type { LbftTransport } from './driver.ts';
import type { Decided, Message } from './types.ts';

export interface TransportMember {
  readonly address: Address;
  readonly ledger: Ledger;
  deliver(message: Message<EngineBlock>): void;
  /** Transactions sent toward the proposers; a member without it takes none. */
  receiveTransactions?(txs: readonly SignedTx[]): void;
  down: boolean;
}

export class MemoryTransport implements LbftTransport {
  readonly members = new Map<Address, TransportMember>();

  constructor(private readonly validators: readonly Address[]) {}

  add(member: TransportMember): void {
    this.members.set(member.address, member);
  }

  private post(to: Address, message: Message<EngineBlock>): void {
    const target = this.members.get(to);
    if (target === undefined || target.down) return;
    setImmediate(() => {
      if (!target.down) target.deliver(message);
    });
  }

  private isDown(address: Address): boolean {
    return this.members.get(address)?.down ?? false;
  }

  broadcast(from: Address, message: Message<EngineBlock>): void {
    if (this.isDown(from)) return;
    for (const v of this.validators) if (v !== from) this.post(v, message);
  }

  sendDecided(from: Address, message: Decided<EngineBlock>): void {
    if (this.isDown(from)) return;
    for (const address of this.members.keys()) if (address !== from) this.post(address, message);
  }

  sendTo(to: Address, message: Message<EngineBlock>): void {
    this.post(to, message);
  }

  /** To every proposer (as its ledger's spec lists them) except `from`. */
  sendTransactions(from: Address, txs: readonly SignedTx[]): void {
    if (this.isDown(from)) return;
    for (const m of this.members.values()) {
      if (m.address === from || m.down || m.receiveTransactions === undefined || !m.ledger.spec.proposers.includes(m.address)) continue;
      setImmediate(() => {
        if (!m.down) m.receiveTransactions?.(txs);
      });
    }
  }

  async fetchDecided(from: bigint, to: bigint): Promise<Decided<EngineBlock>[]> {
    let best: TransportMember | undefined;
    for (const m of this.members.values()) if (!m.down && (best === undefined || m.ledger.head.header.number > best.ledger.head.header.number)) best = m;
    const out: Decided<EngineBlock>[] = [];
    if (best === undefined) return out;
    for (let h = from; h <= to; h++) {
      const block = await best.ledger.blockByNumber(h);
      const certificate = block === undefined ? undefined : await best.ledger.certificate(block.hash);
      if (block === undefined || certificate === undefined) break;
      out.push({ type: 'decided', height: h, block: engineBlock(block), certificate });
    }
    return out;
  }
}
