// Pure helpers of the MQTT driver: MQTT topic filters (+ and # wildcards) matched against topics, stream-name
// templates filled from the matched wildcard levels ('farm/+/temp' -> 'farm/${1}/temperature'), and payload
// parsing ('number' text or 'json' with dotted field paths) into values or a stable reject reason. No I/O.
import { SensorError } from './reading.ts';
import { excerpt, getPath, parseDecimal, readTimestamp, splitPath } from './values.ts';

/** One subscription of an MQTT source, as configured. */
export interface MqttSubscription {
  /** MQTT topic filter, may hold `+` (one level) and `#` (the remaining levels, last). */
  readonly topic: string;
  /** Stream name; `${1}`, `${2}` ... stand for the levels matched by the filter's wildcards, in order. */
  readonly stream: string;
  /** 'number': the payload is a decimal number as text. 'json': a JSON document (see `fields`). */
  readonly payload: 'number' | 'json';
  /**
   * json only: value name -> dotted path into the document ('env.t', 'list.0.v'). One field gives
   * Reading.value, several give Reading.values (as in the serial JSON-lines format); every field must be
   * there and a JSON number ("21.5" is 'not-a-number'). Without `fields` the document must be a number or an
   * object with a numeric `value`.
   */
  readonly fields?: Readonly<Record<string, string>>;
  /**
   * json only: dotted path of the device's timestamp: ms since the epoch or ISO 8601 with a zone, within
   * 2000..2100 (values.ts readTimestamp), else 'bad-timestamp'. Absent from a document: arrival time.
   */
  readonly tsField?: string;
  readonly unit?: string;
  /** Default 1. */
  readonly qos?: 0 | 1;
}

/**
 * Every reason a message is rejected with. The first six are malformed input; 'bad-timestamp' is a tsField
 * that is not a time; 'retained' is a stale retained message replayed by the broker on subscribe.
 */
export const MQTT_REJECT_REASONS = ['bad-json', 'not-a-number', 'not-finite', 'missing-field', 'bad-topic', 'bad-payload', 'bad-timestamp', 'retained'] as const;
export type MqttRejectReason = (typeof MQTT_REJECT_REASONS)[number];

export type Rejected = { readonly ok: false; readonly reason: MqttRejectReason; readonly detail: string };

/** A parsed topic filter. */
export interface TopicFilter {
  readonly filter: string;
  readonly levels: readonly string[];
  /** Number of `+` and `#` levels: the captures a match yields. */
  readonly wildcards: number;
}

/** A stream template split into literal text and capture references (1-based). */
export type StreamTemplate = readonly (string | { readonly capture: number })[];

/** A subscription checked and prepared for matching. */
export interface CompiledSubscription {
  readonly sub: MqttSubscription;
  readonly filter: TopicFilter;
  readonly template: StreamTemplate;
  readonly qos: 0 | 1;
}

/** Largest payload parsed; longer ones are 'bad-payload'. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_CAPTURE_CHARS = 128;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Checks an MQTT topic filter and splits it; throws SensorError SENSOR_CONFIG_INVALID naming `field`. */
export function parseTopicFilter(filter: string, field = 'topic'): TopicFilter {
  const bad = (why: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `mqtt source: '${field}' ${JSON.stringify(filter)} ${why}`, { field, filter });
  };
  if (typeof filter !== 'string' || filter.length === 0) bad('must be a non-empty string');
  if (filter.includes('\u0000')) bad('must not contain NUL');
  if (filter.startsWith('$share/')) bad('is a shared subscription, which is not supported');
  const levels = filter.split('/');
  let wildcards = 0;
  levels.forEach((level, i) => {
    if (level === '+') wildcards++;
    else if (level === '#') {
      if (i !== levels.length - 1) bad("has '#' before the last level");
      wildcards++;
    } else if (level.includes('+') || level.includes('#')) bad("has '+' or '#' that does not fill a whole level");
  });
  return { filter, levels, wildcards };
}

/**
 * Matches `topic` against a filter (MQTT rules: `+` one level, `#` zero or more trailing levels, wildcards
 * in the first level never match topics starting with `$`). Returns the wildcard captures in order (a `#`
 * capture is its levels joined with '/', '' when it matched none), or null when the topic does not match.
 */
