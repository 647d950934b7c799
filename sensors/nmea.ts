// NMEA 0183 position fixes from GPS/GNSS receivers: GGA (fix, altitude, satellites) and RMC (fix, speed,
// course, date) from any talker (GP, GN, GL, GA, BD, ...). Checksums are required and verified; other valid
// sentences are reported as 'ignored-sentence' so a driver can count them apart from line noise.
// Pure: the arrival time `now` is passed in. Never throws on input.
import type { ParseResult, Reading } from './reading.ts';
import { daysInMonth, excerpt } from './values.ts';

/** Longer than any real sentence (the standard says 82 characters; some receivers exceed it a little). */
const MAX_SENTENCE = 256;
const ADDRESS = /^([A-Z][A-Z0-9])([A-Z]{3})$/;
const LAT = /^(\d{2})(\d{2}(?:\.\d*)?)$/;
const LON = /^(\d{3})(\d{2}(?:\.\d*)?)$/;
const HHMMSS = /^(\d{2})(\d{2})(\d{2}(?:\.\d{1,6})?)$/;
const DDMMYY = /^(\d{2})(\d{2})(\d{2})$/;
const UNSIGNED = /^\d+(?:\.\d*)?$|^\.\d+$/;
const SIGNED = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;
const HALF_DAY_MS = 12 * 3_600_000;
const DAY_MS = 24 * 3_600_000;
const KNOT_MS = 1852 / 3600;

/** The checksum of a sentence body (the text between '$' and '*'): XOR of its bytes as two uppercase hex digits. */
export function nmeaChecksum(body: string): string {
  let x = 0;
  for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i) & 0xff;
  return x.toString(16).toUpperCase().padStart(2, '0');
}

type Fail = { ok: false; reason: string; detail: string };
const fail = (reason: string, detail: string): Fail => ({ ok: false, reason, detail });

/**
 * Parses one NMEA sentence (without its line terminator) into a position reading on `stream`.
 * GGA -> values {lat, lon, alt?, fixQuality, satellites?, hdop?}, quality = fix quality, ts = sentence time on
 * the UTC date of `now` (the nearest such instant, so a fix from 23:59:59 read at 00:00:01 stays yesterday's).
 * RMC -> values {lat, lon, speedKn?, speedMs?, course?}, ts from the sentence's own date and time.
 * Fields a receiver leaves empty (course when standing still, hdop, ...) are left out of `values`.
 * lat/lon in signed decimal degrees (S and W negative), alt in metres above mean sea level.
 * Rejects: 'empty-line', 'bad-sentence', 'checksum', 'ignored-sentence', 'no-fix', 'bad-timestamp'.
 */
export function parseNmeaSentence(line: string, now: number, stream = 'gps'): ParseResult {
  const s = line.trim();
  if (s === '') return fail('empty-line', 'empty line');
  if (s.length > MAX_SENTENCE) return fail('bad-sentence', `sentence of ${s.length} characters`);
  if (!s.startsWith('$')) return fail('bad-sentence', `does not start with '$': ${excerpt(s)}`);
  if (!/^[\x20-\x7e]*$/.test(s)) return fail('bad-sentence', `non-ASCII characters: ${excerpt(s)}`);
  const star = s.lastIndexOf('*');
  if (star < 0) return fail('checksum', `no '*hh' checksum: ${excerpt(s)}`);
  const body = s.slice(1, star);
  const given = s.slice(star + 1).toUpperCase();
  if (!/^[0-9A-F]{2}$/.test(given)) return fail('checksum', `checksum field '${excerpt(given)}' is not two hex digits`);
  const want = nmeaChecksum(body);
  if (given !== want) return fail('checksum', `checksum ${given}, computed ${want}: ${excerpt(s)}`);
  const f = body.split(',');
  const address = f[0] ?? '';
  if (address.startsWith('P')) return fail('ignored-sentence', `proprietary sentence ${address}`);
  const m = ADDRESS.exec(address);
  if (m === null) return fail('bad-sentence', `bad address field '${address}'`);
  const type = m[2];
  if (type === 'GGA') return parseGga(f, now, stream);
  if (type === 'RMC') return parseRmc(f, stream);
  return fail('ignored-sentence', `${address} is not parsed`);
}

