#!/usr/bin/env node
// Bundles every xenlab CLI and process entry point (the table in
// hypervisor/public/src/process-entry.mjs) with esbuild into dist/<name>.mjs: ESM for Node 20,
// our workspace code inlined, Node built-ins and npm packages left as imports (resolved from the
// repository's node_modules), the native addon loaded at run time as before. Writes
// dist/manifest.json (build start time, each bundle's source files) so processEntry() uses a
// bundle only while it is newer than all of them. Run by `npm install` and `npm run build`.
//
// Each source's import.meta.url is rewritten to its own URL relative to the bundle, so paths
// computed from it (the addon, guest images, sibling entry points) mean what they meant in source.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENTRIES, MANIFEST } from '@xenlab/xen-public/process-entry';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('xenlab: esbuild is not installed (a devDependency): run `npm install` at the repository root. Entry points will run through tsx.');
  process.exit(1);
}

const importMetaUrl = {
  name: 'xenlab-import-meta-url',
  setup(b) {
    // npm packages stay external (they load from node_modules at run time), except msgpackr:
    // inlined, it costs no module resolution at start (see `define` below).
    b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@xenlab/') || a.path === 'msgpackr' || a.kind === 'entry-point' ? undefined : { path: a.path, external: true }));
    b.onLoad({ filter: /\.(ts|mjs)$/ }, (a) => {
      if (a.path.includes(`${sep}node_modules${sep}`)) return undefined;
      const src = readFileSync(a.path, 'utf8');
      const rel = relative(dist, a.path).split(sep).join('/');
      const contents = src.replace(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
      return { contents, loader: extname(a.path) === '.ts' ? 'ts' : 'js' };
    });
  },
};

const builtAt = Date.now(); // before any source is read: a file saved during the build counts as newer
const t0 = performance.now();
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const r = await esbuild.build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, src]) => [name, join(root, src)])),
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  plugins: [importMetaUrl],
  // msgpackr would otherwise load its optional native string extractor (msgpackr-extract,
  // found by scanning for prebuilt binaries), ~10 ms of every process start; our frames are
  // small control messages (bulk data goes through rings), which its JavaScript decodes as fast.
  define: { 'process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED': '"true"' },
});
const entries = {};
for (const [out, o] of Object.entries(r.metafile.outputs)) {
  if (!o.entryPoint) continue;
  const name = Object.keys(ENTRIES).find((n) => join(root, ENTRIES[n]) === join(root, o.entryPoint));
  if (!name) throw new Error(`build-bundles: output ${out} has no entry (${o.entryPoint})`);
  entries[name] = { out, inputs: Object.keys(o.inputs).filter((f) => !f.includes('node_modules/')).sort() };
}
writeFileSync(join(root, MANIFEST), JSON.stringify({ builtAt, entries }, null, 1) + '\n');
console.log(`xenlab: bundled ${Object.keys(entries).length} entry points into dist/ in ${(performance.now() - t0).toFixed(0)} ms (npm run build to rebuild)`);
