// A Firmata board emulator for integration tests: it sits on the simulator end of a PTY pair and speaks enough
// of the Firmata protocol (2.5) for johnny-five's Board to become ready over a real serial port: it announces
// itself like a freshly reset Arduino (REPORT_VERSION + firmware name) until the host talks, answers
// REPORT_VERSION, QUERY_FIRMWARE, CAPABILITY_QUERY, ANALOG_MAPPING_QUERY and PIN_STATE_QUERY, honours
// REPORT_ANALOG and SAMPLING_INTERVAL, and streams ANALOG_MESSAGEs with the values the test sets.
// Pin layout of an Arduino Uno: digital pins 0..13, analog pins 14..19 (A0..A5, channels 0..5).
// It drives the simulator end through a byte link (a `PtyPair` from ./pty.ts fits).

const REPORT_VERSION = 0xf9;
const START_SYSEX = 0xf0;
const END_SYSEX = 0xf7;
const QUERY_FIRMWARE = 0x79;
const CAPABILITY_QUERY = 0x6b;
const CAPABILITY_RESPONSE = 0x6c;
const ANALOG_MAPPING_QUERY = 0x69;
const ANALOG_MAPPING_RESPONSE = 0x6a;
const PIN_STATE_QUERY = 0x6d;
const PIN_STATE_RESPONSE = 0x6e;
const SAMPLING_INTERVAL = 0x7a;
const ANALOG_MESSAGE = 0xe0;
const REPORT_ANALOG = 0xc0;
const REPORT_DIGITAL = 0xd0;
const DIGITAL_MESSAGE = 0x90;
const PIN_MODE = 0xf4;
const SET_DIGITAL_PIN_VALUE = 0xf5;
const SYSTEM_RESET = 0xff;

const MODE_INPUT = 0x00;
const MODE_OUTPUT = 0x01;
const MODE_ANALOG = 0x02;
const MODE_PWM = 0x03;
const MODE_I2C = 0x06;
const MODE_PULLUP = 0x0b;

/** Data bytes that follow each channel-message command (the high nibble for 0x80..0xEF). */
const MIDI_DATA_BYTES: Record<number, number> = { [ANALOG_MESSAGE]: 2, [DIGITAL_MESSAGE]: 2, [REPORT_ANALOG]: 1, [REPORT_DIGITAL]: 1 };
const SYSTEM_DATA_BYTES: Record<number, number> = { [PIN_MODE]: 2, [SET_DIGITAL_PIN_VALUE]: 2, [REPORT_VERSION]: 0, [SYSTEM_RESET]: 0 };

/** The simulator end of a serial link: bytes out, bytes in (PtyPair's write/onData). */
export interface ByteLink {
  write(data: Uint8Array): Promise<void>;
  onData(listener: (chunk: Buffer) => void): void;
}

export interface FirmataBoardOptions {
  readonly firmware?: string;
  /** Initial sampling interval (ms) of analog reports; the host may change it with SAMPLING_INTERVAL. */
  readonly samplingMs?: number;
  /** How often the board announces itself until the host sends its first command. */
  readonly announceMs?: number;
}

/** One command the host sent, decoded far enough for assertions. */
export interface HostCommand {
  readonly type: string;
  readonly bytes: readonly number[];
}

const DIGITAL_PINS = 14;
const ANALOG_CHANNELS = 6;

/** Emulated board. Start with `FirmataBoardEmulator.start`, set analog values with `setAnalog`. */
export class FirmataBoardEmulator {
  private closed = false;
  private hung = false;
  private readonly analog = new Array<number>(ANALOG_CHANNELS).fill(0);
  private readonly reporting = new Set<number>();
  private readonly pinModes = new Map<number, number>();
  private samplingMs: number;
  private rx: number[] = [];
  private inSysex = false;
  private heardHost = false;
  private reportTimer: NodeJS.Timeout | null = null;
  private announceTimer: NodeJS.Timeout | null = null;
  /** Everything the host sent since the last reset, in order. */
  readonly commands: HostCommand[] = [];