function parseGga(f: readonly string[], now: number, stream: string): ParseResult {
  if (f.length < 15) return fail('bad-sentence', `GGA with ${f.length - 1} fields, expected 14`);
  const fq = f[6] ?? '';
  if (!/^\d$/.test(fq)) return fail('bad-sentence', `GGA fix quality '${fq}'`);
  const fixQuality = Number(fq);
  if (fixQuality === 0) return fail('no-fix', 'GGA fix quality 0 (no fix)');
  const pos = position(f[2], f[3], f[4], f[5]);
  if (!pos.ok) return pos;
  const values: Record<string, number> = { lat: pos.lat, lon: pos.lon };
  const alt = optional(f[9], SIGNED, 'GGA altitude');
  if (typeof alt === 'object') return alt;
  if (alt !== undefined) {
    if (f[10] !== 'M') return fail('bad-sentence', `GGA altitude unit '${f[10] ?? ''}', expected M`);
    values.alt = alt;
  }
  values.fixQuality = fixQuality;
  const sats = optional(f[7], /^\d{1,2}$/, 'GGA satellites');
  if (typeof sats === 'object') return sats;
  if (sats !== undefined) values.satellites = sats;
  const hdop = optional(f[8], UNSIGNED, 'GGA hdop');
  if (typeof hdop === 'object') return hdop;
  if (hdop !== undefined) values.hdop = hdop;

  let ts = now;
  if ((f[1] ?? '') !== '') {
    const tod = timeOfDay(f[1] ?? '');
    if (tod === null) return fail('bad-timestamp', `GGA time '${f[1] ?? ''}'`);
    const midnight = Math.floor(now / DAY_MS) * DAY_MS;
    ts = midnight + tod;
    if (ts - now > HALF_DAY_MS) ts -= DAY_MS;
    else if (now - ts > HALF_DAY_MS) ts += DAY_MS;
  }
  const reading: Omit<Reading, 'seq'> = { stream, ts, values, quality: fixQuality };
  return { ok: true, readings: [reading] };
}

function parseRmc(f: readonly string[], stream: string): ParseResult {
  if (f.length < 12) return fail('bad-sentence', `RMC with ${f.length - 1} fields, expected at least 11`);
  const status = f[2] ?? '';
  if (status === 'V') return fail('no-fix', 'RMC status V (no valid fix)');
  if (status !== 'A') return fail('bad-sentence', `RMC status '${status}'`);
  // NMEA 2.3+ adds a mode indicator; 'N' means the data is not valid.
  if (f.length >= 13 && f[12] === 'N') return fail('no-fix', 'RMC mode N (no fix)');
  const pos = position(f[3], f[4], f[5], f[6]);
  if (!pos.ok) return pos;
  const values: Record<string, number> = { lat: pos.lat, lon: pos.lon };
  const speed = optional(f[7], UNSIGNED, 'RMC speed');
  if (typeof speed === 'object') return speed;
  if (speed !== undefined) {
    values.speedKn = speed;
    values.speedMs = speed * KNOT_MS;
  }
  const course = optional(f[8], UNSIGNED, 'RMC course');
  if (typeof course === 'object') return course;
  if (course !== undefined) {
    if (course > 360) return fail('bad-sentence', `RMC course ${course}`);
    values.course = course;
  }
  const tod = timeOfDay(f[1] ?? '');
  const date = DDMMYY.exec(f[9] ?? '');
  if (tod === null || date === null) return fail('bad-timestamp', `RMC time '${f[1] ?? ''}' date '${f[9] ?? ''}'`);
  const [day, month, yy] = [Number(date[1]), Number(date[2]), Number(date[3])];
  // Two-digit years: 80..99 are 1980..1999 (GPS started in 1980), 00..79 are 2000..2079.
  const year = yy >= 80 ? 1900 + yy : 2000 + yy;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return fail('bad-timestamp', `RMC date '${f[9] ?? ''}'`);
  }
  const ts = Date.UTC(year, month - 1, day) + tod;
  return { ok: true, readings: [{ stream, ts, values }] };
}

/** ms since midnight from 'hhmmss(.sss)', or null. */
function timeOfDay(text: string): number | null {
  const m = HHMMSS.exec(text);
  if (m === null) return null;
  const [h, min, sec] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (h > 23 || min > 59 || sec >= 61) return null; // 60: leap second
  return Math.round(((h * 60 + min) * 60 + sec) * 1000);
}

type Position = { ok: true; lat: number; lon: number } | Fail;

function position(lat?: string, ns?: string, lon?: string, ew?: string): Position {
  const la = LAT.exec(lat ?? '');
  const lo = LON.exec(lon ?? '');
  if (la === null || lo === null) return fail('bad-sentence', `position '${lat ?? ''}','${lon ?? ''}'`);
  if ((ns !== 'N' && ns !== 'S') || (ew !== 'E' && ew !== 'W')) return fail('bad-sentence', `hemisphere '${ns ?? ''}','${ew ?? ''}'`);
  const latMin = Number(la[2]);
  const lonMin = Number(lo[2]);
  const latDeg = Number(la[1]) + latMin / 60;
  const lonDeg = Number(lo[1]) + lonMin / 60;
  if (latMin >= 60 || lonMin >= 60 || latDeg > 90 || lonDeg > 180) return fail('bad-sentence', `position out of range '${lat ?? ''}','${lon ?? ''}'`);
  return { ok: true, lat: ns === 'S' ? -latDeg : latDeg, lon: ew === 'W' ? -lonDeg : lonDeg };
}

/** An optional numeric field: undefined when empty, the number, or a rejection. */
function optional(text: string | undefined, pattern: RegExp, what: string): number | undefined | Fail {
  if (text === undefined || text === '') return undefined;
  if (!pattern.test(text)) return fail('bad-sentence', `${what} '${text}'`);
  const v = Number(text);
  return Number.isFinite(v) ? v : fail('bad-sentence', `${what} '${text}'`);
}

