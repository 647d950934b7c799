// A strict reader of the Prometheus text format 0.0.4 for tests: every line must be a HELP, a TYPE (one of each
// per family, before its samples) or a sample `name{labels} value` (a histogram's `name_bucket`, `name_sum`,
// `name_count`, a summary's `name_sum`, `name_count`); the text ends with a line feed.
import assert from 'node:assert/strict';

export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedMetrics {
  readonly samples: readonly ParsedSample[];
  readonly types: ReadonlyMap<string, string>;
  readonly helps: ReadonlyMap<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = 'NaN|[+-]Inf|[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?';
/** `name{labels} value`, the shape the brief of /metrics promises for every non-comment line. */
export const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (${VALUE})$`);

const unescape = (v: string): string => v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Parse `text`; an assertion fails on the first line that is not well-formed. */
export function parsePrometheusText(text: string): ParsedMetrics {
  assert.ok(text === '' || text.endsWith('\n'), 'the text ends with a line feed');
  const samples: ParsedSample[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  for (const line of text.split('\n').slice(0, -1)) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, 'HELP' | 'TYPE', string, string];
      const seen = kind === 'HELP' ? helps : types;
      assert.ok(!seen.has(name), `one ${kind} line per family: ${name}`);
      assert.ok(!samples.some((s) => s.name === name), `${kind} of ${name} before its samples`);
      if (kind === 'TYPE') assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, line);
      seen.set(name, rest);
      continue;
    }
    const m = SAMPLE_LINE.exec(line);
    assert.ok(m !== null, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g)) labels[l[1]!] = unescape(l[2]!);
    // A histogram's or summary's samples carry a suffix after the family name.
    const family = /^(.*)(_bucket|_sum|_count)$/.exec(m[1]!);
    const typed = types.has(m[1]!) || (family !== null && /^(histogram|summary)$/.test(types.get(family[1]!) ?? '') && (family[2] !== '_bucket' || types.get(family[1]!) === 'histogram'));
    assert.ok(typed, `sample of ${m[1]} after its TYPE line`);
    samples.push({ name: m[1]!, labels, value: parseValue(m[3]!) });
  }
  return { samples, types, helps };
}

/** The value of the one sample named `name` whose labels include `labels`. */
export function sampleValue(parsed: ParsedMetrics, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const found = parsed.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}
