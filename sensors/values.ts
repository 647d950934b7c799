// Strict readers for the pieces of a sensor line: decimal numbers, timestamps and dotted paths into JSON.
// Shared by the line formats (formats.ts) and usable by drivers with their own framing (MQTT JSON payloads).
// Nothing here throws on input.

/** Plain decimal, optional sign, fraction and exponent. No hex, no '12abc', no '', no surrounding spaces. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** What firmware prints for a failed reading (Arduino prints 'nan', 'inf', 'ovf'): reported as not finite. */
const NON_FINITE_WORD = /^[+-]?(?:nan|inf|infinity|ovf)$/i;

export type NumberResult = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly reason: 'not-a-number' | 'not-finite' };

/** Reads a strict decimal number: 'not-a-number' for anything else, 'not-finite' for nan/inf words and overflow. */
export function parseDecimal(text: string): NumberResult {
  if (!DECIMAL.test(text)) return { ok: false, reason: NON_FINITE_WORD.test(text) ? 'not-finite' : 'not-a-number' };
  const value = Number(text);
  return Number.isFinite(value) ? { ok: true, value } : { ok: false, reason: 'not-finite' };
}

/** Device timestamps outside 2000-01-01 .. 2100-01-01 are refused (a clock never set, or seconds sent as ms). */
export const MIN_DEVICE_TS = Date.UTC(2000, 0, 1);
export const MAX_DEVICE_TS = Date.UTC(2100, 0, 1);

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** Days in a month (1-based) of a year of the Gregorian calendar. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Reads an ISO 8601 date-time with an explicit zone ('Z' or '+hh:mm'), e.g. '2024-05-01T12:00:00.250Z'.
 * Without a zone the time would be the gateway's local time, which nobody can tell from the data: refused.
 * Returns ms since the epoch, or null.
 */
export function parseIsoTimestamp(text: string): number | null {
  const m = ISO.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offsetMin = 0;
  const zone = m[8] ?? 'Z';
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) return null;
    offsetMin = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
  return Number.isFinite(t) ? t : null;
}

/** A device timestamp: ms since the epoch as a number, or an ISO string (see parseIsoTimestamp); null if neither or implausible. */
export function readTimestamp(v: unknown): number | null {
  let t: number | null = null;
  if (typeof v === 'number') t = Number.isFinite(v) ? v : null;
  else if (typeof v === 'string') t = parseIsoTimestamp(v);
  if (t === null || t < MIN_DEVICE_TS || t > MAX_DEVICE_TS) return null;
  return t;
}

/** A timestamp written as text (CSV cell, key=value): ms as a strict decimal, or ISO. */
export function readTimestampText(text: string): number | null {
  const n = parseDecimal(text);
  return readTimestamp(n.ok ? n.value : text);
}

/** Splits and checks a dotted path ('data.t', 'sensors.0.value'); null if a segment is empty. */
export function splitPath(path: string): string[] | null {
  const segs = path.split('.');
  return segs.every((s) => s.length > 0) ? segs : null;
}

/** Follows own properties only (never the prototype chain); undefined when any step is missing. */
export function getPath(root: unknown, segs: readonly string[]): unknown {
  let cur: unknown = root;
  for (const s of segs) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, s)) return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

/** A short, printable excerpt of an input for reject details and logs. */
export function excerpt(text: string, max = 80): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > max ? clean.slice(0, max) + '...' : clean;
}
