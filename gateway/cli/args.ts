// Command-line parsing for `datagate <command> [flags]`: one option table per command drives both the
// strict parser (node's util.parseArgs) and the --help text, so the help always matches what is accepted.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DatagateError } from '../../chain/index.ts';

const PROGRAM = 'datagate';

/** A bad command line: unknown flag or command, missing or malformed value. Exit code 2. */
export class UsageError extends DatagateError<'CLI_USAGE'> {
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('CLI_USAGE', message, fields);
    this.name = 'UsageError';
  }
}

export type OptionType = 'string' | 'boolean' | 'integer' | 'number';

/** One flag `--name`. Booleans without a default are false when absent; others are undefined. */
export interface OptionSpec {
  readonly type: OptionType;
  readonly description: string;
  readonly default?: string | number | boolean;
  /** One-letter alias, e.g. 'c' for -c. */
  readonly short?: string;
  /** What the value is called in the help, e.g. 'path' -> `--config <path>`. Default: the type. */
  readonly valueName?: string;
  /** For strings: the accepted values. */
  readonly choices?: readonly string[];
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

type BaseValue<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'string'
    ? S extends { readonly choices: readonly (infer C)[] }
      ? C
      : string
    : number;

/** The parsed flags of a command, keyed by flag name, typed from its option table. */
export type OptionValues<O extends OptionTable> = {
  -readonly [K in keyof O]: O[K] extends { readonly default: string | number | boolean }
    ? BaseValue<O[K]>
    : O[K]['type'] extends 'boolean'
      ? boolean
      : BaseValue<O[K]> | undefined;
};

/** A positional argument, listed in the help; all positionals after the first optional one are optional. */
export interface PositionalSpec {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
}

export interface OutputStream {
  write(chunk: string): unknown;
}

/** Streams and signal handed to commands; tests pass fakes. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Aborted when the process should stop (the bin script wires SIGINT/SIGTERM to it). */
  readonly signal: AbortSignal;
}

export interface CommandContext<O extends OptionTable> extends CliIo {
  readonly options: OptionValues<O>;
  readonly positionals: readonly string[];
}

export interface CommandSpec<O extends OptionTable> {
  readonly name: string;
  /** One line, shown in the command list. */
  readonly summary: string;
  /** What follows `datagate <name>` in the usage line; default generated from the tables. */
  readonly usage?: string;
  readonly options: O;
  readonly positionals?: readonly PositionalSpec[];
  /** Text printed after the options in --help (e.g. what the exit codes mean). */
  readonly notes?: string;
  /** Returns the exit code (default 0). Throw to fail: the CLI prints `error: <message> [CODE]` and exits 1. */
  readonly run: (ctx: CommandContext<O>) => Promise<number | void> | number | void;
}

export interface ParsedArgs<O extends OptionTable> {
  readonly options: OptionValues<O>;
  readonly positionals: readonly string[];
}

/** A command ready for runCli. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** The --help text, generated from the option table. */
  help(): string;
  /** Parses the arguments after the command name and runs it; --help prints the help. Returns the exit code. */
  invoke(args: readonly string[], io: CliIo): Promise<number>;
  /** The subcommands of a command group (defineCommandGroup). */
  readonly subcommands?: readonly Command[];
}

export interface DefinedCommand<O extends OptionTable> extends Command {
  /** Parses the arguments after the command name. Throws UsageError. */
  parse(args: readonly string[]): ParsedArgs<O>;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help' };

/** Defines a command from its option table; checks the table itself (names, shorts, defaults). */
export function defineCommand<const O extends OptionTable>(spec: CommandSpec<O>): DefinedCommand<O> {
  const table: Record<string, OptionSpec> = { ...spec.options, help: HELP };
  checkTable(spec.name, spec.options);
  const helpHint = `run "${PROGRAM} ${spec.name} --help"`;

  const parse = (args: readonly string[]): ParsedArgs<O> => {
    const config = parseArgsConfig(table);
    let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({ args: [...args], options: config, strict: true, allowPositionals: true });
    } catch (err) {
      throw diagnose(args, table, helpHint, err);
    }
    const options: Record<string, unknown> = {};
    for (const [name, opt] of Object.entries(spec.options)) {
      const raw = parsed.values[name];
      options[name] = raw === undefined ? (opt.default ?? (opt.type === 'boolean' ? false : undefined)) : convert(name, opt, raw, helpHint);
    }
    const declared = spec.positionals ?? [];
    if (parsed.positionals.length > declared.length) {
      const extra = parsed.positionals[declared.length] ?? '';
      throw new UsageError(`unexpected argument "${extra}"; ${helpHint}`, { argument: extra });
    }
    const missing = declared.slice(parsed.positionals.length).find((p) => p.required === true);
    if (missing) throw new UsageError(`missing argument <${missing.name}>; ${helpHint}`, { argument: missing.name });
    return { options: options as OptionValues<O>, positionals: parsed.positionals };
  };

