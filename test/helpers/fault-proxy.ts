// A fault-injecting TCP proxy for end-to-end tests of a committee of separate node processes: this kernel has
// no netem and there is no iptables, so delay, stalls, partitions and resets are made here, between a client
// and its target. Each accepted connection gets its own connection to the target and two directions:
// 'up' (client -> target) and 'down' (target -> client). Every chunk goes through a per-direction queue, so
// delay, hold and release never reorder bytes.
//
// Bounds: a direction whose queue holds more than maxBufferBytes pauses its source socket (TCP back-pressure,
// nothing dropped) and resumes it under half; a destination whose write() reports a full buffer is not written
// again before 'drain'. The proxy listens on loopback only.
import type { Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';

export type Direction = 'up' | 'down';
export type HoldDirection = Direction | 'both';

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  /** Loopback only: 127.0.0.1 (the default) or ::1. */
  readonly listenHost?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Bytes queued per direction of one connection before its source is paused (default 4 MiB). */
  readonly maxBufferBytes?: number;
}

export interface FaultProxyStats {
  /** Connections accepted since start. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Bytes forwarded client -> target and target -> client. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Bytes queued now (delayed or held), per direction, over all connections. */
  readonly bufferedUp: number;
  readonly bufferedDown: number;
  /** Connections reset by resetRandomly. */
  readonly resets: number;
  /** Connections dropped by partition(). */
  readonly partitioned: number;
  /** Times a source was paused because its direction's queue was full. */
  readonly pauses: number;
}

export interface FaultProxy {
  readonly port: number;
  readonly host: string;
  /** Each chunk arriving from now on waits ms + a uniform random 0..jitterMs before it is forwarded. */
  setDelay(ms: number, jitterMs?: number): void;
  /** Queue bytes of that direction (all connections, present and future) without forwarding them. */
  hold(direction: HoldDirection): void;
  /** Forward what was held, in order, and stop holding. */
  release(direction: HoldDirection): void;
  /** Drop every connection and refuse new ones (the listener closes: connecting gets ECONNREFUSED). */
  partition(): Promise<void>;
  /** Listen again on the same port. */
  heal(): Promise<void>;
  /** Reset (RST) the whole connection with this probability per chunk received; 0 turns it off. */
  resetRandomly(probability: number): void;
  stats(): FaultProxyStats;
  /** Close the listener, every connection and every timer. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1']);
const DEFAULT_MAX_BUFFER = 4 * 1024 * 1024;

interface Chunk {
  readonly data: Buffer;
  readonly due: number;
}

/** One direction of one proxied connection. */
class Pipe {
  readonly queue: Chunk[] = [];
  bytes = 0;
  private lastDue = 0;
  private ended = false;
  private blocked = false;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;

  constructor(
    readonly direction: Direction,
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly proxy: ProxyState,
  ) {
    to.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
  }

  push(data: Buffer): void {
    const { delayMs, jitterMs } = this.proxy;
    // Never earlier than the chunk before it: jitter must not reorder the stream.
    const due = Math.max(Date.now() + delayMs + Math.random() * jitterMs, this.lastDue);
    this.lastDue = due;
    this.queue.push({ data, due });
    this.bytes += data.length;
    if (this.bytes > this.proxy.maxBufferBytes && !this.paused) {
      this.paused = true;
      this.proxy.pauses++;
      this.from.pause();
    }
    this.pump();
  }

  end(): void {
    this.ended = true;
    this.pump();
  }

  pump(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.proxy.closed || this.to.destroyed) return;
    while (this.queue.length > 0 && !this.blocked && !this.proxy.held[this.direction]) {
      const head = this.queue[0]!;
      const wait = head.due - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), wait);
        return;
      }
      this.queue.shift();
      this.bytes -= head.data.length;
      if (this.direction === 'up') this.proxy.bytesUp += head.data.length;
      else this.proxy.bytesDown += head.data.length;
      if (!this.to.write(head.data)) this.blocked = true;
    }
    if (this.paused && this.bytes <= this.proxy.maxBufferBytes / 2) {
      this.paused = false;
      this.from.resume();
    }
    if (this.ended && this.queue.length === 0 && !this.proxy.held[this.direction]) this.to.end();
  }

  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.bytes = 0;
  }
}

