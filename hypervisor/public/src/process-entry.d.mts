/** Types for process-entry.mjs (plain JavaScript so the bin shims can load it without tsx). */
export declare const ENTRIES: {
  readonly xl: string;
  readonly xenlab: string;
  readonly 'xenlab-ring': string;
  readonly 'xenlab-bench': string;
  readonly xenstored: string;
  readonly 'xenstore-chmod': string;
  readonly 'xenstore-exists': string;
  readonly 'xenstore-list': string;
  readonly 'xenstore-ls': string;
  readonly 'xenstore-read': string;
  readonly 'xenstore-rm': string;
  readonly 'xenstore-watch': string;
  readonly 'xenstore-write': string;
  readonly hypervisor: string;
  readonly dom0: string;
  readonly 'pv-shim': string;
  readonly 'qemu-dm': string;
  readonly 'pcpu-thread': string;
};
export type EntryName = keyof typeof ENTRIES;
export declare const repoRoot: () => string;
export declare const MANIFEST: string;
/** Absolute path of `dist/<name>.mjs` when it is newer than all its sources, else undefined. */
export declare function freshBundle(name: EntryName, root?: string): string | undefined;
/** Node arguments that start process `name` (before its own arguments). */
export declare function processEntry(name: Exclude<EntryName, 'pcpu-thread'>): string[];
/** The module URL a worker thread for `name` starts from. */
export declare function workerEntry(name: 'pcpu-thread'): URL;
