// The help texts of the compiled CLI, kept in dist/help.json beside the source state they were rendered
// from, so that `datagate --help`, `datagate help <command>` and `datagate <command> [<sub>] --help` answer
// without loading the node (the chain, LevelDB, the pipeline and the drivers take about a second to load on a
// quiet machine, several on a busy one). The texts are rendered by the CLI itself (gateway/cli/args.ts) whenever
// the compiled CLI runs and finds them missing or older than dist/, so they always match it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST_DIR, writeAtomically } from './build-state.mjs';

export const HELP_FILE = 'help.json';

const isHelpFlag = (arg) => arg === '--help' || arg === '-h';
const isWord = (arg) => /^[a-z][a-z0-9-]*$/.test(arg);

/**
 * The cache key of a plain help request (`--help`, `-h`, `help`, `help <command>`, `<command> --help`,
 * `<group> <sub> --help`), or null for any other command line, which then runs the CLI as usual.
 */
export function helpKey(argv) {
  if (argv.length === 1 && (isHelpFlag(argv[0]) || argv[0] === 'help')) return '--help';
  if (argv.length === 2 && argv[0] === 'help' && isWord(argv[1])) return argv[1] === 'help' ? '--help' : `${argv[1]} --help`;
  const words = argv.slice(0, -1);
  if (argv.length >= 2 && argv.length <= 3 && isHelpFlag(argv[argv.length - 1]) && words[0] !== 'help' && words.every(isWord)) return `${words.join(' ')} --help`;
  return null;
}

/** The cached help text for `key` if the cache was rendered from `state` (the dist/ stamp), else null. */
export function cachedHelp(root, key, state) {
  try {
    const cache = JSON.parse(readFileSync(join(root, DIST_DIR, HELP_FILE), 'utf8'));
    if (cache.files !== state.files || cache.newest !== state.newest) return null;
    return typeof cache.texts[key] === 'string' ? cache.texts[key] : null;
  } catch {
    return null;
  }
}

/** Stores `texts` (of renderHelp) as rendered from `state`. */
export function writeHelp(root, state, texts) {
  writeAtomically(join(root, DIST_DIR, HELP_FILE), JSON.stringify({ files: state.files, newest: state.newest, texts }) + '\n');
}

/** Every plain help text of `commands`, keyed by helpKey, as `runCli` (gateway/cli/args.ts) prints them. */
export async function renderHelp(commands, runCli) {
  const requests = [['--help']];
  for (const command of commands) {
    requests.push([command.name, '--help']);
    for (const sub of command.subcommands ?? []) requests.push([...sub.name.split(' '), '--help']);
  }
  const texts = {};
  for (const argv of requests) {
    let text = '';
    const stdout = { write: (chunk) => void (text += chunk) };
    const code = await runCli(argv, commands, { stdout, stderr: stdout });
    if (code === 0) texts[helpKey(argv)] = text;
  }
  return texts;
}
