// Types of build-state.mjs (plain JavaScript: the `datagate` entry point loads it before tsx is registered).
export declare const SOURCE_DIRS: readonly string[];
export declare const DIST_DIR: string;
export declare const STAMP_FILE: string;
export declare function sourceState(root: string): { files: number; newest: number };
export declare function distIsFresh(root: string): boolean;
