// The committee's peer transport over js-libp2p (TCP, Noise, Yamux): the LbftTransport port between nodes
// in different processes (see docs/architecture.md, "Peers"). libp2p is loaded only when a transport is
// created, so the rest of the chain does not pay for it.
import './polyfill.ts';
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Block } from '../block.ts';
import type { CommitCertificate, ValidatorKey } from '../certificate.ts';
import { verifyCertificate } from '../certificate.ts';
import { DatagateError } from '../errors.ts';
import { engineBlock } from '../lbft/codec.ts';
import type { EngineBlock } from '../lbft/codec.ts';
import type { LbftTransport } from '../lbft/driver.ts';
import type { Decided, Message, SignedMessage } from '../lbft/types.ts';
import type { Logger } from '../logger.ts';
import { nopLogger } from '../logger.ts';
import type { Signer } from '../signing.ts';
import type { Address, Hash, SignedTx } from '../types.ts';
import { NetError } from './errors.ts';
import { frame, FrameDecoder } from './frames.ts';
import { checkProof, makeProof, newNonce, NONCE_BYTES } from './handshake.ts';
import type { FrameKind, NetLimits, PeerInfo } from './peers.ts';
import { defaultLimits, Peer, roleOf } from './peers.ts';
import { decodeMessage, decodeSyncRequest, decodeTxs, encodeMessage, encodeSyncRequest, encodeTxs } from './wire.ts';

export const PROTOCOLS = {
  auth: '/datagate/auth/1',
  lbft: '/datagate/lbft/1',
  txs: '/datagate/txs/1',
  sync: '/datagate/sync/1',
} as const;

/** Score points per offence; a peer reaching limits.disconnectScore is disconnected and refused for a while. */
const PENALTY = { rate: 1, invalidTx: 10, notCommittee: 10, wrongSender: 50, malformed: 50 } as const;

/** Where sync requests are answered from: the ledger. */
export interface SyncSource {
  readonly head: { readonly header: { readonly number: bigint } };
  blockByNumber(number: bigint): Promise<Block | undefined>;
  certificate(blockHash: Hash): Promise<CommitCertificate | undefined>;
}

export interface Libp2pTransportOptions {
  /** The node's libp2p identity (e.g. generateKeyPair('Ed25519') of @libp2p/crypto); not its chain key. */
  readonly privateKey: PrivateKey;
  /** Multiaddrs to listen on; default /ip4/127.0.0.1/tcp/0. */
  readonly listen?: readonly string[];
  /** Peers to stay connected to, each with its /p2p/ id. */
  readonly bootstrap?: readonly string[];
  readonly chainId: bigint;
  readonly genesisHash: Hash;
  /** The committee with its keys: a member's handshake proof is checked against the key recorded here. */
  readonly committee: readonly ValidatorKey[];
  readonly proposers: readonly Address[];
  /** This node's chain key (a validator's or proposer's), or null for a follower. */
  readonly signer: Signer | null;
  /** Consensus messages from authenticated peers, checked for shape and sender. */
  deliver(message: Message<EngineBlock>): void;
  /** Transactions from peers, each decoded and its signature recovered. */
  deliverTransactions?(txs: SignedTx[]): void;
  readonly source: SyncSource;
  readonly logger?: Logger;
  readonly limits?: Partial<NetLimits>;
}

interface Bootstrap {
  readonly addr: Multiaddr;
  readonly peerId: string;
  attempt: number;
  timer: NodeJS.Timeout | null;
}

/** Start a libp2p node and the transport on it. */
export async function createLibp2pTransport(opts: Libp2pTransportOptions): Promise<Libp2pTransport> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }, { multiaddr }] = await Promise.all([import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux'), import('@multiformats/multiaddr')]);
  const bootstrap = (opts.bootstrap ?? []).map((a) => {
    const addr = multiaddr(a);
    const peerId = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (peerId === undefined) throw new NetError('NET_CONFIG_INVALID', `bootstrap address ${a} has no /p2p/ peer id; append /p2p/<peer id> of that node`);
    return { addr, peerId, attempt: 0, timer: null };
  });
  const transport = new Libp2pTransport(opts, bootstrap);
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    start: false,
    addresses: { listen: [...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0'])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // Committee nodes on one LAN or host talk over private addresses: allow them; refuse banned peers.
      denyDialMultiaddr: () => false,
      denyInboundEncryptedConnection: (peerId: PeerId) => transport.isBanned(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId: PeerId) => transport.isBanned(peerId.toString()),
    },
  });
  await transport.attach(node);
  return transport;
}

