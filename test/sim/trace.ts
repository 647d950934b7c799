// The trace of a simulated run: every event a node processed (virtual time, node, type and the fields that
// matter) with the actions its engine returned, plus crashes, restarts and violations; written as JSON for
// a failing run so it can be read next to the replay command.
import { writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimAction, SimEvent, SimMessage } from './node.ts';

export interface TraceRecord {
  /** Virtual time (ms). */
  readonly t: number;
  readonly node: string;
  readonly kind: string;
  readonly detail: Record<string, unknown>;
  readonly actions?: readonly Record<string, unknown>[];
}

const short = (hash: string): string => hash.slice(0, 10);

function message(m: SimMessage): Record<string, unknown> {
  switch (m.type) {
    case 'proposal':
      return { msg: 'proposal', h: m.height, r: m.round, from: m.sender, block: short(m.block.hash), valid: m.block.valid, imp: m.block.impeachment, just: m.justification.length };
    case 'prepare':
    case 'commit':
      return { msg: m.type, h: m.height, r: m.round, from: m.sender, hash: short(m.hash) };
    case 'round-change':
      return { msg: 'round-change', h: m.height, r: m.round, from: m.sender, prepared: m.prepared === null ? null : { r: m.prepared.round, block: short(m.prepared.block.hash) } };
    case 'decided':
      return { msg: 'decided', h: m.height, block: short(m.block.hash), round: m.certificate.round, sigs: m.certificate.signatures.length };
  }
}

/** The fields of `e` worth reading in a trace. */
export function eventDetail(e: SimEvent): Record<string, unknown> {
  switch (e.type) {
    case 'start':
      return { now: e.now, h: e.height, parent: short(e.parent.hash), parentTs: e.parent.timestamp };
    case 'message':
      return { now: e.now, ...message(e.message) };
    case 'timeout':
      return { now: e.now, h: e.height, r: e.round, kind: e.kind };
    case 'validated':
      return { now: e.now, h: e.height, hash: short(e.hash), valid: e.valid };
    case 'built':
    case 'sealed':
      return { now: e.now, h: e.height, block: short(e.block.hash), ts: e.block.timestamp };
    case 'resume':
      return { now: e.now };
  }
}

/** The fields of `a` worth reading in a trace. */
export function actionDetail(a: SimAction): Record<string, unknown> {
  switch (a.type) {
    case 'broadcast': {
      const m = a.message;
      const base = { type: 'broadcast', msg: m.type, h: m.height, r: m.round };
      if (m.type === 'proposal') return { ...base, block: short(m.block.hash), just: m.justification.length };
      if (m.type === 'round-change') return { ...base, prepared: m.prepared?.round ?? null };
      return { ...base, hash: short(m.hash) };
    }
    case 'send-decided':
      return { type: a.type, h: a.message.height, block: short(a.message.block.hash) };
    case 'help-lagging':
      return { type: a.type, to: a.to, h: a.height };
    case 'sync':
      return { type: a.type, h: a.height };
    case 'set-timer':
      return { type: a.type, h: a.height, r: a.round, kind: a.kind, at: a.at };
    case 'validate':
      return { type: a.type, h: a.height, block: short(a.block.hash) };
    case 'build':
      return { type: a.type, h: a.height, ts: a.timestamp };
    case 'seal':
      return { type: a.type, h: a.height, block: short(a.block.hash) };
    case 'commit':
      return { type: a.type, h: a.block.number, block: short(a.block.hash), round: a.certificate.round, imp: a.block.impeachment };
    case 'impeach':
      return { type: a.type, h: a.height, cause: a.cause };
    case 'reject':
      return { type: a.type, reason: a.reason, from: a.from };
  }
}

/** JSON with bigints as decimal strings and bytes as hex. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `0x${Buffer.from(v).toString('hex')}` : v));
}

/**
 * Write a run's summary and trace under the OS temp dir as JSON, one trace record per line so the file
 * reads well with grep and less; returns the path.
 */
export function writeTrace(name: string, summary: Record<string, unknown>, trace: readonly TraceRecord[]): string {
  const dir = join(tmpdir(), 'datagate-sim');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name.replace(/[^\w.-]+/g, '_')}.json`);
  const head = toJson(summary).slice(0, -1);
  writeFileSync(path, `${head}${head.length > 1 ? ',' : ''}\n"trace": [\n${trace.map((r) => toJson(r)).join(',\n')}\n]}\n`);
  return path;
}
