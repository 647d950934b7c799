// Types of refresh-dist.mjs (plain JavaScript, loaded by the `datagate` entry point before tsx is registered).
export declare const MAX_REFRESHED_FILES: number;
export declare function rewriteImports(code: string): string;
export declare function refreshDist(root: string): boolean;
