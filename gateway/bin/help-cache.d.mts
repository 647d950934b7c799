// Types of help-cache.mjs (plain JavaScript, loaded by the `datagate` entry point before tsx is registered).
import type { Command, CliIo } from '../cli/args.ts';
export declare const HELP_FILE: string;
export declare function helpKey(argv: readonly string[]): string | null;
export declare function cachedHelp(root: string, key: string, state: { files: number; newest: number }): string | null;
export declare function renderHelp(commands: readonly Command[], runCli: (argv: readonly string[], commands: readonly Command[], io: Partial<CliIo>) => Promise<number>): Promise<Record<string, string>>;
export declare function writeHelp(root: string, state: { files: number; newest: number }, texts: Record<string, string>): void;
