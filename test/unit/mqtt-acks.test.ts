// AckWindow (sensors/mqtt-acks.ts): PUBACKs go out in arrival order once every reading of their message is
// acknowledged, and a delivery tag is released only when the PINGRESP to a PINGREQ sent after its PUBACK has
// come back (PINGREQs of the client's own keepalive counted), never merely because the PUBACK was written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckWindow } from '../../sensors/mqtt-acks.ts';
import type { DeliveryLog, DeliveryTag, Reading } from '../../sensors/reading.ts';

const reading = (seq: number): Reading => ({ stream: 's', seq, ts: 1_700_000_000_000 + seq, value: seq });
const tag = (id: number): DeliveryTag => ({ key: `mqtt|c|${id}|0`, digest: `d${id}`, redelivered: false });

function setup(): { window: AckWindow; wire: string[]; released: string[] } {
  const wire: string[] = [];
  const released: string[] = [];
  const log: DeliveryLog = { has: () => false, release: (t) => void released.push(t.key) };
  // The transport writes as mqtt.js does: every PINGREQ is reported back through sent().
  const window: AckWindow = new AckWindow(
    {
      puback: (id) => void wire.push(`puback ${id}`),
      ping: () => {
        wire.push('pingreq');
        window.sent('pingreq');
      },
    },
    log,
  );
  return { window, wire, released };
}

test('PUBACKs follow arrival order, each once all readings of its message are acknowledged', { timeout: 10_000 }, () => {
  const { window, wire } = setup();
  const [a, b1, b2, c] = [reading(1), reading(2), reading(3), reading(4)];
  window.add(10, [a], [tag(10)]);
  window.add(11, [b1, b2], [tag(11)]);
  window.add(12, [c], [tag(12)]);
  window.add(13, [], [tag(13)]); // nothing to store (a reject, or a repeat skipped): acknowledged in turn
  assert.equal(window.acknowledge(c), true);
  assert.equal(window.acknowledge(b1), true);
  assert.deepEqual(wire, [], 'message 10 is still waiting, so nothing after it goes');
  window.acknowledge(a);
  assert.deepEqual(wire, ['puback 10', 'pingreq']);
  window.acknowledge(b2);
  assert.deepEqual(wire, ['puback 10', 'pingreq', 'puback 11', 'puback 12', 'puback 13']);
  assert.equal(window.size, 0);
  assert.equal(window.acknowledge(reading(99)), false, 'a reading of another connection changes nothing');
});

test('tags are released only by the PINGRESP that answers a PINGREQ sent after their PUBACK', { timeout: 10_000 }, () => {
  const { window, wire, released } = setup();
  window.sent('pingreq'); // mqtt.js's keepalive ping, before any PUBACK
  const [a, b] = [reading(1), reading(2)];
  window.add(1, [a], [tag(1)]);
  window.acknowledge(a); // PUBACK 1, then our PINGREQ (the second on the connection)
  window.add(2, [b], [tag(2)]);
  window.acknowledge(b); // PUBACK 2 waits for the next confirmation
  assert.deepEqual(wire, ['puback 1', 'pingreq', 'puback 2']);
  window.received('pingresp'); // answers the keepalive ping: says nothing about PUBACK 1
  assert.deepEqual(released, []);
  window.received('pingresp');
  assert.deepEqual(released, ['mqtt|c|1|0']);
  assert.deepEqual(wire.at(-1), 'pingreq', 'PUBACK 2 gets its own confirmation');
  window.received('pingresp');
  assert.deepEqual(released, ['mqtt|c|1|0', 'mqtt|c|2|0']);
});