export class Libp2pTransport implements LbftTransport {
  private node!: Libp2p;
  private readonly limits: NetLimits;
  private readonly log: Logger;
  private readonly validators: ReadonlySet<Address>;
  private readonly proposerSet: ReadonlySet<Address>;
  private readonly peersById = new Map<string, Peer>();
  private readonly byAddress = new Map<Address, string>();
  /** Handshakes under way, so a stream the peer opened right after its side finished waits for ours. */
  private readonly pendingAuth = new Map<string, Promise<Peer | null>>();
  private readonly banned = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly opts: Libp2pTransportOptions,
    private readonly bootstrap: Bootstrap[],
  ) {
    this.limits = { ...defaultLimits, ...opts.limits };
    this.log = opts.logger ?? nopLogger;
    this.validators = new Set(opts.committee.map((m) => m.address));
    this.proposerSet = new Set(opts.proposers);
  }

  /** The libp2p node underneath, for diagnostics (connections, metrics) and tests. */
  get libp2p(): Libp2p {
    return this.node;
  }

  /** This node's libp2p peer id. */
  get peerId(): string {
    return this.node.peerId.toString();
  }

  /** Addresses others can dial, each ending in /p2p/<peer id>. */
  multiaddrs(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  /** Who is connected (and who was: up false), with the address each proved. */
  peers(): PeerInfo[] {
    return [...this.peersById.values()].map((p) => p.info());
  }

  isBanned(peerId: string): boolean {
    const until = this.banned.get(peerId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.banned.delete(peerId);
    return false;
  }

  async attach(node: Libp2p): Promise<void> {
    this.node = node;
    const streamOpts = { maxInboundStreams: 8, maxOutboundStreams: 8 };
    await node.handle(PROTOCOLS.auth, (stream, conn) => void this.handshake(stream, conn), streamOpts);
    await node.handle(PROTOCOLS.lbft, (stream, conn) => void this.receive(stream, conn, (peer, f) => this.onConsensusFrame(peer, f)), streamOpts);
    await node.handle(PROTOCOLS.txs, (stream, conn) => void this.receive(stream, conn, (peer, f) => this.onTxFrame(peer, f)), streamOpts);
    await node.handle(PROTOCOLS.sync, (stream, conn) => void this.answerSync(stream, conn), streamOpts);
    node.addEventListener('connection:open', (evt) => this.onConnection(evt.detail));
    node.addEventListener('peer:disconnect', (evt) => this.onDisconnect(evt.detail.toString()));
    await node.start();
    for (const b of this.bootstrap) this.dial(b);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const b of this.bootstrap) if (b.timer !== null) clearTimeout(b.timer);
    for (const p of this.peersById.values()) p.close();
    await this.node.stop();
  }

  broadcast(from: Address, message: SignedMessage<EngineBlock>): void {
    const bytes = encodeMessage(message);
    for (const p of this.peersById.values()) if (p.authenticated && p.address !== from && this.validators.has(p.address!)) p.send(PROTOCOLS.lbft, 'consensus', bytes, this.log);
  }

  sendDecided(from: Address, message: Decided<EngineBlock>): void {
    const bytes = encodeMessage(message);
    for (const p of this.peersById.values()) if (p.authenticated && p.address !== from) p.send(PROTOCOLS.lbft, 'decided', bytes, this.log);
  }

  sendTo(to: Address, message: Message<EngineBlock>): void {
    const id = this.byAddress.get(to);
    const peer = id === undefined ? undefined : this.peersById.get(id);
    if (peer?.authenticated) peer.send(PROTOCOLS.lbft, message.type === 'decided' ? 'decided' : 'consensus', encodeMessage(message), this.log);
  }

  /** To the connected proposers; without one, to the connected validators, which pass them on to theirs. */
  sendTransactions(from: Address, txs: readonly SignedTx[]): void {
    const up = [...this.peersById.values()].filter((p) => p.authenticated && p.up && p.address !== from);
    let targets = up.filter((p) => this.proposerSet.has(p.address!));
    if (targets.length === 0) targets = up.filter((p) => this.validators.has(p.address!));
    this.sendTxsTo(targets, txs, 'txs');
  }

  async fetchDecided(from: bigint, to: bigint): Promise<Decided<EngineBlock>[]> {
    const last = to - from + 1n > BigInt(this.limits.maxSyncBatch) ? from + BigInt(this.limits.maxSyncBatch) - 1n : to;
    // Committee members first (they have every block), in random order so one slow peer does not hold everyone.
    const candidates = [...this.peersById.values()]
      .filter((p) => p.authenticated && p.up)
      .map((p) => ({ p, k: (this.validators.has(p.address!) ? 0 : 1) + Math.random() }))
      .sort((a, b) => a.k - b.k)
      .map((c) => c.p);
    for (const peer of candidates.slice(0, 3)) {
      try {
        const got = await this.requestDecided(peer, from, last);
        if (got.length > 0) return got;
      } catch (err) {
        this.log.debug('sync request failed', { peer: peer.peerId, from, to: last, error: err });
      }
    }
    return [];
  }

  private sendTxsTo(targets: readonly Peer[], txs: readonly SignedTx[], kind: FrameKind): void {
    for (let i = 0; i < txs.length; i += this.limits.maxTxsPerFrame) {
      const bytes = encodeTxs(txs.slice(i, i + this.limits.maxTxsPerFrame));
      for (const p of targets) p.send(PROTOCOLS.txs, kind, bytes, this.log);
    }
  }

  private onConnection(conn: Connection): void {
    const id = conn.remotePeer.toString();
    if (this.isBanned(id)) {
      void conn.close().catch(() => {});
      return;
    }
    if (conn.direction === 'outbound') {
      conn.newStream(PROTOCOLS.auth).then(
        (stream) => this.handshake(stream, conn),
        (err: unknown) => this.refuse(conn, 'the peer does not speak the authentication protocol', err),
      );
    }
    // A connection that has not authenticated in time is dropped: it holds resources for nothing.
    setTimeout(() => {
      if (conn.status === 'open' && this.peersById.get(id)?.connection !== conn) this.refuse(conn, 'authentication timed out', new NetError('NET_AUTH_TIMEOUT', `no authentication within ${this.limits.authTimeoutMs} ms`));
    }, this.limits.authTimeoutMs).unref();
  }

  private refuse(conn: Connection, reason: string, err: unknown): void {
    const id = conn.remotePeer.toString();
    this.log.warn('refusing peer', { peer: id, reason, error: err });
    this.banned.set(id, Date.now() + this.limits.banMs);
    conn.abort(new Error(reason));
  }

  /** Both ends run the same steps: send a nonce, answer the other's with a proof, check the other's proof. */
  private handshake(stream: Stream, conn: Connection): Promise<Peer | null> {
    const id = conn.remotePeer.toString();
    const timer = setTimeout(() => stream.abort(new NetError('NET_AUTH_TIMEOUT', 'the peer did not finish the handshake in time')), this.limits.authTimeoutMs);
    const run = async (): Promise<Peer | null> => {
      try {
        const frames = this.frames(stream, 1024);
        const localNonce = newNonce();
        stream.send(frame(localNonce));
        const remoteNonce = (await frames.next()).value;
        if (!(remoteNonce instanceof Uint8Array) || remoteNonce.length !== NONCE_BYTES) throw new NetError('NET_AUTH_FAILED', `the peer's challenge must be ${NONCE_BYTES} bytes`);
        const session = { chainId: this.opts.chainId, genesisHash: this.opts.genesisHash, localPeerId: this.peerId, remotePeerId: id, localNonce, remoteNonce };
        stream.send(frame(await makeProof(this.opts.signer, session)));
        const proof = (await frames.next()).value;
        if (!(proof instanceof Uint8Array)) throw new NetError('NET_AUTH_FAILED', 'the peer closed the handshake without a proof');
        const address = checkProof(proof, session, this.opts.committee);
        await frames.return(undefined);
        await stream.close().catch(() => {});
        return this.admit(conn, address);
      } catch (err) {
        this.refuse(conn, 'authentication failed', err);
        return null;
      } finally {
        clearTimeout(timer);
        if (this.pendingAuth.get(id) === result) this.pendingAuth.delete(id);
      }
    };
    const result = run();
    this.pendingAuth.set(id, result);
    return result;
  }

  private admit(conn: Connection, address: Address | null): Peer {
    const id = conn.remotePeer.toString();
    const old = this.peersById.get(id);
    if (old !== undefined && old.up && old.connection.status === 'open' && old.address === address) {
      old.connection = conn;
      return old;
    }
    old?.close();
    const peer = new Peer(id, conn, this.limits);
    peer.address = address;
    peer.role = roleOf(address, this.validators, this.proposerSet);
    peer.authenticated = true;
    this.peersById.set(id, peer);
    if (address !== null) this.byAddress.set(address, id);
    this.log.info('peer authenticated', { peer: id, address, role: peer.role });
    return peer;
  }

  private onDisconnect(id: string): void {
    const peer = this.peersById.get(id);
    if (peer !== undefined) {
      peer.close();
      this.log.info('peer disconnected', { peer: id, address: peer.address });
    }
    const b = this.bootstrap.find((x) => x.peerId === id);
    if (b !== undefined) this.schedule(b);
  }

  private dial(b: Bootstrap): void {
    if (this.stopped) return;
    if (this.node.getConnections().some((c) => c.remotePeer.toString() === b.peerId)) {
      b.attempt = 0;
      return;
    }
    if (this.isBanned(b.peerId)) return this.schedule(b, this.banned.get(b.peerId)! - Date.now());
    this.node.dial(b.addr).then(
      () => {
        b.attempt = 0;
      },
      (err: unknown) => {
        this.log.debug('bootstrap peer unreachable', { peer: b.peerId, attempt: b.attempt, error: err });
        b.attempt++;
        this.schedule(b);
      },
    );
  }

  /** Redial after an exponential backoff with jitter (50-100 % of the delay), so restarted nodes do not dial in step. */
  private schedule(b: Bootstrap, atLeastMs = 0): void {
    if (this.stopped || b.timer !== null) return;
    const base = Math.min(this.limits.reconnectMaxMs, this.limits.reconnectBaseMs * 2 ** Math.min(b.attempt, 20));
    const delay = Math.max(atLeastMs, base * (0.5 + Math.random() / 2));
    b.timer = setTimeout(() => {
      b.timer = null;
      this.dial(b);
    }, delay);
    b.timer.unref();
  }

  /** The authenticated peer behind `conn`, waiting for a handshake under way; null when there is none. */
  private async peerFor(conn: Connection): Promise<Peer | null> {
    const id = conn.remotePeer.toString();
    const known = this.peersById.get(id);
    if (known?.authenticated && known.up) return known;
    return (await this.pendingAuth.get(id)) ?? null;
  }

  private async *frames(stream: Stream, maxFrameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
    const decoder = new FrameDecoder(maxFrameBytes);
    for await (const chunk of stream) for (const f of decoder.push(chunk)) yield f;
  }

  /** An inbound stream of frames (consensus or transactions), each counted against the peer's rate. */
  private async receive(stream: Stream, conn: Connection, onFrame: (peer: Peer, bytes: Uint8Array) => void): Promise<void> {
    const peer = await this.peerFor(conn);
    if (peer === null) return stream.abort(new NetError('NET_AUTH_FAILED', 'authenticate before opening other streams'));
    const decoder = new FrameDecoder(this.limits.maxFrameBytes);
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(evt.data);
      } catch (err) {
        this.penalize(peer, this.limits.disconnectScore, 'oversized frame', err);
        return;
      }
      for (const f of frames) {
        if (!peer.up) return;
        if (!peer.bucket.take()) {
          this.penalize(peer, PENALTY.rate, 'over its rate limit');
          continue;
        }
        onFrame(peer, f);
      }
    });
  }

  private penalize(peer: Peer, points: number, reason: string, err?: unknown): void {
    this.log.debug('peer misbehaved', { peer: peer.peerId, address: peer.address, reason, error: err });
    if (!peer.penalize(points) || !peer.up) return;
    this.log.warn('disconnecting misbehaving peer', { peer: peer.peerId, address: peer.address, reason, banMs: this.limits.banMs });
    this.banned.set(peer.peerId, Date.now() + this.limits.banMs);
    peer.close();
    void this.node.hangUp(peer.connection.remotePeer).catch(() => {});
  }

  private onConsensusFrame(peer: Peer, bytes: Uint8Array): void {
    let message: Message<EngineBlock>;
    try {
      message = decodeMessage(bytes, this.opts.chainId);
    } catch (err) {
      return this.penalize(peer, PENALTY.malformed, 'undecodable consensus frame', err);
    }
    // Votes and proposals come only from the committee and proposers, each signed by the peer that sends
    // it (nodes send their own messages, never relay others'); decided blocks carry a certificate the
    // driver verifies against the committee, whoever hands them on.
    if (message.type !== 'decided') {
      if (peer.role === 'follower') return this.penalize(peer, PENALTY.notCommittee, 'consensus message from a peer outside the committee');
      if (message.sender !== peer.address) return this.penalize(peer, PENALTY.wrongSender, `consensus message signed by ${message.sender}, sent by ${peer.address}`);
    }
    peer.lastSeen = Date.now();
    this.opts.deliver(message);
  }

  private onTxFrame(peer: Peer, bytes: Uint8Array): void {
    let txs: SignedTx[];
    try {
      txs = decodeTxs(bytes, this.opts.chainId, this.limits.maxTxsPerFrame);
    } catch (err) {
      return this.penalize(peer, err instanceof NetError ? PENALTY.malformed : PENALTY.invalidTx, 'invalid transactions frame', err);
    }
    peer.lastSeen = Date.now();
    this.opts.deliverTransactions?.(txs);
    // A follower may reach only validators: a validator passes its transactions on to the proposers, once.
    const self = this.opts.signer?.address;
    if (peer.role === 'follower' && (self === undefined || !this.proposerSet.has(self))) {
      this.sendTxsTo([...this.peersById.values()].filter((p) => p.authenticated && p.up && this.proposerSet.has(p.address!)), txs, 'txs');
    }
  }

  private async answerSync(stream: Stream, conn: Connection): Promise<void> {
    const peer = await this.peerFor(conn);
    if (peer === null) return stream.abort(new NetError('NET_AUTH_FAILED', 'authenticate before asking for blocks'));
    const timer = setTimeout(() => stream.abort(new Error('sync request timed out')), this.limits.syncTimeoutMs);
    try {
      const frames = this.frames(stream, 64);
      const request = (await frames.next()).value;
      if (!(request instanceof Uint8Array) || !peer.bucket.take()) return stream.abort(new Error('no request, or over the rate limit'));
      let range;
      try {
        range = decodeSyncRequest(request);
      } catch (err) {
        this.penalize(peer, PENALTY.malformed, 'malformed sync request', err);
        return stream.abort(err as Error);
      }
      const head = this.opts.source.head.header.number;
      let last = range.from + BigInt(this.limits.maxSyncBatch) - 1n;
      if (range.to < last) last = range.to;
      if (head < last) last = head;
      for (let h = range.from; h <= last; h++) {
        const block = await this.opts.source.blockByNumber(h);
        const certificate = block === undefined ? undefined : await this.opts.source.certificate(block.hash);
        if (block === undefined || certificate === undefined) break;
        if (!stream.send(frame(encodeMessage({ type: 'decided', height: h, block: engineBlock(block), certificate })))) await stream.onDrain();
      }
      await stream.close();
    } catch (err) {
      this.log.debug('answering a sync request failed', { peer: peer.peerId, error: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Decided blocks from..to from `peer`: each in order, on its parent, with a certificate of the committee. */
  private async requestDecided(peer: Peer, from: bigint, to: bigint): Promise<Decided<EngineBlock>[]> {
    const stream = await peer.connection.newStream(PROTOCOLS.sync);
    const timer = setTimeout(() => stream.abort(new Error('sync response timed out')), this.limits.syncTimeoutMs);
    const out: Decided<EngineBlock>[] = [];
    try {
      stream.send(frame(encodeSyncRequest(from, to)));
      await stream.close();
      for await (const f of this.frames(stream, this.limits.maxFrameBytes)) {
        const height = from + BigInt(out.length);
        const m = decodeMessage(f, this.opts.chainId);
        if (m.type !== 'decided' || m.height !== height || m.block.number !== height) throw new NetError('NET_FRAME_MALFORMED', `sync answer is not the decided block of height ${height}`);
        const prev = out.at(-1);
        if (prev !== undefined && m.block.parentHash !== prev.block.hash) throw new NetError('NET_FRAME_MALFORMED', `sync answer at height ${height} does not extend the block before it`);
        verifyCertificate(m.certificate, this.opts.chainId, height, m.block.hash, this.opts.committee);
        out.push(m);
        if (height >= to) break;
      }
    } catch (err) {
      // Bad data costs the peer; a timeout or a closed stream is just a failed request.
      if (err instanceof DatagateError) this.penalize(peer, PENALTY.malformed, 'invalid sync answer', err);
      else this.log.debug('sync answer cut short', { peer: peer.peerId, error: err });
    } finally {
      clearTimeout(timer);
      stream.abort(new Error('sync done'));
    }
    peer.lastSeen = Date.now();
    return out;
  }
}
