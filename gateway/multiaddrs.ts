// Multiaddrs of committee peers as records and genesis files carry them: parsed with @multiformats/multiaddr,
// written in its canonical form, ending in /p2p/<peer id> so a dialler knows whom it reaches (the Noise
// handshake checks it). See docs/architecture.md "Provisioning a committee".
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';

/** The canonical text of `text`, or a reason it is not a multiaddr. */
export function parseMultiaddr(text: string): { ok: true; value: string; components: { name: string; value?: string }[] } | { ok: false; reason: string } {
  try {
    const ma = multiaddr(text);
    return { ok: true, value: ma.toString(), components: ma.getComponents() };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** The peer id text if `text` parses as one, else the reason. */
export function parsePeerId(text: string): { ok: true; value: string } | { ok: false; reason: string } {
  try {
    return { ok: true, value: peerIdFromString(text).toString() };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * Why `text` is not a dialable peer address ending in /p2p/<peer id> (of `peerId` when given), or undefined.
 * Unspecified hosts (0.0.0.0, ::) are refused: nobody can dial them.
 */
export function peerAddressProblem(text: string, peerId?: string): string | undefined {
  const parsed = parseMultiaddr(text);
  if (!parsed.ok) return `not a multiaddr (${parsed.reason})`;
  if (parsed.value !== text) return `not in canonical form (write ${parsed.value})`;
  const last = parsed.components[parsed.components.length - 1];
  if (last?.name !== 'p2p' || last.value === undefined) return 'must end in /p2p/<peer id>';
  const id = parsePeerId(last.value);
  if (!id.ok) return `its /p2p/ part is not a peer id (${id.reason})`;
  if (peerId !== undefined && id.value !== peerId) return `its /p2p/ part ${id.value} is not the record's peer id ${peerId}`;
  const host = parsed.components[0];
  if (host !== undefined && (host.value === '0.0.0.0' || host.value === '::')) return `host ${host.value} cannot be dialled; give the address peers reach this node at`;
  if (!parsed.components.some((c) => c.name === 'tcp')) return 'needs a /tcp/<port> part (the committee transport is TCP)';
  return undefined;
}

/** `listen` with /p2p/<peerId> appended (kept when already there); throws a reason string's Error if malformed. */
export function withPeerId(listen: string, peerId: string): string {
  const parsed = parseMultiaddr(listen);
  if (!parsed.ok) throw new Error(`${listen} is not a multiaddr (${parsed.reason})`);
  const last = parsed.components[parsed.components.length - 1];
  return last?.name === 'p2p' ? parsed.value : `${parsed.value}/p2p/${peerId}`;
}
