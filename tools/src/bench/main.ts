/**
 * `npm run bench -- <name> [options]`: runs one benchmark suite and writes its JSON results.
 *
 * Each suite is a module `tools/src/bench/<name>.ts` exporting `run(argv)`. Every suite measures
 * its subject against a baseline in the same run (this machine is shared and noisy), so the
 * ratios are what to read. Results go to `bench-results/<name>.json` (or `--out DIR`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execSync } from 'node:child_process';
import os from 'node:os';
import type { BenchSuite } from './suite.ts';

const SUITE_NAMES = ['ring', 'cpu', 'xenstore', 'hypervisor', 'pv-vs-hvm', 'hvm-io', 'pv-blk'] as const;
const SUITES: Record<string, () => Promise<BenchSuite>> = Object.fromEntries(
  SUITE_NAMES.map((n) => [n, () => import(`./${n}.ts`) as Promise<BenchSuite>]),
);

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const name = argv[0];
  if (!name || name === '--help' || name === '-h') {
    console.log(`usage: npm run bench -- <suite> [--out DIR] [suite options]\nsuites: ${Object.keys(SUITES).join(', ')}`);
    process.exit(name ? 0 : 2);
  }
  const load = SUITES[name];
  if (!load) {
    console.error(`bench: unknown suite '${name}'; known suites: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  let outDir = resolve('bench-results');
  const rest: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    // --out is the dispatcher's (its JSON) and also passed on: suites that write more (the
    // pv-vs-hvm report and charts) put it there too.
    if (argv[i] === '--out') {
      outDir = resolve(argv[++i] ?? '.');
      rest.push('--out', outDir);
    } else rest.push(argv[i]!);
  }
  let suite: BenchSuite;
  try {
    suite = await load();
  } catch (e) {
    console.error(`bench: suite '${name}' could not be loaded: ${(e as Error).message}`);
    process.exit(1);
  }
  const started = new Date().toISOString();
  const result = await suite.run(rest);
  const doc = {
    suite: name,
    started,
    finished: new Date().toISOString(),
    revision: revision(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}` },
    ...result,
  };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  console.log(result.summary);
  console.log(`\nwrote ${file}`);
}

function revision(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
