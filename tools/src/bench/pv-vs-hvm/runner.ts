/**
 * The PV vs HVM runner: for every scenario, makes its disk, then runs it on both paths through
 * the backends — warm-ups first (results dropped), then the repetitions, interleaving PV and HVM
 * (and alternating which goes first) so a slow spell of this shared machine hits both — checks each guest's own result, and
 * summarises the headline value and the explanation counters per path and settings variant.
 * It returns plain data (`BenchDoc`); report.ts writes it out.
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, RunMode } from './backend.ts';
import { writeDisk } from './disk.ts';
import { explain, exitsByPort, perUnit, trapsByVector, EXPLAIN_KEYS, type Explanation } from './explain.ts';
import type { Counters, DriverSettings, GuestPath } from './protocol.ts';
import { sizingFor, type Metric, type Profile, type Scenario } from './scenarios.ts';
import { median, ratio, summarize, type Summary } from './stats.ts';

export const SCHEMA = 'xenlab-bench/pv-vs-hvm@1';
export const FRAMING =
  "These numbers measure xenlab's model of Xen on this machine, not real Xen: guest code runs on a software 80186, " +
  'and every hop (trap, exit, ioreq, notification, grant copy) costs what its TypeScript model costs here. ' +
  'Read the ratios and the counters, which follow Xen\'s mechanisms, rather than the absolute speeds.';

const WORKLOADS = fileURLToPath(new URL('../../../../guests/workloads/', import.meta.url));

/** A set of driver settings to run, and the paths it changes anything for. */
export interface Variant {
  label: string;
  settings: DriverSettings;
  paths: GuestPath[];
}

export interface Repetition {
  rep: number;
  ok: boolean;
  error?: string;
  /** The scenario's headline value (NaN when the run failed). */
  value: number;
  phaseMs: number;
  /** The guest's CPU time in the phase (protocol.ts `phaseCpuMs`; NaN if the backend cannot tell). */
  cpuMs: number;
  instructions: number;
  /** The guest's own INT 1Ah tick count for the phase (18.2 Hz), when it printed one. */
  ticks: number | null;
  totalMs: number;
  /** Units of work done (MiB, operations...: the scenario's `unit`). */
  units: number;
  counters: Counters;
  /** Explanation quantities per unit of work (see explain.ts). */
  explanation: Explanation;
}

export interface PathResult {
  path: GuestPath;
  variant: string;
  settings: DriverSettings;
  backend: string;
  metric: Summary;
  phaseMs: Summary;
  cpuMs: Summary;
  failures: number;
  repetitions: Repetition[];
  /** Median over the repetitions of each explanation quantity per unit of work. */
  explanation: Explanation;
  /** HVM: exits per unit by port; PV: trap bounces per unit by vector (median repetition's). */
  exitsByPort: Array<{ port: string; perUnit: number }>;
  trapsByVector: Array<{ vector: string; perUnit: number }>;
}

export interface Comparison {
  variant: string;
  /** PV median / HVM median of the headline value. */
  pvOverHvm: number;
  /** Which path did better on the headline value. */
  better: GuestPath | 'tie';
}

export interface ScenarioResult {
  name: string;
  description: string;
  image: string;
  params: number[];
  diskSectors: number;
  metric: Metric;
  /** What the explanation is normalised by ("MiB", "op"...). */
  unit: string;
  results: PathResult[];
  comparisons: Comparison[];
}

export interface BenchDoc {
  schema: typeof SCHEMA;
  started: string;
  finished: string;
  revision: string;
  machine: { cpus: number; model: string; node: string; platform: string; loadavg: number[] };
  mode: RunMode;
  profile: Profile;
  warmups: number;
  repetitions: number;
  framing: string;
  backends: Record<GuestPath, string>;
  /** Settings a backend could not honour (they were ignored for that path). */
  notes: string[];
  variants: Variant[];
  scenarios: ScenarioResult[];
  targets: Record<string, { target: string; measured: number; met: boolean | null; note: string }>;
}

export interface RunOptions {
  scenarios: Scenario[];
  profile: Profile;
  warmups: number;
  repetitions: number;
  variants: Variant[];
  backends: Record<GuestPath, Backend>;
  /** Where disks are made (a temp dir by default); removed afterwards. */
  workDir?: string;
  timeoutMs?: number;
  maxInstructions?: number;
  onProgress?: (done: number, total: number, label: string) => void;
}

export function totalRuns(o: Pick<RunOptions, 'scenarios' | 'warmups' | 'repetitions' | 'variants'>): number {
  const pathsPerScenario = o.variants.reduce((a, v) => a + v.paths.length, 0);
  return o.scenarios.length * pathsPerScenario * (o.warmups + o.repetitions);
}

