// The committee's peer transport over js-libp2p (TCP, Noise, Yamux): the LbftTransport port between nodes
// in different processes (see docs/architecture.md, "Peers"). libp2p is loaded only when a transport is
// created, so the rest of the chain does not pay for it.
import './polyfill.ts';
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { ValidatorKey } from '../certificate.ts';
import { DatagateError } from '../errors.ts';
import type { EngineBlock } from '../lbft/codec.ts';
import type { LbftTransport } from '../lbft/driver.ts';
import { signingPayload } from '../lbft/rules.ts';
import type { Decided, LbftVerifier, Message, SignedMessage } from '../lbft/types.ts';
import type { Logger } from '../logger.ts';
import { nopLogger } from '../logger.ts';
import type { Signer } from '../signing.ts';
import type { Address, Hash, SignedTx } from '../types.ts';
import { NetError } from './errors.ts';
import { frame, FrameDecoder } from './frames.ts';
import { checkProof, makeProof, newNonce, NONCE_BYTES } from './handshake.ts';
import type { FrameKind, NetLimits, PeerInfo } from './peers.ts';
import { defaultLimits, Peer, roleOf } from './peers.ts';
import { decodeMessage, decodeTxs, encodeMessage, encodeTxs } from './wire.ts';
import { BootstrapDialer } from './bootstrap.ts';
import type { SyncSource } from './sync.ts';
import { answerSync, readFrames, requestSync } from './sync.ts';

export const PROTOCOLS = {
  auth: '/datagate/auth/1',
  lbft: '/datagate/lbft/1',
  txs: '/datagate/txs/1',
  sync: '/datagate/sync/1',
} as const;

/** Score points per offence; a peer reaching limits.disconnectScore is disconnected and refused for a while. */
const PENALTY = { rate: 1, invalidTx: 10, notCommittee: 10, wrongSender: 50, badSignature: 50, malformed: 50 } as const;

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
  /**
   * Checks consensus signatures before the driver sees them, so that a peer sending bad ones is scored; pass
   * ledgerVerifier(ledger, cache) with the cache the LbftNode gets (verifyCache), and each is checked once.
   */
  readonly verifier?: LbftVerifier;
  readonly logger?: Logger;
  readonly limits?: Partial<NetLimits>;
  /** Most open connections (libp2p's connection manager); default libp2p's. */
  readonly maxConnections?: number;
}

