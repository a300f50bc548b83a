#!/usr/bin/env node
// Builds xenlab's one native addon (ring-buffers/native: mmap + futex) during `npm install`.
// On failure it says what is missing instead of leaving a bare node-gyp stack trace.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'ring-buffers', 'native');
const require = createRequire(import.meta.url);

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
