/**
 * How a xenlab process or CLI is started: from its prebuilt bundle in `dist/` (built at
 * `npm install` and by `npm run build`, tools/scripts/build-bundles.mjs) when that bundle is
 * newer than every source file it was built from, else from the TypeScript source through tsx,
 * so an edited source runs without a rebuild. Every spawner and bin shim asks here.
 *
 * Plain JavaScript (typed by process-entry.d.mts) because the bin shims load it before any
 * TypeScript loader exists. Bundled into each entry too: import.meta.url then still names this
 * file (the build rewrites it), so the repository root is found the same way in both.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Entry name -> its source (relative to the repository root). The bundle is `dist/<name>.mjs`. */
export const ENTRIES = {
  xl: 'tools/src/xl/main.ts',
  xenlab: 'tools/src/xenlab/main.ts',
  'xenlab-ring': 'tools/src/ring-lab/main.ts',
  'xenlab-bench': 'tools/src/bench/pv-vs-hvm/cli.ts',
  xenstored: 'xenstore/src/main.ts',
  'xenstore-chmod': 'xenstore/src/cli/chmod.ts',
  'xenstore-exists': 'xenstore/src/cli/exists.ts',
  'xenstore-list': 'xenstore/src/cli/list.ts',
  'xenstore-ls': 'xenstore/src/cli/ls.ts',
  'xenstore-read': 'xenstore/src/cli/read.ts',
  'xenstore-rm': 'xenstore/src/cli/rm.ts',
  'xenstore-watch': 'xenstore/src/cli/watch.ts',
  'xenstore-write': 'xenstore/src/cli/write.ts',
  hypervisor: 'hypervisor/src/main.ts',
  dom0: 'dom0/src/main.ts',
  'pv-shim': 'domU-pv-kernel-shim/src/main.ts',
  'qemu-dm': 'qemu-dm/src/main.ts',
  /** A worker thread, not a process: its tsx fallback is WORKER_BOOTS' loader-registering file. */
  'pcpu-thread': 'hypervisor/src/sched/pcpu-thread.ts',
};

/** Worker entries: the .mjs that registers tsx inside the thread and imports the source. */
const WORKER_BOOTS = { 'pcpu-thread': 'hypervisor/src/sched/pcpu-thread-boot.mjs' };

/** This file is hypervisor/public/src/process-entry.mjs. */
export const repoRoot = () => fileURLToPath(new URL('../../../', import.meta.url));
export const MANIFEST = 'dist/manifest.json';

/**
 * The bundle for `name` if it is there and no source it was built from has changed since the
 * build began; else undefined. One manifest read and one stat per source file (~1 ms).
 */
export function freshBundle(name, root = repoRoot()) {
  if (process.env.XENLAB_NO_BUNDLE) return undefined;
  let m;
  try {
    m = JSON.parse(readFileSync(join(root, MANIFEST), 'utf8'));
  } catch {
    return undefined;
  }
  const e = m.entries?.[name];
  if (!e) return undefined;
  try {
    const out = join(root, e.out);
    if (statSync(out).mtimeMs < m.builtAt) return undefined;
    for (const f of e.inputs) if (statSync(join(root, f)).mtimeMs > m.builtAt) return undefined;
    return out;
  } catch {
    return undefined; // a source or the bundle went away
  }
}

let tsxLoader;
/** tsx's loader as a file URL, so `--import` works whatever the child's working directory. */
function tsx(root) {
  return (tsxLoader ??= pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href);
}

/**
 * The node arguments that start process `name`, before its own: `[bundle]` or `['--import', tsx, source]`,
 * after any in `XENLAB_NODE_ARGS` (space-separated node options for every process a host starts,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them; node refuses those in NODE_OPTIONS).
 */
export function processEntry(name) {
  const root = repoRoot();
  const bundle = freshBundle(name, root);
  const extra = (process.env.XENLAB_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
  return [...extra, ...(bundle ? [bundle] : ['--import', tsx(root), join(root, ENTRIES[name])])];
}

/** The module a worker thread for `name` starts from: its bundle, or the boot file that registers tsx. */
export function workerEntry(name) {
  const root = repoRoot();
  return pathToFileURL(freshBundle(name, root) ?? join(root, WORKER_BOOTS[name]));
}
