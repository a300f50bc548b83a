#!/usr/bin/env node
// Start-up cost of xenlab's CLIs against a bare `node` in the same run: boots a host in a temp run
// directory, then times (spawn to first stdout byte) `node -e`, `xl list` and
// `xl create -c guests/hello.cfg` (the guest's first console byte), and stops the host. Twice:
// every process from source through tsx (XENLAB_NO_BUNDLE=1), then from the dist/ bundles.
//   node tools/scripts/measure-startup.mjs [N]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const n = Number(process.argv[2] ?? 7);
let env;
const bin = (name) => join(root, 'node_modules', '.bin', name);

function firstByte(args) {
  const t0 = performance.now();
  const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${args.join(' ')}: no output within 30 s`)), 30_000);
    let first;
    p.stdout.once('data', () => (first = performance.now() - t0));
    p.stdout.resume();
    p.once('exit', (c) => {
      clearTimeout(t);
      if (c !== 0 || first === undefined) reject(new Error(`${args.join(' ')} exited ${c}`));
      else resolve(first);
    });
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const mode of ['tsx', 'bundle']) {
  const runDir = mkdtempSync(join(tmpdir(), 'xenlab-startup-'));
  env = { ...process.env, XENLAB_RUN_DIR: runDir, XENLAB_NO_BUNDLE: mode === 'tsx' ? '1' : '' };
  const start = spawnSync(process.execPath, [bin('xenlab'), 'start', '--pcpus', '2', '--memory', '96', '--dom0-memory', '24'], { env, encoding: 'utf8' });
  if (start.status !== 0) {
    console.error(start.stdout, start.stderr);
    process.exit(1);
  }
  console.log(`-- ${mode}`);
  try {
    const r = { bare: [], list: [], create: [] };
    for (let i = 0; i < n; i++) {
      r.bare.push(await firstByte(['-e', 'process.stdout.write("x")']));
      r.list.push(await firstByte([bin('xl'), 'list']));
      r.create.push(await firstByte([bin('xl'), 'create', '-c', join(root, 'guests/hello.cfg')]));
    }
    const b = median(r.bare);
    for (const [k, xs] of Object.entries(r)) {
      console.log(`${k.padEnd(7)} median ${median(xs).toFixed(0).padStart(5)} ms  ${(median(xs) / b).toFixed(2)}x node -e  (${xs.map((x) => x.toFixed(0)).join(' ')})`);
    }
  } finally {
    spawnSync(process.execPath, [bin('xenlab'), 'stop'], { env, stdio: 'ignore' });
    rmSync(runDir, { recursive: true, force: true });
  }
}
