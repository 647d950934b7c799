// Which serial ports this machine has, for `sensors list` and the setup page: serialport's list (udev data on
// Linux: manufacturer, serial number, USB ids) joined with the stable /dev/serial/by-id/ names to put in the
// config. On Linux, serialport runs `udevadm`; where the udev package is missing that spawn fails (in some
// versions as an uncaught error), so udevadm is looked for on PATH first and, when absent or when listing
// fails, the /dev entries are listed directly and the result says what is missing.
import { access, constants, readdir, realpath } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export interface SerialPortInfo {
  /** Kernel device path, e.g. /dev/ttyUSB0. */
  readonly path: string;
  readonly manufacturer?: string;
  readonly serialNumber?: string;
  readonly vendorId?: string;
  readonly productId?: string;
  /** The /dev/serial/by-id/ link to this port, when there is one: the name to put in the config. */
  readonly byId?: string;
}

export type ListSerialPortsResult =
  | {
      readonly ok: true;
      readonly ports: SerialPortInfo[];
      /** Set when the list is partial, saying what is missing (e.g. "udevadm not found (install udev); ..."). */
      readonly warning?: string;
    }
  | { readonly ok: false; readonly reason: string };

/** What serialport's SerialPort.list() returns, as far as we read it. */
export interface ListedPort {
  readonly path: string;
  readonly manufacturer?: string | undefined;
  readonly serialNumber?: string | undefined;
  readonly vendorId?: string | undefined;
  readonly productId?: string | undefined;
}

export interface ListSerialPortsDeps {
  /** Default: serialport's SerialPort.list (loaded on first use). */
  readonly list?: () => Promise<ListedPort[]>;
  /** Default process.env.PATH: where udevadm is looked for. */
  readonly pathEnv?: string;
  /** Default '/dev'. */
  readonly devDir?: string;
  /** Default process.platform (udevadm is needed on Linux only). */
  readonly platform?: NodeJS.Platform;
}

export const UDEVADM_MISSING = 'udevadm not found (install udev); listing /dev entries only';

const TTY_NAME = /^tty(USB|ACM|AMA|S)\d+$/;

/** Lists serial ports; never throws. ok:false only when nothing could be listed at all. */
export async function listSerialPorts(deps: ListSerialPortsDeps = {}): Promise<ListSerialPortsResult> {
  const devDir = deps.devDir ?? '/dev';
  const byId = await readByIdLinks(devDir);
  const platform = deps.platform ?? process.platform;
  if (platform === 'linux' && deps.list === undefined && !(await onPath('udevadm', deps.pathEnv ?? process.env['PATH'] ?? ''))) {
    return listDevEntries(devDir, byId, UDEVADM_MISSING);
  }
  let listed: ListedPort[];
  try {
    if (deps.list !== undefined) listed = await deps.list();
    else {
      const { SerialPort } = await import('serialport');
      listed = await SerialPort.list();
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return listDevEntries(devDir, byId, `listing through serialport failed (${why}); listing /dev entries only`);
  }
  const ports = listed.map((p) => info(p.path, p, byId)).sort(byPath);
  return { ok: true, ports };
}

/** The fallback: tty{USB,ACM,AMA,S}N entries of devDir and the targets of /dev/serial/by-id links. */
async function listDevEntries(devDir: string, byId: Map<string, string>, warning: string): Promise<ListSerialPortsResult> {
  let names: string[];
  try {
    names = await readdir(devDir);
  } catch (err) {
    return { ok: false, reason: `${warning}, but ${devDir} cannot be read: ${err instanceof Error ? err.message : String(err)}` };
  }
  // by-id keys are real paths: name the entries by devDir's real path too.
  const base = await realpath(devDir).catch(() => devDir);
  const paths = new Set(names.filter((n) => TTY_NAME.test(n)).map((n) => join(base, n)));
  for (const target of byId.keys()) paths.add(target);
  const ports = [...paths].map((p) => info(p, {}, byId)).sort(byPath);
  return { ok: true, ports, warning };
}

/** Real device path -> its /dev/serial/by-id/ link (empty when the folder is absent: no USB serial adapter). */
async function readByIdLinks(devDir: string): Promise<Map<string, string>> {
  const dir = join(devDir, 'serial', 'by-id');
  const map = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (_err) {
    return map;
  }
  for (const name of names.sort()) {
    const link = join(dir, name);
    try {
      const target = await realpath(link);
      if (!map.has(target)) map.set(target, link);
    } catch (_err) {
      // A dangling link (adapter pulled while we read): not a port.
    }
  }
  return map;
}

function info(path: string, p: Omit<ListedPort, 'path'>, byId: Map<string, string>): SerialPortInfo {
  const out: { -readonly [K in keyof SerialPortInfo]: SerialPortInfo[K] } = { path };
  if (p.manufacturer) out.manufacturer = p.manufacturer;
  if (p.serialNumber) out.serialNumber = p.serialNumber;
  if (p.vendorId) out.vendorId = p.vendorId;
  if (p.productId) out.productId = p.productId;
  const link = byId.get(path);
  if (link !== undefined) out.byId = link;
  return out;
}

function byPath(a: SerialPortInfo, b: SerialPortInfo): number {
  return a.path.localeCompare(b.path, 'en', { numeric: true });
}

async function onPath(cmd: string, pathEnv: string): Promise<boolean> {
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === '') continue;
    try {
      await access(join(dir, cmd), constants.X_OK);
      return true;
    } catch (_err) {
      // not in this directory
    }
  }
  return false;
}
