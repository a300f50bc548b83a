/**
 * `npx xenlab-bench` / `npm run bench -- pv-vs-hvm`: the same guest programs (guests/workloads/)
 * as PV and as HVM guests, several times each, with the counters that explain the difference,
 * written to DIR as results.json, results.csv, charts/ and report.html (docs/benchmarks.md).
 *
 *   xenlab-bench [--quick] [--out DIR] [--backend host|in-process] [--scenarios a,b]
 *                [--warmups N] [--reps N] [knobs] [--vs "knob=value,..."] [--no-png] [--no-progress]
 *   knobs: --ring-pages 1|2|4|8  --notify-holdoff on|off  --grant copy|map  --write-through on|off
 *          --hvm-disk pio|pio-multiple|dma  --ioreq-page on|off
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import type { BenchResult } from '../suite.ts';
import { HarnessChild, InProcessBackend, type Backend } from './backend.ts';
import { HostBackend, HostSession } from './host-backend.ts';
import { DEFAULT_SETTINGS, type DriverSettings, type GuestPath } from './protocol.ts';
import { writeReport, type WrittenReport } from './report.ts';
import { runBench, totalRuns, type BenchDoc, type Variant } from './runner.ts';
import { findScenarios } from './scenarios.ts';
import { fmt } from './charts.ts';

const PV_KEYS: ReadonlyArray<keyof DriverSettings> = ['ringPages', 'notifyHoldoff', 'grantMode', 'pvWriteThrough'];
const HVM_KEYS: ReadonlyArray<keyof DriverSettings> = ['hvmDiskMode', 'ioreqPage'];

/** Knob names on the command line and in --vs, and how each value is read. */
const KNOBS: Record<string, { key: keyof DriverSettings; parse: (v: string) => DriverSettings[keyof DriverSettings] }> = {
  'ring-pages': {
    key: 'ringPages',
    parse: (v) => {
      const n = Number(v);
      if (![1, 2, 4, 8].includes(n)) throw new InvalidArgumentError(`ring pages must be 1, 2, 4 or 8 (got '${v}')`);
      return n;
    },
  },
  'notify-holdoff': { key: 'notifyHoldoff', parse: (v) => onOff(v, 'notify-holdoff') },
  'write-through': { key: 'pvWriteThrough', parse: (v) => onOff(v, 'write-through') },
  grant: { key: 'grantMode', parse: (v) => oneOf(v, ['copy', 'map'] as const, 'grant') },
  'hvm-disk': { key: 'hvmDiskMode', parse: (v) => oneOf(v, ['pio', 'pio-multiple', 'dma'] as const, 'hvm-disk') },
  'ioreq-page': { key: 'ioreqPage', parse: (v) => onOff(v, 'ioreq-page') },
};

function onOff(v: string, what: string): boolean {
  if (v === 'on' || v === 'true' || v === '1') return true;
  if (v === 'off' || v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`${what} must be on or off (got '${v}')`);
}

function oneOf<T extends string>(v: string, allowed: readonly T[], what: string): T {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new InvalidArgumentError(`${what} must be one of ${allowed.join(', ')} (got '${v}')`);
}