  private constructor(
    private readonly link: ByteLink,
    private readonly opts: FirmataBoardOptions,
  ) {
    this.samplingMs = opts.samplingMs ?? 20;
  }

  /** Starts the board on `link`: it listens, and announces itself until the host talks. */
  static start(link: ByteLink, opts: FirmataBoardOptions = {}): FirmataBoardEmulator {
    const b = new FirmataBoardEmulator(link, opts);
    link.onData((d) => {
      if (!b.closed) b.onData(d);
    });
    b.reset();
    return b;
  }

  /** The raw value (0..1023) sent for an analog channel (A0 = 0). */
  setAnalog(channel: number, value: number): void {
    if (!Number.isInteger(channel) || channel < 0 || channel >= ANALOG_CHANNELS) throw new RangeError(`channel ${channel}`);
    if (!Number.isInteger(value) || value < 0 || value > 1023) throw new RangeError(`value ${value}`);
    this.analog[channel] = value;
  }

  /** Analog channels the host has enabled reporting for. */
  reportingChannels(): number[] {
    return [...this.reporting].sort((a, b) => a - b);
  }

  /**
   * Power-cycles the board (call it after the PTY pair was restarted): no reporting, pin modes cleared, and it
   * announces itself again until the host talks.
   */
  reset(): void {
    this.stopTimers();
    this.hung = false;
    this.reporting.clear();
    this.pinModes.clear();
    this.commands.length = 0;
    this.rx = [];
    this.inSysex = false;
    this.heardHost = false;
    this.samplingMs = this.opts.samplingMs ?? 20;
    this.announce();
    this.announceTimer = setInterval(() => this.announce(), this.opts.announceMs ?? 200);
    this.scheduleReports();
  }

  /** Hangs the board (a crashed sketch): the port stays open, nothing is sent until reset(). */
  hang(): void {
    this.hung = true;
  }

  /** Stops all timers; the board ignores the link from now on. */
  close(): void {
    this.closed = true;
    this.stopTimers();
  }

  private stopTimers(): void {
    if (this.reportTimer !== null) clearInterval(this.reportTimer);
    if (this.announceTimer !== null) clearInterval(this.announceTimer);
    this.reportTimer = null;
    this.announceTimer = null;
  }

  private scheduleReports(): void {
    if (this.reportTimer !== null) clearInterval(this.reportTimer);
    this.reportTimer = setInterval(() => this.sendReports(), this.samplingMs);
  }

  private send(bytes: readonly number[]): void {
    if (this.closed || this.hung) return;
    // While the PTY pair is stopped (board unplugged) writes fail: like a board without a host, nothing is sent.
    this.link.write(Buffer.from(bytes)).catch(() => {});
  }

  private announce(): void {
    if (this.heardHost) {
      if (this.announceTimer !== null) clearInterval(this.announceTimer);
      this.announceTimer = null;
      return;
    }
    this.sendVersion();
    this.sendFirmware();
  }

  private sendVersion(): void {
    this.send([REPORT_VERSION, 2, 5]);
  }

  private sendFirmware(): void {
    const name = Buffer.from(this.opts.firmware ?? 'StandardFirmata.ino', 'ascii');
    const body: number[] = [];
    for (const byte of name) body.push(byte & 0x7f, (byte >> 7) & 0x7f);
    this.send([START_SYSEX, QUERY_FIRMWARE, 2, 5, ...body, END_SYSEX]);
  }

  private sendCapabilities(): void {
    const out = [START_SYSEX, CAPABILITY_RESPONSE];
    for (let pin = 0; pin < DIGITAL_PINS + ANALOG_CHANNELS; pin++) {
      out.push(MODE_INPUT, 1, MODE_OUTPUT, 1, MODE_PULLUP, 1);
      if (pin >= DIGITAL_PINS) out.push(MODE_ANALOG, 10);
      if ([3, 5, 6, 9, 10, 11].includes(pin)) out.push(MODE_PWM, 8);
      if (pin === 18 || pin === 19) out.push(MODE_I2C, 1);
      out.push(0x7f);
    }
    out.push(END_SYSEX);
    this.send(out);
  }

