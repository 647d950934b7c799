// Types of build-state.mjs (plain JavaScript: the `datagate` entry point loads it before tsx is registered).
export declare const SOURCE_DIRS: readonly string[];
export declare const DIST_DIR: string;
export declare const STAMP_FILE: string;
export declare const BUILD_CONFIGS: readonly string[];
export interface SourceState {
  files: number;
  newest: number;
  mtimes: Record<string, number>;
}
export declare function sourceState(root: string): SourceState;
export declare function builtState(root: string): SourceState | null;
export declare function distIsFresh(root: string): boolean;
export declare function writeAtomically(path: string, text: string): void;
