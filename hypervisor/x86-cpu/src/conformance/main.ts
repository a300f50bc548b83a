/**
 * `npm run conformance`: runs the hardware-captured SingleStepTests on the CPU — every file in
 * `<data>/8086/v1_binary` on the 8086 model and `<data>/80286-real-mode-186/v1_real_mode` on the
 * 80186 model — and prints one line per opcode file, a line per set, and finally
 * `N passed, M failed`. Exits non-zero if anything failed.
 *
 * Data: `$XENLAB_CONFORMANCE_DIR`, else `<repo>/../shared/conformance` (CI clones the repo
 * beside `shared/`). Options: `--only <substr>` (e.g. `--only 8086/F6`), `--verbose N` (failures
 * shown per file, default 3), `--workers N` (default 2), `--general-only` (bypass the CPU's
 * fast path, to check the general executor on its own).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { runFile, type FileResult, type MetaEntry, type SuiteSpec } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');

function dataDir(): string {
  const d = process.env.XENLAB_CONFORMANCE_DIR ?? resolve(repoRoot, '../shared/conformance');
  if (!existsSync(d)) {
    console.error(`conformance: data directory ${d} not found (set XENLAB_CONFORMANCE_DIR or place shared/ beside the repo)`);
    process.exit(2);
  }
  return d;
}

function specs(dir: string, only: string | null): SuiteSpec[] {
  const out: SuiteSpec[] = [];
  const sets: Array<{ set: '8086' | '186'; files: string; meta: string; revocation: string | null }> = [
    { set: '8086', files: join(dir, '8086/v1_binary'), meta: join(dir, '8086/v1/metadata.json'), revocation: null },
    {
      set: '186', files: join(dir, '80286-real-mode-186/v1_real_mode'),
      meta: join(dir, '80286-real-mode-186/v1_real_mode/metadata.json'),
      revocation: join(dir, '80286-real-mode-186/revocation_list.txt'),
    },
  ];
  for (const s of sets) {
    const meta = JSON.parse(readFileSync(s.meta, 'utf8')) as { opcodes: Record<string, MetaEntry> };
    const revoked = s.revocation && existsSync(s.revocation)
      ? readFileSync(s.revocation, 'utf8').split('\n').map((l) => l.trim().toLowerCase()).filter((l) => /^[0-9a-f]{40}$/.test(l))
      : [];
    for (const f of readdirSync(s.files).filter((f) => f.endsWith('.MOO.gz')).sort()) {
      const key = `${s.set}/${f}`;
      if (only && !key.includes(only)) continue;
      const [opcode, regPart] = f.replace('.MOO.gz', '').split('.');
      out.push({
        set: s.set, file: join(s.files, f), opcode: opcode.toUpperCase(),
        reg: regPart === undefined ? null : Number(regPart), meta: meta.opcodes[opcode.toUpperCase()], revoked,
      });
    }
  }
  return out;
}

async function runInWorkers(all: SuiteSpec[], workers: number, verbose: number, onResult: (r: FileResult) => void): Promise<void> {
  if (workers <= 1) {
    for (const s of all) onResult(runFile(s, readFileSync(s.file), verbose));
    return;
  }
  // Largest first, handed out on demand, keeps both workers busy to the end.
  const queue = [...all];
  await Promise.all(
    Array.from({ length: workers }, () => new Promise<void>((res, rej) => {
      const w = new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: { verbose } });
      const next = (): void => {
        const s = queue.shift();
        if (s) w.postMessage(s);
        else void w.terminate().then(() => res());
      };
      w.on('message', (r: FileResult) => { onResult(r); next(); });
      w.on('error', rej);
      next();
    })),
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let only: string | null = null;
  let verbose = 3;
  let workers = 2;
  let fastPath = true;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') only = argv[++i] ?? null;
    else if (argv[i] === '--verbose') verbose = Number(argv[++i] ?? 3);
    else if (argv[i] === '--workers') workers = Number(argv[++i] ?? 2);
    else if (argv[i] === '--general-only') fastPath = false;
  }
  const all = specs(dataDir(), only).map((s) => ({ ...s, fastPath }));
  const started = Date.now();
  const results: FileResult[] = [];
  await runInWorkers(all, Math.min(workers, all.length), verbose, (r) => {
    results.push(r);
  });
  results.sort((a, b) => (a.set + a.file).localeCompare(b.set + b.file));
  const totals: Record<string, { p: number; f: number; s: number }> = {};
  for (const r of results) {
    const name = r.file.split('/').pop()!.replace('.MOO.gz', '');
    const t = (totals[r.set] ??= { p: 0, f: 0, s: 0 });
    t.p += r.passed; t.f += r.failed; t.s += r.skipped;
    const status = r.failed === 0 ? 'ok  ' : 'FAIL';
    console.log(`${status} ${r.set.padEnd(4)} ${name.padEnd(5)} ${r.passed}/${r.passed + r.failed}${r.skipped ? ` (${r.skipped} revoked)` : ''}`);
    for (const f of r.failures) console.log(`       ${f}`);
  }
  let p = 0, f = 0;
  for (const [set, t] of Object.entries(totals)) {
    console.log(`${set === '8086' ? '8086 model, 8086 data' : '80186 model, 80286 real-mode 186 data'}: ${t.p} passed, ${t.f} failed${t.s ? `, ${t.s} revoked` : ''}`);
    p += t.p; f += t.f;
  }
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
  console.log(`${p} passed, ${f} failed`);
  process.exit(f === 0 && p > 0 ? 0 : 1);
}

void main();
