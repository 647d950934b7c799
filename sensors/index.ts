// Public face of sensors/: southbound drivers that turn serial lines, NMEA, Modbus RTU, Firmata boards and
// MQTT topics into Readings. Imports nothing from chain/, device/ or gateway/.
export * from './reading.ts';
export type * from './driver.ts';
export { DriverBase, RateLimitedLog, backoffDelay } from './base.ts';
