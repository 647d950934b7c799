// Public face of sensors/: southbound drivers that turn serial lines, NMEA, Modbus RTU, Firmata boards and
// MQTT topics into Readings. Imports nothing from chain/, device/ or gateway/.
export * from './reading.ts';
export type * from './driver.ts';
export { DriverBase, RateLimitedLog, backoffDelay } from './base.ts';
export { LineFramer } from './line-framer.ts';
export type { FramedLines } from './line-framer.ts';
export { createLineParser, PARSE_REJECT_REASONS } from './formats.ts';
export type { LineFormatConfig, LineParser, ParseRejectReason } from './formats.ts';
export { nmeaChecksum, parseNmeaSentence } from './nmea.ts';
export { MAX_DEVICE_TS, MIN_DEVICE_TS, excerpt, getPath, parseDecimal, parseIsoTimestamp, readTimestamp, readTimestampText, splitPath } from './values.ts';
export type { NumberResult } from './values.ts';
export { SimulatorDriver, mulberry32, sampler, systemIntervalTimers, validateSimulatorConfig } from './simulator.ts';
export type { IntervalTimers, SimulatorConfig, SimulatorOptions, SimulatorShape, SimulatorStreamConfig } from './simulator.ts';
export { SerialLineDriver, classifyOpenError, systemTimeoutTimers, validateSerialConfig } from './serial.ts';
export type { SerialLineConfig, SerialLineOptions, SerialOpenOptions, SerialPortFactory, SerialPortLike, TimeoutTimers } from './serial.ts';
export { UDEVADM_MISSING, listSerialPorts } from './serial-ports.ts';
export type { ListSerialPortsDeps, ListSerialPortsResult, ListedPort, SerialPortInfo } from './serial-ports.ts';
export { ModbusRequestError, ModbusRtuDriver, decodeModbusValue, modbusSerialOpener, planModbusBatches, validateModbusConfig } from './modbus.ts';
export type { ModbusBatch, ModbusDeps, ModbusDeviceConfig, ModbusFailure, ModbusMaster, ModbusOpener, ModbusPortOptions, ModbusRegisterConfig, ModbusRtuConfig, ModbusTable, ModbusValueType } from './modbus.ts';
export { FirmataDriver, validateFirmataConfig } from './firmata.ts';
export type { FirmataConfig, FirmataDeps, FirmataSensorConfig, FiveBoard, FiveComponent, FiveIo, FiveModule } from './firmata.ts';
export { MqttDriver, SESSION_EXPIRY_SEC, validateMqttConfig } from './mqtt.ts';
export type { MqttDriverConfig, MqttDriverOptions } from './mqtt.ts';
export { MQTT_REJECT_REASONS } from './mqtt-topics.ts';
export type { MqttRejectReason, MqttSubscription } from './mqtt-topics.ts';
export { startEmbeddedBroker } from './mqtt-broker.ts';
export type { EmbeddedBroker, EmbeddedBrokerOptions } from './mqtt-broker.ts';