export async function runBench(o: RunOptions): Promise<BenchDoc> {
  const started = new Date().toISOString();
  const loadavg = os.loadavg();
  const work = o.workDir ?? mkdtempSync(join(os.tmpdir(), 'xenlab-bench-'));
  const total = totalRuns(o);
  let done = 0;
  const scenarios: ScenarioResult[] = [];
  try {
    for (const b of Object.values(o.backends)) await b.start();
    for (const sc of o.scenarios) {
      const sizing = sizingFor(sc, o.profile, o.backends.pv.mode);
      const disk = join(work, `${sc.name}.img`);
      const image = join(WORKLOADS, sc.image);
      if (!sc.verifyDisk) writeDisk(disk, image, sizing.params, sizing.diskSectors);
      const reps = new Map<string, Repetition[]>();
      const key = (v: Variant, p: GuestPath) => `${v.label}\u0000${p}`;
      for (let i = 0; i < o.warmups + o.repetitions; i++) {
        const warm = i < o.warmups;
        for (const v of o.variants) {
          // Alternate which path goes first, so the order (a cold cache, a JIT still tiering up
          // for a new instruction mix) does not always favour the same one.
          for (const path of i % 2 === 0 ? v.paths : [...v.paths].reverse()) {
            o.onProgress?.(done, total, `${sc.name} ${path}${o.variants.length > 1 ? ` [${v.label}]` : ''} ${warm ? 'warm-up' : `rep ${i - o.warmups + 1}/${o.repetitions}`}`);
            if (sc.verifyDisk) writeDisk(disk, image, sizing.params, sizing.diskSectors, 'inverted');
            const run = await o.backends[path].run({
              path, disk, settings: v.settings,
              maxInstructions: o.maxInstructions ?? 4_000_000_000,
              timeoutMs: o.timeoutMs ?? (o.profile === 'quick' ? 60_000 : 600_000),
            });
            const diskProblem = run.ok && sc.verifyDisk ? sc.verifyDisk(disk, sizing.params) : null;
            const r = diskProblem ? { ...run, ok: false, error: `the disk image after the run is wrong: ${diskProblem}` } : run;
            done++;
            if (warm) continue;
            const list = reps.get(key(v, path)) ?? [];
            list.push(toRepetition(sc, sizing.params, list.length + 1, path, r));
            reps.set(key(v, path), list);
          }
        }
      }
      o.onProgress?.(done, total, `${sc.name} done`);
      const results: PathResult[] = [];
      for (const v of o.variants) {
        for (const path of v.paths) {
          results.push(summarizePath(path, v, o.backends[path].description, reps.get(key(v, path)) ?? []));
        }
      }
      scenarios.push({
        name: sc.name,
        description: sc.description,
        image: `guests/workloads/${sc.image}`,
        params: sizing.params,
        diskSectors: sizing.diskSectors,
        metric: sc.metric,
        unit: sc.unit.name,
        results,
        comparisons: compare(sc.metric, o.variants, results),
      });
    }
  } finally {
    for (const b of Object.values(o.backends)) await b.close();
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
  const mode = o.backends.pv.mode;
  return {
    schema: SCHEMA,
    started,
    finished: new Date().toISOString(),
    revision: revision(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg },
    mode,
    profile: o.profile,
    warmups: o.warmups,
    repetitions: o.repetitions,
    framing: FRAMING,
    backends: { pv: o.backends.pv.description, hvm: o.backends.hvm.description },
    notes: o.variants.flatMap((v) => v.paths.flatMap((p) => o.backends[p].unsupported(v.settings).map((n) => `${p.toUpperCase()} [${v.label}]: ${n} is not honoured by this backend`))),
    variants: o.variants,
    scenarios,
    targets: targets(scenarios, o.variants[0]?.label ?? 'base', mode),
  };
}

function toRepetition(sc: Scenario, params: number[], rep: number, path: GuestPath, r: Awaited<ReturnType<Backend['run']>>): Repetition {
  let error = r.ok ? undefined : r.error ?? 'failed';
  if (!error && r.bench) {
    const problem = sc.verify(r.bench, params);
    if (problem) error = `the guest's result is wrong: ${problem}`;
  }
  const ok = error === undefined && r.bench !== null && Number.isFinite(r.phaseMs);
  const units = ok ? sc.unit.of(r.bench!) : NaN;
  const phaseMs = r.phaseMs ?? NaN;
  const ticks = r.bench?.ticks !== undefined ? Number(r.bench.ticks) : null;
  return {
    rep,
    ok,
    ...(error ? { error: `${path}: ${error}${r.consoleTail ? ` (console: …${r.consoleTail.slice(-160).replace(/\r?\n/g, ' | ')})` : ''}` } : {}),
    value: ok ? sc.value({ phaseMs, bench: r.bench! }) : NaN,
    phaseMs: ok ? phaseMs : NaN,
    cpuMs: ok ? r.phaseCpuMs ?? NaN : NaN,
    instructions: r.phaseInstructions,
    ticks,
    totalMs: r.totalMs,
    units,
    counters: r.counters,
    explanation: withMissing(perUnit(explain(path, r.counters, r.phaseInstructions), units), r.missing),
  };
}

/** Quantities the backend could not measure are NaN (the report shows them as missing). */
function withMissing(e: Explanation, missing: readonly string[] | undefined): Explanation {
  for (const k of missing ?? []) if ((EXPLAIN_KEYS as readonly string[]).includes(k)) e[k as keyof Explanation] = NaN;
  return e;
}

function summarizePath(path: GuestPath, v: Variant, backend: string, reps: Repetition[]): PathResult {
  const ok = reps.filter((r) => r.ok);
  const explanation = {} as Explanation;
  for (const k of EXPLAIN_KEYS) explanation[k] = median(ok.map((r) => r.explanation[k]).filter((v) => Number.isFinite(v)));
  // The repetition closest to the median value stands for the by-port and by-vector breakdowns.
  const metric = summarize(reps.map((r) => r.value));
  const typical = [...ok].sort((a, b) => Math.abs(a.value - metric.median) - Math.abs(b.value - metric.median))[0];
  const units = typical?.units ?? NaN;
  return {
    path,
    variant: v.label,
    settings: v.settings,
    backend,
    metric,
    phaseMs: summarize(reps.map((r) => r.phaseMs)),
    cpuMs: summarize(reps.map((r) => r.cpuMs)),
    failures: reps.length - ok.length,
    repetitions: reps,
    explanation,
    exitsByPort: typical ? exitsByPort(typical.counters).map((e) => ({ port: e.port, perUnit: e.exits / units })) : [],
    trapsByVector: typical ? trapsByVector(typical.counters).map((t) => ({ vector: t.vector, perUnit: t.traps / units })) : [],
  };
}

function compare(metric: Metric, variants: Variant[], results: PathResult[]): Comparison[] {
  const base = variants[0]?.label;
  return variants.map((v) => {
    const find = (p: GuestPath) => results.find((r) => r.variant === v.label && r.path === p) ?? results.find((r) => r.variant === base && r.path === p);
    const pv = find('pv')?.metric.median ?? NaN;
    const hvm = find('hvm')?.metric.median ?? NaN;
    const q = ratio(pv, hvm);
    const better: Comparison['better'] = !Number.isFinite(q) || Math.abs(q - 1) < 0.005 ? 'tie' : (q > 1) === (metric.better === 'higher') ? 'pv' : 'hvm';
    return { variant: v.label, pvOverHvm: q, better };
  });
}

function targets(scenarios: ScenarioResult[], base: string, mode: RunMode): BenchDoc['targets'] {
  const out: BenchDoc['targets'] = {};
  const cmp = (name: string) => scenarios.find((s) => s.name === name)?.comparisons.find((c) => c.variant === base);
  const cpu = cmp('cpuloop');
  if (cpu) {
    const dev = Math.abs(cpu.pvOverHvm - 1);
    const loop = scenarios.find((s) => s.name === 'cpuloop')!;
    const cpuOf = (p: GuestPath) => loop.results.find((r) => r.path === p && r.variant === base)?.cpuMs.median ?? NaN;
    const cpuRatio = ratio(cpuOf('pv'), cpuOf('hvm'));
    // CPU time isolates what the target is about (the same CPU) from waits and from other
    // processes on a shared machine; host time is used when a backend has no CPU time.
    const byCpu = Number.isFinite(cpuRatio);
    const measured = byCpu ? cpuRatio : cpu.pvOverHvm;
    const cpuWhat = mode === 'host' ? "the vCPU's CPU time (its pCPU thread's, Linux schedstat)" : "the harness's CPU time";
    out['cpuloop PV/HVM within 5%'] = {
      target: `|PV/HVM - 1| <= 0.05, by ${byCpu ? cpuWhat : 'host time'}`,
      measured,
      met: Number.isFinite(measured) ? Math.abs(measured - 1) <= 0.05 : null,
      note:
        `same instructions on the same CPU; by median host time PV/HVM = ${Number.isFinite(dev) ? cpu.pvOverHvm.toFixed(3) : 'n/a'}, which other processes on this shared machine disturb` +
        (mode === 'host' ? ", and which also holds the pCPU thread's waits for a host CPU and the phase's edges (PV: trap bounces to the shim; see the cpuloop section)" : ''),
    };
  }
  for (const name of ['seqread', 'seqwrite', 'randread']) {
    const c = cmp(name);
    if (c) out[`${name} PV/HVM throughput`] = { target: 'reported with the counters that explain it', measured: c.pvOverHvm, met: null, note: 'see the explanation table' };
  }
  return out;
}

export function revision(): string {
  try {
    const rev = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() !== '';
    return dirty ? `${rev}+dirty` : rev;
  } catch {
    return 'unknown';
  }
}
