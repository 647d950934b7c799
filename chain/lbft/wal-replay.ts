// Reading the consensus WAL when an LBFT node starts: the events from the newest checkpoint (the start of a
// height at or below the one the node resumes), so start-up reads a bounded part of the log however long the
// node ran, and a warning for every way the log can have lost records (a torn tail cut off, a file found
// empty, a WAL deleted, a log ending before the chain head) that says what was dropped. Losing WAL records
// never lets the node sign a conflict (the double-sign guard refuses), but it can make it forget a vote it
// sent, which the operator should hear about.
import type { Ledger } from '../ledger.ts';
import type { Logger } from '../logger.ts';
import type { EngineBlock } from './codec.ts';
import { decodeEvent } from './codec.ts';
import type { LbftEvent } from './types.ts';
import type { Wal } from './wal.ts';

/** The WAL's events from the newest checkpoint at or before height head + 1 (all of them if it has none). */
export async function readConsensusWal(wal: Wal, ledger: Ledger, log: Logger): Promise<LbftEvent<EngineBlock>[]> {
  const chainId = ledger.spec.chainId;
  const head = ledger.head.header.number;
  const from = (first: Uint8Array) => {
    const event = decodeEvent(first, chainId);
    return event.type === 'start' && event.height <= head + 1n;
  };
  const events: LbftEvent<EngineBlock>[] = [];
  for await (const record of wal.replay({ from })) events.push(decodeEvent(record, chainId));
  warnOfLoss(wal, events, head, log);
  return events;
}

function warnOfLoss(wal: Wal, events: readonly LbftEvent<EngineBlock>[], head: bigint, log: Logger): void {
  const { truncated, created } = wal.replayStats;
  const last = events.findLast((e) => e.type === 'start');
  const lastHeight = last?.type === 'start' ? last.height : null;
  if (truncated !== null) {
    log.warn('consensus WAL truncated: records at its end were lost (a crash mid-write, or the file was cut)', {
      file: truncated.file,
      offset: truncated.offset,
      droppedBytes: truncated.droppedBytes,
      droppedRecords: truncated.droppedRecords,
      droppedHeights: lastHeight === null ? 'unknown' : `${lastHeight} and later`,
      reason: truncated.reason,
    });
  }
  if (head === 0n) return;
  if (created) {
    log.warn('consensus WAL missing: no WAL file was found although this node has committed blocks; a new log was begun', {
      dir: wal.dir,
      head,
      droppedHeights: `up to ${head + 1n}`,
    });
  } else if (lastHeight === null) {
    log.warn('consensus WAL holds no height although this node has committed blocks: its records were deleted or emptied', {
      dir: wal.dir,
      head,
      droppedHeights: `up to ${head + 1n}`,
    });
  } else if (lastHeight < head) {
    log.warn('consensus WAL ends before the chain head: its newest records were deleted or rolled back', {
      dir: wal.dir,
      head,
      walHeight: lastHeight,
      droppedHeights: `${lastHeight + 1n} to ${head + 1n}`,
    });
  }
}