interface ProxyState {
  delayMs: number;
  jitterMs: number;
  resetProbability: number;
  readonly held: Record<Direction, boolean>;
  readonly maxBufferBytes: number;
  closed: boolean;
  bytesUp: number;
  bytesDown: number;
  pauses: number;
}

interface Connection {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly pipes: readonly [Pipe, Pipe];
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

const directionsOf = (d: HoldDirection): Direction[] => (d === 'both' ? ['up', 'down'] : [d]);

/** Start a proxy to `opts.target`; it is listening once this resolves. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const host = opts.listenHost ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new RangeError(`the fault proxy listens on loopback only (127.0.0.1 or ::1), not ${host}`);
  const state: ProxyState = {
    delayMs: 0,
    jitterMs: 0,
    resetProbability: 0,
    held: { up: false, down: false },
    maxBufferBytes: opts.maxBufferBytes ?? DEFAULT_MAX_BUFFER,
    closed: false,
    bytesUp: 0,
    bytesDown: 0,
    pauses: 0,
  };
  const counts = { accepted: 0, resets: 0, partitioned: 0 };
  const connections = new Set<Connection>();

  const drop = (c: Connection, reset: boolean): void => {
    if (!connections.delete(c)) return;
    for (const p of c.pipes) p.dispose();
    for (const s of [c.client, c.upstream]) {
      if (reset && !s.destroyed) s.resetAndDestroy();
      else s.destroy();
    }
  };

  const onConnection = (client: Socket): void => {
    counts.accepted++;
    const upstream = connect({ host: opts.target.host, port: opts.target.port, allowHalfOpen: true });
    const up = new Pipe('up', client, upstream, state);
    const down = new Pipe('down', upstream, client, state);
    const c: Connection = { client, upstream, pipes: [up, down] };
    connections.add(c);
    const wire = (from: Socket, pipe: Pipe, other: Socket): void => {
      from.on('data', (data: Buffer) => {
        if (state.resetProbability > 0 && Math.random() < state.resetProbability) {
          counts.resets++;
          drop(c, true);
          return;
        }
        pipe.push(data);
      });
      from.on('end', () => pipe.end());
      // An error on either side (refused target, reset peer) ends the whole proxied connection.
      from.on('error', () => drop(c, false));
      from.on('close', () => {
        // Both sides closed: done. One side gone before its stream ended (destroyed, reset): end the other too.
        // One side closed after a clean end of both halves: the other finishes on its own.
        if (other.destroyed || !from.readableEnded) drop(c, false);
      });
    };
    wire(client, up, upstream);
    wire(upstream, down, client);
  };

  let server = createServer({ allowHalfOpen: true }, onConnection);
  const port = await listen(server, opts.port ?? 0, host);
  let partitioned = false;

  return {
    port,
    host,
    setDelay(ms, jitterMs = 0) {
      if (!(ms >= 0) || !(jitterMs >= 0)) throw new RangeError('delay and jitter are milliseconds >= 0');
      state.delayMs = ms;
      state.jitterMs = jitterMs;
    },
    hold(direction) {
      for (const d of directionsOf(direction)) state.held[d] = true;
    },
    release(direction) {
      for (const d of directionsOf(direction)) state.held[d] = false;
      for (const c of connections) for (const p of c.pipes) p.pump();
    },
    async partition() {
      if (partitioned || state.closed) return;
      partitioned = true;
      const closing = closeServer(server);
      for (const c of [...connections]) {
        counts.partitioned++;
        drop(c, true);
      }
      await closing;
    },
    async heal() {
      if (!partitioned || state.closed) return;
      server = createServer({ allowHalfOpen: true }, onConnection);
      await listen(server, port, host);
      partitioned = false;
    },
    resetRandomly(probability) {
      if (!(probability >= 0 && probability <= 1)) throw new RangeError('the reset probability is between 0 and 1');
      state.resetProbability = probability;
    },
    stats() {
      let bufferedUp = 0;
      let bufferedDown = 0;
      for (const c of connections) {
        bufferedUp += c.pipes[0].bytes;
        bufferedDown += c.pipes[1].bytes;
      }
      return { ...counts, open: connections.size, bytesUp: state.bytesUp, bytesDown: state.bytesDown, bufferedUp, bufferedDown, pauses: state.pauses };
    },
    async close() {
      if (state.closed) return;
      state.closed = true;
      const closing = closeServer(server);
      for (const c of [...connections]) drop(c, false);
      await closing;
    },
  };
}
