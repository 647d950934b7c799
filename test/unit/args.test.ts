// Unit tests of the CLI helper: strict flag parsing into typed values, usage errors that name the flag,
// help generated from the option table, dispatch and exit codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { UsageError, defineCommand, runCli, type Command } from '../../gateway/cli/args.ts';
import { DatagateError } from '../../chain/index.ts';

function sink(): { write(s: string): boolean; text: () => string } {
  let out = '';
  return {
    write(s: string) {
      out += s;
      return true;
    },
    text: () => out,
  };
}

const seen: unknown[] = [];

const serve = defineCommand({
  name: 'serve',
  summary: 'Run a dummy server',
  options: {
    config: { type: 'string', short: 'c', valueName: 'path', description: 'Config file', default: 'datagate.json' },
    port: { type: 'integer', description: 'Port to listen on', default: 8545 },
    ratio: { type: 'number', description: 'A fraction' },
    'log-level': { type: 'string', choices: ['debug', 'info', 'warn', 'error'], description: 'Lowest level logged' },
    verbose: { type: 'boolean', short: 'v', description: 'Say more' },
  },
  positionals: [{ name: 'dir', description: 'Working directory' }],
  run(ctx) {
    // Compile-time checks of the typed result.
    const port: number = ctx.options.port;
    const config: string = ctx.options.config;
    const level: 'debug' | 'info' | 'warn' | 'error' | undefined = ctx.options['log-level'];
    const verbose: boolean = ctx.options.verbose;
    const ratio: number | undefined = ctx.options.ratio;
    seen.push({ port, config, level, verbose, ratio, positionals: ctx.positionals });
    ctx.stdout.write('served\n');
  },
});

const fail = defineCommand({
  name: 'fail',
  summary: 'Always fails',
  options: {},
  run() {
    throw new DatagateError('STORE_CORRUPT', 'the store is corrupt; restore a backup');
  },
});

const exit3 = defineCommand({ name: 'three', summary: 'Exits 3', options: {}, run: () => 3 });

const commands: Command[] = [serve, fail, exit3];

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await runCli(argv, commands, { stdout, stderr });
  return { code, out: stdout.text(), err: stderr.text() };
}

test('flags parse into typed values with defaults', () => {
  assert.deepEqual(serve.parse([]), {
    options: { config: 'datagate.json', port: 8545, ratio: undefined, 'log-level': undefined, verbose: false },
    positionals: [],
  });
  const p = serve.parse(['--port', '9000', '-c', 'x.json', '--log-level=warn', '-v', '--ratio', '0.5', 'here']);
  assert.deepEqual(p.options, { config: 'x.json', port: 9000, ratio: 0.5, 'log-level': 'warn', verbose: true });
  assert.deepEqual(p.positionals, ['here']);
});

test('an unknown flag is a UsageError (CLI_USAGE) naming the flag and the help command', () => {
  assert.throws(
    () => serve.parse(['--prot', '9000']),
    (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.ok(err instanceof DatagateError);
      assert.equal(err.code, 'CLI_USAGE');
      assert.ok(err.message.includes('--prot'), err.message);
      assert.ok(err.message.includes('did you mean --port'), err.message);
      assert.ok(err.message.includes('run "datagate serve --help"'), err.message);
      return true;
    },
  );
  assert.throws(() => serve.parse(['-x']), (err: unknown) => err instanceof UsageError && err.message.includes('-x'));
});

test('missing, ambiguous and malformed values are UsageErrors naming the flag', () => {
  const cases: [string[], string][] = [
    [['--config'], '--config'],
    [['--config', '--verbose'], '--config'],
    [['--port', 'abc'], '--port'],
    [['--port', '1.5'], '--port'],
    [['--ratio', 'x'], '--ratio'],
    [['--log-level', 'loud'], '--log-level'],
    [['--verbose=yes'], '--verbose'],
    [['a', 'b'], '"b"'],
  ];
  for (const [args, named] of cases) {
    assert.throws(
      () => serve.parse(args),
      (err: unknown) => err instanceof UsageError && err.code === 'CLI_USAGE' && err.message.includes(named),
      args.join(' '),
    );
  }
});

test('--help lists every option with its description and default, and exits 0', async () => {
  const { code, out } = await cli('serve', '--help');
  assert.equal(code, 0);
  for (const [name, opt] of Object.entries({ ...serveOptions(), help: { description: 'Show this help' } })) {
    assert.ok(out.includes(`--${name}`), `help lacks --${name}`);
    assert.ok(out.includes(opt.description), `help lacks the description of --${name}`);
  }
  assert.ok(out.includes('-c, --config <path>'));
  assert.ok(out.includes('(default: 8545)'));
  assert.ok(out.includes('(default: "datagate.json")'));
  assert.ok(out.includes('<dir>'));
  assert.equal((await cli('help', 'serve')).out, out);
  assert.equal((await cli('serve', '--prot', '-h')).out, out);
  assert.deepEqual(await cli('serve', '-h'), { code: 0, out, err: '' });
});

function serveOptions(): Record<string, { description: string }> {
  return { config: { description: 'Config file' }, port: { description: 'Port to listen on' }, ratio: { description: 'A fraction' }, 'log-level': { description: 'Lowest level logged' }, verbose: { description: 'Say more' } };
}

test('runCli dispatches and returns exit codes 0, 1, 2 and the command’s own', async () => {
  seen.length = 0;
  const ok = await cli('serve', '--port', '1234');
  assert.deepEqual(ok, { code: 0, out: 'served\n', err: '' });
  assert.deepEqual(seen, [{ port: 1234, config: 'datagate.json', level: undefined, verbose: false, ratio: undefined, positionals: [] }]);

  const usage = await cli('serve', '--prot', '1');
  assert.equal(usage.code, 2);
  assert.ok(usage.err.startsWith('error: ') && usage.err.includes('--prot') && usage.err.includes('[CLI_USAGE]'), usage.err);

  const runtime = await cli('fail');
  assert.equal(runtime.code, 1);
  assert.equal(runtime.err, 'error: the store is corrupt; restore a backup [STORE_CORRUPT]\n');

  assert.equal((await cli('three')).code, 3);
});

test('top level: --help, help, --version, unknown command, no command', async () => {
  const help = await cli('--help');
  assert.equal(help.code, 0);
  for (const c of commands) assert.ok(help.out.includes(c.name) && help.out.includes(c.summary));
  assert.equal((await cli('help')).out, help.out);
  assert.equal((await cli('-h')).out, help.out);

  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.deepEqual(await cli('--version'), { code: 0, out: `${pkg.version}\n`, err: '' });

  const unknown = await cli('serv');
  assert.equal(unknown.code, 2);
  assert.ok(unknown.err.includes('"serv"') && unknown.err.includes('serve, fail, three') && unknown.err.includes('did you mean "serve"'), unknown.err);
  assert.equal((await cli('help', 'nope')).code, 2);
  assert.equal((await cli('--bogus')).code, 2);
  const none = await cli();
  assert.equal(none.code, 2);
  assert.ok(none.err.includes('Usage: datagate <command>'));
});

test('option tables are checked when a command is defined', () => {
  assert.throws(() => defineCommand({ name: 'x', summary: '', options: { help: { type: 'boolean', description: '' } }, run() {} }), TypeError);
  assert.throws(() => defineCommand({ name: 'x', summary: '', options: { a: { type: 'boolean', short: 'h', description: '' } }, run() {} }), TypeError);
  assert.throws(() => defineCommand({ name: 'x', summary: '', options: { a: { type: 'integer', default: '5', description: '' } }, run() {} }), TypeError);
});
