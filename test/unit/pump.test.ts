// pumpInto: readings go from a driver into the pipeline with a bounded number in flight; a reading is
// acknowledged to its driver only once the pipeline took it (a refused one is handed back with refuse(), so
// an MQTT source has it delivered again), and a pipeline that refuses thousands of
// readings (full) logs a few lines, not one per reading.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PUMP_WINDOW, pumpInto } from '../../gateway/sensors.ts';
import type { Reading, SensorDriver } from '../../sensors/index.ts';
import { recordingLogger } from '../helpers/pipeline-fixtures.ts';

/** A driver that yields `n` readings as fast as they are taken and records what is acknowledged. */
function fakeDriver(n: number): SensorDriver & { acked: Reading[]; refused: Reading[] } {
  const acked: Reading[] = [];
  const refused: Reading[] = [];
  return {
    name: 'fake',
    acked,
    refused,
    async *readings() {
      for (let seq = 0; seq < n; seq++) yield { stream: 'fake/s', seq, ts: 1_700_000_000_000 + seq, value: seq };
    },
    acknowledge: (r: Reading) => void acked.push(r),
    refuse: (r: Reading) => void refused.push(r),
  } as unknown as SensorDriver & { acked: Reading[]; refused: Reading[] };
}

test('pumpInto acknowledges exactly what the pipeline took, with a bounded number in flight', { timeout: 30_000 }, async () => {
  const n = 3 * PUMP_WINDOW;
  const driver = fakeDriver(n);
  let inflight = 0;
  let peak = 0;
  const taken: number[] = [];
  const pipeline = {
    async ingest(r: Reading) {
      inflight++;
      peak = Math.max(peak, inflight);
      await new Promise((resolve) => setImmediate(resolve));
      inflight--;
      if (r.seq % 3 === 0) throw Object.assign(new Error('invalid'), { code: 'PIPELINE_INVALID_INPUT' });
      taken.push(r.seq);
    },
  };
  await pumpInto(driver, pipeline, recordingLogger());
  assert.deepEqual(driver.acked.map((r) => r.seq).sort((a, b) => a - b), taken.sort((a, b) => a - b));
  assert.equal(taken.length, n - Math.ceil(n / 3));
  assert.deepEqual(driver.refused.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: Math.ceil(n / 3) }, (_, i) => i * 3));
  assert.ok(peak > 1 && peak <= PUMP_WINDOW, `${peak} in flight at most`);
});

test('a full pipeline refusing every reading logs a few lines, not one per reading', { timeout: 30_000 }, async () => {
  const driver = fakeDriver(5000);
  const log = recordingLogger();
  const pipeline = { ingest: () => Promise.reject(Object.assign(new Error('full'), { code: 'PIPELINE_FULL' })) };
  await pumpInto(driver, pipeline, log);
  assert.equal(driver.acked.length, 0, 'nothing refused is acknowledged');
  assert.equal(driver.refused.length, 5000, 'every refused reading is handed back');
  const lines = log.lines.filter((l) => l.msg === 'reading not taken by the pipeline');
  assert.equal(lines.length, 5);
  assert.deepEqual(lines[0]!.fields, { driver: 'fake', stream: 'fake/s', seq: 0, code: 'PIPELINE_FULL' });
});
