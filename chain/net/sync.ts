// The sync protocol (see docs/architecture.md, "Peers"): a request RLP [from, to], answered with one decided
// block and its certificate per frame. The asking side checks every block before the driver sees it.
import type { Stream } from '@libp2p/interface';
import type { Block } from '../block.ts';
import type { CommitCertificate, ValidatorKey } from '../certificate.ts';
import { verifyCertificate } from '../certificate.ts';
import { engineBlock } from '../lbft/codec.ts';
import type { EngineBlock } from '../lbft/codec.ts';
import type { Decided } from '../lbft/types.ts';
import type { Hash } from '../types.ts';
import { NetError } from './errors.ts';
import { frame, FrameDecoder } from './frames.ts';
import { decodeMessage, decodeSyncRequest, encodeMessage, encodeSyncRequest } from './wire.ts';

/** Where sync requests are answered from: the ledger. */
export interface SyncSource {
  readonly head: { readonly header: { readonly number: bigint } };
  blockByNumber(number: bigint): Promise<Block | undefined>;
  certificate(blockHash: Hash): Promise<CommitCertificate | undefined>;
}

/** The frames of `stream` as they complete. */
export async function* readFrames(stream: Stream, maxFrameBytes: number): AsyncGenerator<Uint8Array, void, undefined> {
  const decoder = new FrameDecoder(maxFrameBytes);
  for await (const chunk of stream) for (const f of decoder.push(chunk)) yield f;
}

/**
 * Answer one sync request on `stream`: at most `maxBatch` decided blocks from the request's `from`, as far as
 * `source` has them. Throws NET_FRAME_MALFORMED for a malformed request.
 */
export async function answerSync(stream: Stream, source: SyncSource, maxBatch: number): Promise<void> {
  const request = (await readFrames(stream, 64).next()).value;
  if (!(request instanceof Uint8Array)) throw new NetError('NET_FRAME_MALFORMED', 'a sync stream closed without a request');
  const range = decodeSyncRequest(request);
  const head = source.head.header.number;
  let last = range.from + BigInt(maxBatch) - 1n;
  if (range.to < last) last = range.to;
  if (head < last) last = head;
  // All reads of the batch at once (the store serves them in parallel), sent in order as they complete.
  const reads: Promise<{ block: Block; certificate: CommitCertificate } | undefined>[] = [];
  for (let h = range.from; h <= last; h++) reads.push(readDecided(source, h));
  for (const r of reads) r.catch(() => {});
  for (let h = range.from, i = 0; h <= last; h++, i++) {
    const decided = await reads[i]!;
    if (decided === undefined) break;
    if (!stream.send(frame(encodeMessage({ type: 'decided', height: h, block: engineBlock(decided.block), certificate: decided.certificate })))) await stream.onDrain();
  }
  await stream.close();
}

async function readDecided(source: SyncSource, height: bigint): Promise<{ block: Block; certificate: CommitCertificate } | undefined> {
  const block = await source.blockByNumber(height);
  const certificate = block === undefined ? undefined : await source.certificate(block.hash);
  return block === undefined || certificate === undefined ? undefined : { block, certificate };
}

/**
 * Ask for the decided blocks from..to on `stream` and read them: each the block of the next height, on the one
 * before, with a certificate of a quorum of `committee`. Returns those read before the answer ended; throws
 * a DatagateError (NET_FRAME_MALFORMED, CERT_INVALID) at the first bad one, with `partial` holding those before.
 */
export async function requestSync(stream: Stream, opts: { from: bigint; to: bigint; chainId: bigint; committee: readonly ValidatorKey[]; maxFrameBytes: number }, partial: Decided<EngineBlock>[] = []): Promise<Decided<EngineBlock>[]> {
  stream.send(frame(encodeSyncRequest(opts.from, opts.to)));
  await stream.close();
  for await (const f of readFrames(stream, opts.maxFrameBytes)) {
    const height = opts.from + BigInt(partial.length);
    const m = decodeMessage(f, opts.chainId);
    if (m.type !== 'decided' || m.height !== height || m.block.number !== height) throw new NetError('NET_FRAME_MALFORMED', `sync answer is not the decided block of height ${height}`);
    const prev = partial.at(-1);
    if (prev !== undefined && m.block.parentHash !== prev.block.hash) throw new NetError('NET_FRAME_MALFORMED', `sync answer at height ${height} does not extend the block before it`);
    verifyCertificate(m.certificate, opts.chainId, height, m.block.hash, opts.committee);
    partial.push(m);
    if (height >= opts.to) break;
  }
  return partial;
}