  private sendAnalogMapping(): void {
    const out = [START_SYSEX, ANALOG_MAPPING_RESPONSE];
    for (let pin = 0; pin < DIGITAL_PINS + ANALOG_CHANNELS; pin++) out.push(pin >= DIGITAL_PINS ? pin - DIGITAL_PINS : 0x7f);
    out.push(END_SYSEX);
    this.send(out);
  }

  private sendReports(): void {
    for (const ch of this.reporting) {
      const v = this.analog[ch] ?? 0;
      this.send([ANALOG_MESSAGE | ch, v & 0x7f, (v >> 7) & 0x7f]);
    }
  }

  private onData(data: Buffer): void {
    for (const byte of data) {
      if (this.inSysex) {
        this.rx.push(byte);
        if (byte === END_SYSEX) {
          this.inSysex = false;
          this.onSysex(this.rx);
          this.rx = [];
        }
        continue;
      }
      if (byte === START_SYSEX) {
        this.inSysex = true;
        this.rx = [byte];
        continue;
      }
      if (byte & 0x80) this.rx = [byte];
      else if (this.rx.length > 0) this.rx.push(byte);
      else continue; // a data byte without a command: noise
      const cmd = this.rx[0] ?? 0;
      const need = cmd < 0xf0 ? MIDI_DATA_BYTES[cmd & 0xf0] : SYSTEM_DATA_BYTES[cmd];
      if (need === undefined) {
        this.rx = [];
        continue;
      }
      if (this.rx.length === need + 1) {
        const msg = this.rx;
        this.rx = [];
        this.onMessage(msg);
      }
    }
  }

  private record(type: string, bytes: readonly number[]): void {
    this.heardHost = true;
    this.commands.push({ type, bytes: [...bytes] });
  }

  private onMessage(msg: readonly number[]): void {
    const cmd = msg[0] ?? 0;
    if (cmd === REPORT_VERSION) {
      this.record('report-version', msg);
      this.sendVersion();
    } else if (cmd === SYSTEM_RESET) {
      this.record('system-reset', msg);
      this.reporting.clear();
    } else if (cmd === PIN_MODE) {
      this.record('pin-mode', msg);
      this.pinModes.set(msg[1] ?? 0, msg[2] ?? 0);
    } else if ((cmd & 0xf0) === REPORT_ANALOG) {
      this.record('report-analog', msg);
      if ((msg[1] ?? 0) !== 0) this.reporting.add(cmd & 0x0f);
      else this.reporting.delete(cmd & 0x0f);
    } else {
      this.record(`0x${cmd.toString(16)}`, msg);
    }
  }

  private onSysex(msg: readonly number[]): void {
    const cmd = msg[1] ?? 0;
    if (cmd === QUERY_FIRMWARE) {
      this.record('query-firmware', msg);
      this.sendFirmware();
    } else if (cmd === CAPABILITY_QUERY) {
      this.record('capability-query', msg);
      this.sendCapabilities();
    } else if (cmd === ANALOG_MAPPING_QUERY) {
      this.record('analog-mapping-query', msg);
      this.sendAnalogMapping();
    } else if (cmd === PIN_STATE_QUERY) {
      this.record('pin-state-query', msg);
      const pin = msg[2] ?? 0;
      this.send([START_SYSEX, PIN_STATE_RESPONSE, pin, this.pinModes.get(pin) ?? MODE_OUTPUT, 0, END_SYSEX]);
    } else if (cmd === SAMPLING_INTERVAL) {
      this.record('sampling-interval', msg);
      const ms = (msg[2] ?? 0) | ((msg[3] ?? 0) << 7);
      if (ms > 0) {
        this.samplingMs = ms;
        this.scheduleReports();
      }
    } else {
      // I2C_CONFIG, I2C_REQUEST and the rest: recorded, not answered (no peripherals on this board).
      this.record(`sysex-0x${cmd.toString(16)}`, msg);
    }
  }
}
