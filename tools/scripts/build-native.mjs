#!/usr/bin/env node
// Builds xenlab's one native addon (ring-buffers/native: mmap + futex) during `npm install`.
// On failure it says what is missing instead of leaving a bare node-gyp stack trace.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'ring-buffers', 'native');
const require = createRequire(import.meta.url);

// Up to date already? Then leave it: a rebuild deletes the addon first, which would break any
// xenlab process or test running meanwhile. `--force` rebuilds anyway.
const built = join(dir, 'build', 'Release', 'xenlab_shm.node');
if (!process.argv.includes('--force') && existsSync(built)) {
  const newest = Math.max(...['shm.c', 'binding.gyp'].map((f) => statSync(join(dir, f)).mtimeMs), statSync(process.execPath).mtimeMs);
  if (statSync(built).mtimeMs >= newest) {
    console.log('xenlab: shared-memory addon is up to date (npm run build:native -- --force to rebuild)');
    process.exit(0);
  }
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
} catch {
  fail('node-gyp is not installed (it is a devDependency: run `npm install` from the repository root).');
}
const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: dir, stdio: 'inherit' });
if (r.status !== 0) {
  const missing = [];
  for (const tool of ['make', 'cc', 'g++', 'python3']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  fail(
    'building the shared-memory addon (ring-buffers/native/shm.c) failed.\n' +
      (missing.length
        ? `  Missing build tools: ${missing.join(', ')}. On Debian: apt-get install -y build-essential python3\n`
        : '  The compiler ran but failed; see the messages above.\n') +
      "  node-gyp also needs Node's headers: they come with Debian's nodejs-dev or from `npm config set nodedir`.",
  );
}
console.log('xenlab: built ring-buffers/native/build/Release/xenlab_shm.node');

function fail(msg) {
  console.error(`\nxenlab install: ${msg}\n`);
  process.exit(1);
}