export function matchTopic(filter: TopicFilter, topic: string): string[] | null {
  const parts = topic.split('/');
  if (topic.startsWith('$') && (filter.levels[0] === '+' || filter.levels[0] === '#')) return null;
  const captures: string[] = [];
  for (let i = 0; i < filter.levels.length; i++) {
    const level = filter.levels[i];
    if (level === '#') {
      captures.push(parts.slice(i).join('/'));
      return captures;
    }
    const part = parts[i];
    if (part === undefined) return null;
    if (level === '+') captures.push(part);
    else if (level !== part) return null;
  }
  return parts.length === filter.levels.length ? captures : null;
}

/** Splits a stream template; throws SensorError SENSOR_CONFIG_INVALID for `${n}` outside 1..wildcards. */
export function parseStreamTemplate(template: string, wildcards: number, field = 'stream'): StreamTemplate {
  if (typeof template !== 'string' || template.length === 0) {
    throw new SensorError('SENSOR_CONFIG_INVALID', `mqtt source: '${field}' must be a non-empty string`, { field });
  }
  const out: (string | { capture: number })[] = [];
  const re = /\$\{(\d+)\}/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    const n = Number(m[1]);
    if (n < 1 || n > wildcards) {
      throw new SensorError(
        'SENSOR_CONFIG_INVALID',
        `mqtt source: '${field}' ${JSON.stringify(template)} uses \${${n}} but its topic filter has ${wildcards} wildcard(s)`,
        { field, capture: n, wildcards },
      );
    }
    if (m.index > last) out.push(template.slice(last, m.index));
    out.push({ capture: n });
    last = m.index + m[0].length;
  }
  if (last < template.length) out.push(template.slice(last));
  return out;
}

/** Fills a template from captures; a capture that is empty, too long or holds control characters is 'bad-topic'. */
export function renderStream(template: StreamTemplate, captures: readonly string[]): { ok: true; stream: string } | Rejected {
  let stream = '';
  for (const part of template) {
    if (typeof part === 'string') {
      stream += part;
      continue;
    }
    const c = captures[part.capture - 1];
    if (c === undefined || c === '' || c.split('/').includes('') || c.length > MAX_CAPTURE_CHARS || CONTROL.test(c)) {
      return { ok: false, reason: 'bad-topic', detail: `wildcard level ${part.capture} ${JSON.stringify(c ?? '')} cannot name a stream` };
    }
    stream += c;
  }
  return { ok: true, stream };
}

/** Validates one configured subscription (filter, template, payload options); throws SensorError SENSOR_CONFIG_INVALID naming the field. */
export function compileSubscription(sub: MqttSubscription, index = 0): CompiledSubscription {
  const at = `subscriptions[${index}]`;
  const bad = (field: string, why: string): never => {
    throw new SensorError('SENSOR_CONFIG_INVALID', `mqtt source: '${at}${field}' ${why}`, { field: at + field });
  };
  if (sub === null || typeof sub !== 'object') bad('', 'must be an object');
  const filter = parseTopicFilter(sub.topic, `${at}.topic`);
  const template = parseStreamTemplate(sub.stream, filter.wildcards, `${at}.stream`);
  if (sub.payload !== 'number' && sub.payload !== 'json') bad('.payload', "must be 'number' or 'json'");
  if (sub.payload === 'number' && (sub.fields !== undefined || sub.tsField !== undefined)) bad('.payload', "must be 'json' to use fields or tsField");
  if (sub.fields !== undefined) {
    if (sub.fields === null || typeof sub.fields !== 'object') bad('.fields', 'must map value names to dotted paths');
    const entries = Object.entries(sub.fields);
    if (entries.length === 0) bad('.fields', 'must name at least one value');
    for (const [name, path] of entries) {
      if (typeof path !== 'string' || splitPath(path) === null) bad(`.fields.${name}`, 'must be a dotted path');
    }
  }
  if (sub.tsField !== undefined && (typeof sub.tsField !== 'string' || splitPath(sub.tsField) === null)) bad('.tsField', 'must be a dotted path');
  if (sub.unit !== undefined && typeof sub.unit !== 'string') bad('.unit', 'must be a string');
  const qos = sub.qos ?? 1;
  if (qos !== 0 && qos !== 1) bad('.qos', 'must be 0 or 1');
  return { sub, filter, template, qos };
}