/** Start a libp2p node and the transport on it. */
export async function createLibp2pTransport(opts: Libp2pTransportOptions): Promise<Libp2pTransport> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }, { identify }, { ping }, { multiaddr }] = await Promise.all([
    import('libp2p'),
    import('@libp2p/tcp'),
    import('@chainsafe/libp2p-noise'),
    import('@chainsafe/libp2p-yamux'),
    import('@libp2p/identify'),
    import('@libp2p/ping'),
    import('@multiformats/multiaddr'),
  ]);
  const bootstrap = (opts.bootstrap ?? []).map((a) => {
    const addr = multiaddr(a);
    const peerId = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (peerId === undefined) throw new NetError('NET_CONFIG_INVALID', `bootstrap address ${a} has no /p2p/ peer id; append /p2p/<peer id> of that node`);
    return { addr, peerId };
  });
  const transport = new Libp2pTransport(opts);
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    start: false,
    addresses: { listen: [...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0'])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // identify tells peers our listen addresses and protocols (what a later circuit relay builds on); ping
    // measures round trips for the peer list.
    services: { identify: identify(), ping: ping() },
    ...(opts.maxConnections !== undefined ? { connectionManager: { maxConnections: opts.maxConnections } } : {}),
    connectionGater: {
      // Committee nodes on one LAN or host talk over private addresses: allow them; refuse banned peers.
      denyDialMultiaddr: () => false,
      denyInboundEncryptedConnection: (peerId: PeerId) => transport.isBanned(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId: PeerId) => transport.isBanned(peerId.toString()),
    },
  });
  await transport.attach(node, bootstrap);
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
  private dialer: BootstrapDialer | null = null;
  private outgoingTxs: SignedTx[] = [];
  private txFlush: NodeJS.Immediate | null = null;

  constructor(private readonly opts: Libp2pTransportOptions) {
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

  async attach(node: Libp2p, bootstrap: readonly { addr: Multiaddr; peerId: string }[]): Promise<void> {
    this.node = node;
    const streamOpts = { maxInboundStreams: 8, maxOutboundStreams: 8 };
    await node.handle(PROTOCOLS.auth, (stream, conn) => void this.handshake(stream, conn), streamOpts);
    await node.handle(PROTOCOLS.lbft, (stream, conn) => void this.receive(stream, conn, (peer, f) => this.onConsensusFrame(peer, f)), streamOpts);
    await node.handle(PROTOCOLS.txs, (stream, conn) => void this.receive(stream, conn, (peer, f) => this.onTxFrame(peer, f)), streamOpts);
    await node.handle(PROTOCOLS.sync, (stream, conn) => void this.answerSync(stream, conn), streamOpts);
    node.addEventListener('connection:open', (evt) => this.onConnection(evt.detail));
    node.addEventListener('peer:disconnect', (evt) => this.onDisconnect(evt.detail.toString()));
    await node.start();
    this.dialer = new BootstrapDialer(
      bootstrap,
      {
        connected: (id) => node.getConnections().some((c) => c.remotePeer.toString() === id),
        bannedUntil: (id) => (this.isBanned(id) ? this.banned.get(id)! : 0),
        dial: (addr) => node.dial(addr),
      },
      { baseMs: this.limits.reconnectBaseMs, maxMs: this.limits.reconnectMaxMs },
      this.log,
    );
    this.dialer.start();
  }

  async stop(): Promise<void> {
    if (this.txFlush !== null) clearImmediate(this.txFlush);
    this.txFlush = null;
    this.dialer?.stop();
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
  /**
   * Transactions toward the proposers (validators when none is connected). JSON-RPC hands them over one at a
   * time: they are gathered until the next macrotask and sent in frames of up to maxTxsPerFrame, so a busy
   * follower sends a few frames a second rather than one per transaction (which the per-peer rate limit of
   * the proposers would rightly refuse).
   */
  sendTransactions(from: Address, txs: readonly SignedTx[]): void {
    for (const tx of txs) this.outgoingTxs.push(tx);
    if (this.txFlush !== null) return;
    this.txFlush = setImmediate(() => {
      this.txFlush = null;
      const batch = this.outgoingTxs;
      this.outgoingTxs = [];
      const up = [...this.peersById.values()].filter((p) => p.authenticated && p.up && p.address !== from);
      let targets = up.filter((p) => this.proposerSet.has(p.address!));
      if (targets.length === 0) targets = up.filter((p) => this.validators.has(p.address!));
      this.sendTxsTo(targets, batch, 'txs');
    });
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
        (err: unknown) => this.refuse(conn, 'no authentication stream', err, false),
      );
    }
    // A connection that has not authenticated in time is dropped: it holds resources for nothing.
    setTimeout(() => {
      const peer = this.peersById.get(id);
      if (conn.status !== 'open' || peer?.connection === conn) return;
      if (peer?.authenticated && peer.up) void conn.close().catch(() => {});
      else this.refuse(conn, 'authentication timed out', new NetError('NET_AUTH_TIMEOUT', `no authentication within ${this.limits.authTimeoutMs} ms`), false);
    }, this.limits.authTimeoutMs).unref();
  }

  /** Close `conn`; with `ban`, refuse its peer for limits.banMs (a proof that failed, not a connection that did). */
  private refuse(conn: Connection, reason: string, err: unknown, ban: boolean): void {
    const id = conn.remotePeer.toString();
    this.log.warn('refusing peer', { peer: id, reason, banned: ban, error: err });
    if (ban) this.banned.set(id, Date.now() + this.limits.banMs);
    conn.abort(new Error(reason));
  }

  /** Both ends run the same steps: send a nonce, answer the other's with a proof, check the other's proof. */
  private handshake(stream: Stream, conn: Connection): Promise<Peer | null> {
    const id = conn.remotePeer.toString();
    const timer = setTimeout(() => stream.abort(new NetError('NET_AUTH_TIMEOUT', 'the peer did not finish the handshake in time')), this.limits.authTimeoutMs);
    const run = async (): Promise<Peer | null> => {
      try {
        const frames = readFrames(stream, 1024);
        const localNonce = newNonce();
        stream.send(frame(localNonce));
        const remoteNonce = (await frames.next()).value;
        if (!(remoteNonce instanceof Uint8Array)) throw new NetError('NET_AUTH_INCOMPLETE', 'the peer closed the handshake before its challenge');
        if (remoteNonce.length !== NONCE_BYTES) throw new NetError('NET_AUTH_FAILED', `the peer's challenge must be ${NONCE_BYTES} bytes`);
        const session = { chainId: this.opts.chainId, genesisHash: this.opts.genesisHash, localPeerId: this.peerId, remotePeerId: id, localNonce, remoteNonce };
        stream.send(frame(await makeProof(this.opts.signer, session)));
        const proof = (await frames.next()).value;
        if (!(proof instanceof Uint8Array)) throw new NetError('NET_AUTH_INCOMPLETE', 'the peer closed the handshake before its proof');
        const address = checkProof(proof, session, this.opts.committee);
        await frames.return(undefined);
        await stream.close().catch(() => {});
        return this.admit(conn, address);
      } catch (err) {
        this.refuse(conn, 'authentication failed', err, err instanceof NetError && err.code === 'NET_AUTH_FAILED');
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
    // A second connection of a peer already authenticated (both dialled at once) is left unused; it is
    // closed when its authentication deadline passes.
    if (old !== undefined && old.up && old.connection.status === 'open' && old.address === address) return old;
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
      // Committee members and proposers stay listed (up: false); followers, whose ids cost nothing to make, go.
      if (peer.role === 'follower') {
        this.peersById.delete(id);
        if (peer.address !== null && this.byAddress.get(peer.address) === id) this.byAddress.delete(peer.address);
      }
    }
    if (this.banned.size > 1024) for (const [bid, until] of this.banned) if (until <= Date.now()) this.banned.delete(bid);
    this.dialer?.disconnected(id);
  }

  /** The authenticated peer behind `conn`, waiting for a handshake under way; null when there is none. */
  private async peerFor(conn: Connection): Promise<Peer | null> {
    const id = conn.remotePeer.toString();
    const known = this.peersById.get(id);
    if (known?.authenticated && known.up) return known;
    return (await this.pendingAuth.get(id)) ?? null;
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
      if (this.opts.verifier !== undefined && !this.opts.verifier.verify(signingPayload(message), message.sender, message.signature)) return this.penalize(peer, PENALTY.badSignature, 'consensus message with a signature that does not verify');
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
    if (!peer.bucket.take()) return stream.abort(new Error('over the rate limit'));
    const timer = setTimeout(() => stream.abort(new Error('sync request timed out')), this.limits.syncTimeoutMs);
    try {
      await answerSync(stream, this.opts.source, this.limits.maxSyncBatch);
    } catch (err) {
      if (err instanceof NetError) this.penalize(peer, PENALTY.malformed, 'malformed sync request', err);
      else this.log.debug('answering a sync request failed', { peer: peer.peerId, error: err });
      stream.abort(err as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Decided blocks from..to from `peer`, each checked; those before a bad one, which costs the peer. */
  private async requestDecided(peer: Peer, from: bigint, to: bigint): Promise<Decided<EngineBlock>[]> {
    const stream = await peer.connection.newStream(PROTOCOLS.sync);
    const timer = setTimeout(() => stream.abort(new Error('sync response timed out')), this.limits.syncTimeoutMs);
    const out: Decided<EngineBlock>[] = [];
    try {
      await requestSync(stream, { from, to, chainId: this.opts.chainId, committee: this.opts.committee, maxFrameBytes: this.limits.maxFrameBytes }, out);
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