function positiveInt(what: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min} (got '${v}')`);
    return n;
  };
}

/** "ring-pages=4,notify-holdoff=off" → the base settings with those changed. */
export function parseVariant(spec: string, base: DriverSettings): Variant {
  const settings = { ...base } as Record<keyof DriverSettings, unknown>;
  const changed = new Set<keyof DriverSettings>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq > 0 ? part.slice(0, eq) : part;
    const knob = KNOBS[name];
    if (!knob || eq < 0) throw new InvalidArgumentError(`--vs: '${part}' is not knob=value; knobs: ${Object.keys(KNOBS).join(', ')}`);
    settings[knob.key] = knob.parse(part.slice(eq + 1));
    if (settings[knob.key] !== base[knob.key]) changed.add(knob.key);
  }
  if (changed.size === 0) throw new InvalidArgumentError(`--vs '${spec}' changes nothing from the base settings`);
  const paths: GuestPath[] = [];
  if (PV_KEYS.some((k) => changed.has(k))) paths.push('pv');
  if (HVM_KEYS.some((k) => changed.has(k))) paths.push('hvm');
  return { label: spec.replace(/\s+/g, ''), settings: settings as unknown as DriverSettings, paths };
}

export interface CliOptions {
  quick: boolean;
  out: string;
  backend: 'in-process' | 'host';
  hostDir?: string;
  pcpus?: number;
  scenarios?: string[];
  warmups?: number;
  reps?: number;
  settings: DriverSettings;
  vs?: string;
  png: boolean;
  progress: boolean;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const program = new Command('xenlab-bench')
    .description('PV vs HVM: the same guest programs both ways, with the counters that explain the difference (docs/benchmarks.md)')
    .exitOverride()
    .option('--quick', 'small workloads, one warm-up, one repetition', false)
    .option('--out <dir>', 'output directory', 'bench-results/pv-vs-hvm')
    .addOption(
      new Option('--backend <kind>', 'what runs the guests: host = real domains on a xenlab host it boots (or --host-dir); in-process = the guests in one harness child, no host (the cleanest CPU comparison)')
        .choices(['host', 'in-process'])
        .default('host'),
    )
    .option('--host-dir <dir>', '--backend host: use the running host in this run directory (default: boot one)')
    .option('--pcpus <n>', '--backend host: pCPUs of the host it boots (default 2)', positiveInt('--pcpus', 1))
    .option('--scenarios <list>', 'comma-separated scenario names (default: all)', (v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--warmups <n>', 'warm-up runs per scenario and path (default 2; quick 1)', positiveInt('--warmups', 0))
    .option('--reps <n>', 'measured repetitions per scenario and path (default 5; quick 1)', positiveInt('--reps', 1))
    .option('--ring-pages <n>', 'PV: blkif ring pages (1, 2, 4, 8)', KNOBS['ring-pages']!.parse as (v: string) => number)
    .option('--notify-holdoff <on|off>', 'PV: notification hold-off', KNOBS['notify-holdoff']!.parse as (v: string) => boolean)
    .option('--grant <copy|map>', 'PV: blkback grant copy or grant map', KNOBS.grant!.parse as (v: string) => string)
    .option('--write-through <on|off>', 'PV: INT 13h writes flush (fdatasync) before returning', KNOBS['write-through']!.parse as (v: string) => boolean)
    .option('--hvm-disk <mode>', 'HVM: BIOS INT 13h mode: pio, pio-multiple, dma', KNOBS['hvm-disk']!.parse as (v: string) => string)
    .option('--ioreq-page <on|off>', 'HVM: carry exits through a real ioreq_t slot', KNOBS['ioreq-page']!.parse as (v: string) => boolean)
    .option('--vs <knobs>', 'a second settings variant to compare, e.g. "ring-pages=4,notify-holdoff=off"')
    .option('--no-png', 'SVG charts only')
    .option('--no-progress', 'no progress bar');
  program.parse(argv as string[], { from: 'user' });
  const o = program.opts<{
    quick: boolean; out: string; backend: 'in-process' | 'host'; hostDir?: string; pcpus?: number; scenarios?: string[]; warmups?: number; reps?: number;
    ringPages?: number; notifyHoldoff?: boolean; writeThrough?: boolean; grant?: DriverSettings['grantMode']; hvmDisk?: DriverSettings['hvmDiskMode']; ioreqPage?: boolean;
    vs?: string; png: boolean; progress: boolean;
  }>();
  const settings: DriverSettings = {
    ringPages: o.ringPages ?? DEFAULT_SETTINGS.ringPages,
    notifyHoldoff: o.notifyHoldoff ?? DEFAULT_SETTINGS.notifyHoldoff,
    grantMode: o.grant ?? DEFAULT_SETTINGS.grantMode,
    pvWriteThrough: o.writeThrough ?? DEFAULT_SETTINGS.pvWriteThrough,
    hvmDiskMode: o.hvmDisk ?? DEFAULT_SETTINGS.hvmDiskMode,
    ioreqPage: o.ioreqPage ?? DEFAULT_SETTINGS.ioreqPage,
  };
  return {
    quick: o.quick, out: o.out, backend: o.backend, hostDir: o.hostDir, pcpus: o.pcpus, scenarios: o.scenarios, warmups: o.warmups, reps: o.reps,
    settings, vs: o.vs, png: o.png, progress: o.progress,
  };
}

export function makeBackends(kind: CliOptions['backend'], hostDir?: string, pcpus?: number): Record<GuestPath, Backend> {
  if (kind === 'host') {
    const session = new HostSession({ runDir: hostDir, pcpus });
    return { pv: new HostBackend('pv', session), hvm: new HostBackend('hvm', session) };
  }
  const harness = new HarnessChild();
  return { pv: new InProcessBackend('pv', harness), hvm: new InProcessBackend('hvm', harness) };
}

export interface CliRun {
  doc: BenchDoc;
  written: WrittenReport;
  summary: string;
}

export async function benchMain(o: CliOptions, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<CliRun> {
  const base: Variant = { label: 'base', settings: o.settings, paths: ['pv', 'hvm'] };
  const variants = o.vs ? [base, parseVariant(o.vs, o.settings)] : [base];
  const scenarios = findScenarios(o.scenarios);
  const warmups = o.warmups ?? (o.quick ? 1 : 2);
  const repetitions = o.reps ?? (o.quick ? 1 : 5);
  const total = totalRuns({ scenarios, warmups, repetitions, variants });
  const bar = o.progress && process.stderr.isTTY ? new SingleBar({ format: 'xenlab-bench [{bar}] {value}/{total} runs | {label}', hideCursor: true, stream: process.stderr }) : null;
  bar?.start(total, 0, { label: 'starting' });
  let lastScenario = '';
  const backends = makeBackends(o.backend, o.hostDir, o.pcpus);
  // Interrupted: stop what the backends started (a harness child, a host the session booted).
  const onSignal = (sig: NodeJS.Signals) => {
    bar?.stop();
    log(`xenlab-bench: ${sig}: stopping the backends`);
    void Promise.allSettled([backends.pv.close(), backends.hvm.close()]).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const doc = await runBench({
    scenarios,
    profile: o.quick ? 'quick' : 'full',
    warmups,
    repetitions,
    variants,
    backends,
    onProgress: (done, _total, label) => {
      if (bar) bar.update(done, { label });
      else if (o.progress) {
        const sc = label.split(' ')[0]!;
        if (sc !== lastScenario) log(`xenlab-bench: ${label} (${done}/${total} runs)`);
        lastScenario = sc;
      }
    },
  }).finally(() => {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  const written = await writeReport(doc, resolve(o.out), { png: o.png });
  return { doc, written, summary: summarize(doc) };
}

export function summarize(doc: BenchDoc): string {
  const lines = [`PV vs HVM (${doc.mode}, ${doc.profile}, ${doc.repetitions} rep.; xenlab's model of Xen on this machine, not real Xen)`];
  for (const sc of doc.scenarios) {
    for (const c of sc.comparisons) {
      const get = (p: GuestPath) => sc.results.find((r) => r.path === p && r.variant === c.variant) ?? sc.results.find((r) => r.path === p && r.variant === 'base');
      const pv = get('pv');
      const hvm = get('hvm');
      const failed = (pv?.failures ?? 0) + (hvm?.failures ?? 0);
      lines.push(
        `  ${sc.name.padEnd(9)}${doc.variants.length > 1 ? ` [${c.variant}]` : ''} PV ${fmt(pv?.metric.median ?? NaN).padStart(9)}  HVM ${fmt(hvm?.metric.median ?? NaN).padStart(9)} ${sc.metric.unit.padEnd(6)} PV/HVM ${fmt(c.pvOverHvm)}${failed ? `  (${failed} failed runs)` : ''}`,
      );
    }
  }
  return lines.join('\n');
}

/** The bench suite contract (tools/src/bench/suite.ts): `npm run bench -- pv-vs-hvm [options]`. */
export async function run(argv: string[]): Promise<BenchResult> {
  const o = parseArgs(argv);
  const r = await benchMain(o);
  const targets: NonNullable<BenchResult['targets']> = {};
  for (const [name, t] of Object.entries(r.doc.targets)) targets[name] = { target: t.target, measured: t.measured, met: t.met ?? true };
  return {
    summary: `${r.summary}\nreport: ${r.written.html}`,
    measurements: Object.fromEntries(
      r.doc.scenarios.map((sc) => [sc.name, { unit: sc.metric.unit, results: sc.results.map((x) => ({ path: x.path, variant: x.variant, median: x.metric.median, mad: x.metric.mad })), comparisons: sc.comparisons }]),
    ),
    targets,
  };
}