/** The stream a topic maps to under a subscription, or 'bad-topic' when it does not fit the filter or template. */
export function resolveStream(c: CompiledSubscription, topic: string): { ok: true; stream: string } | Rejected {
  const captures = matchTopic(c.filter, topic);
  if (captures === null) return { ok: false, reason: 'bad-topic', detail: `topic ${JSON.stringify(topic)} does not match ${c.filter.filter}` };
  return renderStream(c.template, captures);
}

export type ParsedPayload =
  | { readonly ok: true; readonly ts: number; readonly value: number }
  | { readonly ok: true; readonly ts: number; readonly values: Record<string, number> }
  | Rejected;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Payload bytes as text, or 'bad-payload' for empty, oversized, non-UTF-8 or control-character input. */
export function payloadText(payload: Uint8Array): { ok: true; text: string } | Rejected {
  if (payload.length === 0) return { ok: false, reason: 'bad-payload', detail: 'empty payload' };
  if (payload.length > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'bad-payload', detail: `payload of ${payload.length} bytes` };
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'bad-payload', detail: 'not UTF-8' };
  }
  if (CONTROL.test(text)) return { ok: false, reason: 'bad-payload', detail: 'control characters' };
  return { ok: true, text };
}

function numberAt(doc: unknown, path: readonly string[] | null, name: string): { ok: true; value: number } | Rejected {
  const v = path === null ? doc : getPath(doc, path);
  if (v === undefined) return { ok: false, reason: 'missing-field', detail: name };
  if (typeof v !== 'number') return { ok: false, reason: 'not-a-number', detail: `${name} is ${v === null ? 'null' : typeof v}` };
  if (!Number.isFinite(v)) return { ok: false, reason: 'not-finite', detail: name };
  return { ok: true, value: v };
}

/** splitPath of the configured field paths, split once rather than per message. */
const splitPaths = new Map<string, readonly string[]>();

function pathOf(path: string): readonly string[] {
  let segs = splitPaths.get(path);
  if (segs === undefined) {
    if (splitPaths.size >= 1024) splitPaths.clear();
    splitPaths.set(path, (segs = splitPath(path) ?? []));
  }
  return segs;
}

/**
 * Parses one message payload for a subscription. Takes the payload bytes and the arrival time (used when
 * there is no tsField or the document lacks it); returns the value(s) and timestamp, or a reject reason.
 * Never throws.
 */
export function parsePayload(sub: Pick<MqttSubscription, 'payload' | 'fields' | 'tsField'>, payload: Uint8Array, arrivedAt: number): ParsedPayload {
  const t = payloadText(payload);
  if (!t.ok) return t;
  if (sub.payload === 'number') {
    const text = t.text.trim();
    const n = parseDecimal(text);
    return n.ok ? { ok: true, ts: arrivedAt, value: n.value } : { ok: false, reason: n.reason, detail: excerpt(text, 40) };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(t.text);
  } catch {
    return { ok: false, reason: 'bad-json', detail: excerpt(t.text) };
  }
  let ts = arrivedAt;
  if (sub.tsField !== undefined) {
    const raw = getPath(doc, pathOf(sub.tsField));
    if (raw !== undefined) {
      const parsed = readTimestamp(raw);
      if (parsed === null) return { ok: false, reason: 'bad-timestamp', detail: `${sub.tsField}: ${excerpt(String(raw), 40)}` };
      ts = parsed;
    }
  }
  if (sub.fields === undefined) {
    const isObject = doc !== null && typeof doc === 'object' && !Array.isArray(doc);
    const n = isObject ? numberAt(doc, ['value'], 'value') : numberAt(doc, null, 'document');
    return n.ok ? { ok: true, ts, value: n.value } : n;
  }
  const entries: [string, number][] = [];
  for (const [name, path] of Object.entries(sub.fields)) {
    const n = numberAt(doc, pathOf(path), path);
    if (!n.ok) return n;
    entries.push([name, n.value]);
  }
  const [only] = entries;
  if (entries.length === 1 && only !== undefined) return { ok: true, ts, value: only[1] };
  // fromEntries defines own properties, so a field named '__proto__' stays a plain value.
  return { ok: true, ts, values: Object.fromEntries(entries) };
}
