// The logging port of the ledger. The ledger owns this interface; the gateway supplies a real
// implementation (structured JSON, human format on a TTY). The default does nothing.

export type LogFields = Record<string, unknown>;

/** Structured logger: a message plus fields. `child` adds fields (e.g. {module}) to every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** A logger that drops everything: the default where none is injected. */
export const nopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nopLogger;
  },
};
