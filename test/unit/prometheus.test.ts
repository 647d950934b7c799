// The Prometheus text formatter (gateway/api/prometheus.ts): escaping of HELP texts and label values, one HELP and
// one TYPE line per family before its samples, number formatting (integers, fractions, exponents, NaN, +-Inf),
// and the programming errors it refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricFamily } from '../../gateway/api/prometheus.ts';
import { escapeHelp, escapeLabelValue, formatMetrics, formatValue } from '../../gateway/api/prometheus.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

test('label values escape backslash, double quote and line feed, and nothing else', () => {
  assert.equal(escapeLabelValue('plain/stream-1'), 'plain/stream-1');
  assert.equal(escapeLabelValue('a\\b'), 'a\\\\b');
  assert.equal(escapeLabelValue('say "hi"'), 'say \\"hi\\"');
  assert.equal(escapeLabelValue('two\nlines'), 'two\\nlines');
  assert.equal(escapeLabelValue('\\"\n'), '\\\\\\"\\n');
  assert.equal(escapeLabelValue('tab\there, ünïcode {x}'), 'tab\there, ünïcode {x}');
  // HELP escapes backslash and line feed; a double quote stays as it is.
  assert.equal(escapeHelp('a "b" \\ c\nd'), 'a "b" \\\\ c\\nd');
});

test('numbers are written as Go reads them back', () => {
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(-0), '0');
  assert.equal(formatValue(42), '42');
  assert.equal(formatValue(4294967296), '4294967296');
  assert.equal(formatValue(Number.MAX_SAFE_INTEGER), '9007199254740991');
  assert.equal(formatValue(0.5), '0.5');
  assert.equal(formatValue(-1.25), '-1.25');
  assert.equal(formatValue(1e21), '1e+21');
  assert.equal(formatValue(5e-7), '5e-7');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
  for (const v of [0, 42, 0.1 + 0.2, 1e21, 5e-7, -3.5, 2 ** 53]) assert.equal(Number(formatValue(v)), v);
});

test('each family gets one HELP and one TYPE line before its samples; the text ends with a line feed', () => {
  const families: MetricFamily[] = [
    { name: 'x_readings_total', type: 'counter', help: 'Readings.', samples: [{ labels: { driver: 'a' }, value: 3 }, { labels: { driver: 'b "quoted"\\\n' }, value: 4 }] },
    { name: 'x_alarm', type: 'gauge', help: 'Alarm\nper "bound" \\.', samples: [{ labels: { bound: 'queue', policy: 'stop' }, value: 0 }, { labels: { bound: 'store', policy: 'stop' }, value: 1 }] },
    { name: 'x_head', type: 'gauge', help: 'Head.', samples: [{ value: 12 }] },
    { name: 'x_rejects_total', type: 'counter', help: 'None yet.', samples: [] },
  ];
  const text = formatMetrics(families);
  assert.equal(
    text,
    [
      '# HELP x_readings_total Readings.',
      '# TYPE x_readings_total counter',
      'x_readings_total{driver="a"} 3',
      'x_readings_total{driver="b \\"quoted\\"\\\\\\n"} 4',
      '# HELP x_alarm Alarm\\nper "bound" \\\\.',
      '# TYPE x_alarm gauge',
      'x_alarm{bound="queue",policy="stop"} 0',
      'x_alarm{bound="store",policy="stop"} 1',
      '# HELP x_head Head.',
      '# TYPE x_head gauge',
      'x_head 12',
      '# HELP x_rejects_total None yet.',
      '# TYPE x_rejects_total counter',
      '',
    ].join('\n'),
  );
  const parsed = parsePrometheusText(text);
  assert.equal(parsed.types.size, 4);
  assert.equal(sampleValue(parsed, 'x_readings_total', { driver: 'b "quoted"\\\n' }), 4);
  assert.equal(sampleValue(parsed, 'x_alarm', { bound: 'store' }), 1);
  assert.equal(formatMetrics([]), '');
});

test('invalid names, a counter not named _total and a family given twice are refused', () => {
  const fam = (over: Partial<MetricFamily>): MetricFamily => ({ name: 'x_total', type: 'counter', help: 'h', samples: [{ value: 1 }], ...over });
  assert.throws(() => formatMetrics([fam({ name: '1x_total' })]), TypeError);
  assert.throws(() => formatMetrics([fam({ name: 'x-y_total' })]), TypeError);
  assert.throws(() => formatMetrics([fam({ name: 'x_count' })]), /must be named \.\.\._total/);
  assert.throws(() => formatMetrics([fam({}), fam({})]), /given twice/);
  assert.throws(() => formatMetrics([fam({ samples: [{ labels: { 'bad-label': 'v' }, value: 1 } ] })]), /invalid label name/);
  assert.throws(() => formatMetrics([fam({ samples: [{ labels: { __name__: 'v' }, value: 1 } ] })]), /invalid label name/);
  assert.doesNotThrow(() => formatMetrics([fam({ name: 'ns:x_total' })]));
});