  const help = (): string => commandHelp(spec, table);

  return {
    name: spec.name,
    summary: spec.summary,
    help,
    parse,
    async invoke(args, io) {
      if (wantsHelp(args)) {
        io.stdout.write(help());
        return 0;
      }
      const { options, positionals } = parse(args);
      const code = await spec.run({ ...io, options, positionals });
      return typeof code === 'number' ? code : 0;
    },
  };
}

function checkTable(command: string, options: OptionTable): void {
  const shorts = new Set(['h']);
  for (const [name, opt] of Object.entries(options)) {
    const where = `command "${command}", option --${name}`;
    if (!/^[a-z][a-z0-9-]*$/.test(name) || name === 'help') throw new TypeError(`${where}: invalid or reserved flag name`);
    if (opt.short !== undefined) {
      if (!/^[a-zA-Z]$/.test(opt.short) || shorts.has(opt.short)) throw new TypeError(`${where}: short -${opt.short} is invalid or taken`);
      shorts.add(opt.short);
    }
    if (opt.default !== undefined) {
      const want = opt.type === 'integer' || opt.type === 'number' ? 'number' : opt.type;
      if (typeof opt.default !== want) throw new TypeError(`${where}: default must be a ${want}`);
      if (opt.choices && !opt.choices.includes(String(opt.default))) throw new TypeError(`${where}: default is not one of the choices`);
    }
  }
}

function parseArgsConfig(table: Record<string, OptionSpec>): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, opt] of Object.entries(table)) {
    config[name] = { type: opt.type === 'boolean' ? 'boolean' : 'string', ...(opt.short ? { short: opt.short } : {}) };
  }
  return config;
}

function convert(name: string, opt: OptionSpec, raw: string | boolean | (string | boolean)[], helpHint: string): unknown {
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (typeof value === 'boolean' || opt.type === 'string') {
    if (opt.choices && typeof value === 'string' && !opt.choices.includes(value)) {
      throw new UsageError(`--${name} must be one of ${opt.choices.join(', ')} (got "${value}"); ${helpHint}`, { flag: `--${name}` });
    }
    return value;
  }
  const text = String(value).trim();
  const n = Number(text);
  const ok = text !== '' && (opt.type === 'integer' ? /^-?\d+$/.test(text) && Number.isSafeInteger(n) : Number.isFinite(n));
  if (!ok) throw new UsageError(`--${name} must be ${opt.type === 'integer' ? 'an integer' : 'a number'} (got "${String(value)}"); ${helpHint}`, { flag: `--${name}` });
  return n;
}

/** Turns a parseArgs failure into a UsageError naming the flag (node's own messages vary between versions). */
function diagnose(args: readonly string[], table: Record<string, OptionSpec>, helpHint: string, err: unknown): UsageError {
  const { tokens } = parseArgs({ args: [...args], options: parseArgsConfig(table), strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const opt = table[t.name];
    if (opt === undefined) {
      const guess = closest(t.name, Object.keys(table));
      const hint = guess === undefined ? '' : ` (did you mean --${guess}?)`;
      return new UsageError(`unknown flag ${t.rawName}${hint}; ${helpHint}`, { flag: t.rawName });
    }
    if (opt.type !== 'boolean' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
      return new UsageError(`flag ${t.rawName} needs a value (${t.rawName} <${valueName(opt)}>, or ${t.rawName}=VALUE for a value starting with "-"); ${helpHint}`, { flag: t.rawName });
    }
    if (opt.type === 'boolean' && t.inlineValue === true) {
      return new UsageError(`flag ${t.rawName} takes no value (got "${t.value ?? ''}"); ${helpHint}`, { flag: t.rawName });
    }
  }
  return new UsageError(`${err instanceof Error ? err.message : String(err)}; ${helpHint}`);
}

function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** The candidate nearest to `name` by edit distance, if it is close enough to be a typo. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = c.startsWith(name) && name.length >= 2 ? 1 : editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance where swapping two neighbours counts as one edit ("prot" -> "port"). */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (before[j - 2] ?? 0) + 1);
      row.push(d);
    }
    before = prev;
    prev = row;
  }
  return prev[b.length] ?? 0;
}

// ---- help text -----------------------------------------------------------------------------------------

function valueName(opt: OptionSpec): string {
  return opt.valueName ?? (opt.choices ? opt.choices.join('|') : opt.type);
}

