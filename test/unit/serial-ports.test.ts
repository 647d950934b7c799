// listSerialPorts: without udevadm (the udev package missing) it lists /dev entries itself and says so, instead
// of crashing in serialport's `spawn udevadm`; with a lister it joins the /dev/serial/by-id names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UDEVADM_MISSING, listSerialPorts } from '../../sensors/serial-ports.ts';

/** A fake /dev with two USB adapters (one with a by-id link), a UART and unrelated nodes. */
function fakeDev(t: { after: (fn: () => void) => void }): string {
  const dev = realpathSync(mkdtempSync(join(tmpdir(), 'datagate-dev-')));
  t.after(() => rmSync(dev, { recursive: true, force: true }));
  for (const n of ['ttyUSB0', 'ttyUSB10', 'ttyACM1', 'ttyAMA0', 'tty1', 'null', 'ttyprintk']) writeFileSync(join(dev, n), '');
  mkdirSync(join(dev, 'serial', 'by-id'), { recursive: true });
  symlinkSync('../../ttyUSB0', join(dev, 'serial', 'by-id', 'usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0'));
  symlinkSync('../../ttyGONE', join(dev, 'serial', 'by-id', 'usb-dangling-if00')); // adapter pulled mid-listing
  return dev;
}

test('no udevadm on PATH: /dev entries with their by-id names, and a warning saying what is missing', async (t) => {
  const dev = fakeDev(t);
  const r = await listSerialPorts({ pathEnv: '/nonexistent', devDir: dev, platform: 'linux' });
  assert.ok(r.ok);
  assert.equal(r.warning, UDEVADM_MISSING);
  assert.equal(r.warning, 'udevadm not found (install udev); listing /dev entries only');
  assert.deepEqual(r.ports, [
    { path: join(dev, 'ttyACM1') },
    { path: join(dev, 'ttyAMA0') },
    { path: join(dev, 'ttyUSB0'), byId: join(dev, 'serial', 'by-id', 'usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0') },
    { path: join(dev, 'ttyUSB10') },
  ]);
});

test('with a lister: its details joined with the by-id names', async (t) => {
  const dev = fakeDev(t);
  const r = await listSerialPorts({
    devDir: dev,
    list: async () => [{ path: join(dev, 'ttyUSB0'), manufacturer: 'FTDI', serialNumber: 'A50285BI', vendorId: '0403', productId: '6001' }, { path: join(dev, 'ttyS0'), manufacturer: undefined }],
  });
  assert.deepEqual(r, {
    ok: true,
    ports: [
      { path: join(dev, 'ttyS0') },
      { path: join(dev, 'ttyUSB0'), manufacturer: 'FTDI', serialNumber: 'A50285BI', vendorId: '0403', productId: '6001', byId: join(dev, 'serial', 'by-id', 'usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0') },
    ],
  });
});

test('a failing lister falls back to /dev entries; an unreadable /dev is ok:false, never a throw', async (t) => {
  const dev = fakeDev(t);
  const r = await listSerialPorts({ devDir: dev, list: () => Promise.reject(new Error('spawn udevadm ENOENT')) });
  assert.ok(r.ok && r.ports.length === 4 && /spawn udevadm ENOENT/.test(r.warning ?? ''));
  const gone = await listSerialPorts({ devDir: join(dev, 'missing'), pathEnv: '', platform: 'linux' });
  assert.equal(gone.ok, false);
});

test('on this machine, with and without udevadm on PATH, listing never throws', async () => {
  const real = await listSerialPorts();
  assert.ok(real.ok, JSON.stringify(real));
  const noUdev = await listSerialPorts({ pathEnv: '/nonexistent' });
  if (process.platform === 'linux') assert.ok(noUdev.ok && noUdev.warning === UDEVADM_MISSING);
});
