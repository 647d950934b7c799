// Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): metric
// families to the text a scraper reads. Pure, no I/O; the node's families are built in status-api.ts.
//
//   # HELP datagate_sensor_readings_total Readings the driver produced.
//   # TYPE datagate_sensor_readings_total counter
//   datagate_sensor_readings_total{driver="barn"} 1027

/** The Content-Type of formatMetrics' text. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** What a histogram's samples append to the family name (`_bucket` with an `le` label); a summary's too, bar `_bucket`. */
export type SampleSuffix = '_bucket' | '_sum' | '_count';

export interface MetricSample {
  /** Label name -> value, printed in this order. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
  /** Only in histogram and summary families, and required there. */
  readonly suffix?: SampleSuffix;
}

export interface MetricFamily {
  /** The sample name; by convention counters end in `_total` (checked). */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** May be empty: the family is announced (HELP, TYPE) without samples. */
  readonly samples: readonly MetricSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A HELP text with backslash and line feed escaped, as the format requires. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value with backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * A sample value as the format writes it: NaN, +Inf, -Inf, otherwise JavaScript's shortest round-trip form
 * (`42`, `0.5`, `1e+21`, `5e-7`), which Go's ParseFloat (Prometheus' parser) reads back exactly.
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(family: string, labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return '';
  for (const [name] of entries) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new TypeError(`metric ${family}: invalid label name "${name}"`);
  }
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/**
 * The exposition text of `families`: per family one HELP and one TYPE line, then its samples, each line ending
 * in a line feed. Throws TypeError on an invalid metric or label name, a counter not named `..._total`, a family
 * name given twice, or a sample suffix the family's type does not have (programming errors, not input).
 */
export function formatMetrics(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new TypeError(`invalid metric name "${f.name}"`);
    if (seen.has(f.name)) throw new TypeError(`metric ${f.name} given twice: one family has one HELP and one TYPE line`);
    if (f.type === 'counter' && !f.name.endsWith('_total')) throw new TypeError(`counter ${f.name} must be named ..._total`);
    seen.add(f.name);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const allowed = f.type === 'histogram' ? ['_bucket', '_sum', '_count'] : f.type === 'summary' ? ['_sum', '_count'] : [];
      if (allowed.length === 0 ? s.suffix !== undefined : s.suffix === undefined || !allowed.includes(s.suffix)) {
        throw new TypeError(`metric ${f.name}: a ${f.type} sample takes ${allowed.length === 0 ? 'no suffix' : `one of the suffixes ${allowed.join(', ')}`}`);
      }
      lines.push(`${f.name}${s.suffix ?? ''}${labelText(f.name, s.labels)} ${formatValue(s.value)}`);
    }
  }
  return lines.map((l) => l + '\n').join('');
}