function columns(rows: readonly [string, string][]): string {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}   ${right}`.trimEnd()).join('\n');
}

function commandHelp<O extends OptionTable>(spec: CommandSpec<O>, table: Record<string, OptionSpec>): string {
  const positionals = spec.positionals ?? [];
  const usage = spec.usage ?? ['[options]', ...positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`))].join(' ');
  const rows: [string, string][] = Object.entries(table).map(([name, opt]) => {
    const flag = `${opt.short ? `-${opt.short}, ` : '    '}--${name}${opt.type === 'boolean' ? '' : ` <${valueName(opt)}>`}`;
    const dflt = opt.default === undefined ? '' : ` (default: ${JSON.stringify(opt.default)})`;
    return [flag, `${opt.description}${dflt}`];
  });
  const parts = [`${PROGRAM} ${spec.name}: ${spec.summary}`, '', `Usage: ${PROGRAM} ${spec.name} ${usage}`];
  if (positionals.length > 0) parts.push('', 'Arguments:', columns(positionals.map((p) => [`<${p.name}>`, p.description])));
  parts.push('', 'Options:', columns(rows));
  if (spec.notes !== undefined) parts.push('', spec.notes);
  return parts.join('\n') + '\n';
}

function generalHelp(commands: readonly Command[]): string {
  const rows: [string, string][] = commands.map((c) => [c.name, c.summary]);
  rows.push(['help <command>', 'Show the help of a command']);
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Commands:',
    columns(rows),
    '',
    'Options:',
    columns([
      ['-h, --help', 'Show this help'],
      ['    --version', 'Print the version'],
    ]),
    '',
    `Run "${PROGRAM} <command> --help" for the options of a command.`,
    '',
  ].join('\n');
}

/** The version in package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

function formatError(err: unknown): string {
  if (!(err instanceof Error)) return `error: ${String(err)}\n`;
  const code = (err as { code?: unknown }).code;
  const [first = '', ...rest] = err.message.split('\n');
  const tag = typeof code === 'string' || typeof code === 'number' ? ` [${code}]` : '';
  const lines = [`error: ${first}${tag}`, ...rest.map((l) => `  ${l}`)];
  // An error without a code is a bug, not an operator mistake: keep its stack for the report.
  if (tag === '' && err.stack) lines.push(...err.stack.split('\n').slice(1));
  return lines.join('\n') + '\n';
}

function findCommand(commands: readonly Command[], name: string): Command {
  const found = commands.find((c) => c.name === name);
  if (found) return found;
  const guess = closest(name, commands.map((c) => c.name));
  const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
  throw new UsageError(`unknown command "${name}"${hint}; commands: ${commands.map((c) => c.name).join(', ')}; run "${PROGRAM} --help"`, { command: name });
}

/**
 * Runs `datagate <command> [flags]` for argv (without node and script). Handles --help, -h, `help <cmd>`,
 * `<cmd> --help` and --version. Returns the exit code: 0 ok, 2 usage error, 1 failure (printed to stderr as
 * `error: <message> [CODE]`). Never calls process.exit.
 */
export async function runCli(argv: readonly string[], commands: readonly Command[], io: Partial<CliIo> = {}): Promise<number> {
  const full: CliIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, signal: io.signal ?? new AbortController().signal };
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      full.stderr.write(generalHelp(commands));
      return 2;
    }
    if (first === '--help' || first === '-h') {
      full.stdout.write(generalHelp(commands));
      return 0;
    }
    if (first === '--version') {
      full.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    if (first === 'help') {
      const [topic] = rest;
      full.stdout.write(topic === undefined || topic === 'help' ? generalHelp(commands) : findCommand(commands, topic).help());
      return 0;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown flag ${first}; run "${PROGRAM} --help"`, { flag: first });
    return await findCommand(commands, first).invoke(rest, full);
  } catch (err) {
    full.stderr.write(formatError(err));
    return err instanceof UsageError ? 2 : 1;
  }
}

/**
 * A command with subcommands (`datagate key new`, `datagate key list`, ...): each subcommand is a Command
 * named "<group> <sub>"; `datagate <group>` alone or with --help lists them.
 */
export function defineCommandGroup(name: string, summary: string, subcommands: readonly Command[]): Command {
  const help = (): string => {
    const width = Math.max(...subcommands.map((c) => c.name.length));
    return [
      `Usage: ${PROGRAM} ${name} <command> [options]`,
      '',
      'Commands:',
      ...subcommands.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
      '',
      `Run "${PROGRAM} ${name} <command> --help" for the options of a command.`,
      '',
    ].join('\n');
  };
  return {
    name,
    summary,
    help,
    subcommands,
    async invoke(args, io) {
      const [sub, ...rest] = args;
      if (sub === undefined || sub === '--help' || sub === '-h') {
        (sub === undefined ? io.stderr : io.stdout).write(help());
        return sub === undefined ? 2 : 0;
      }
      const command = subcommands.find((c) => c.name === `${name} ${sub}`);
      if (command === undefined) {
        const names = subcommands.map((c) => c.name.slice(name.length + 1)).join(', ');
        throw new UsageError(`unknown ${name} command "${sub}"; commands: ${names}; run "${PROGRAM} ${name} --help"`);
      }
      return command.invoke(rest, io);
    },
  };
}
