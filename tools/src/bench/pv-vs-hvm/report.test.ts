import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { breakdownSpec, fmt, scenarioSpec } from './charts.ts';
import { explain, perUnit } from './explain.ts';
import { parseArgs, parseVariant, summarize as summaryText } from './index.ts';
import { DEFAULT_SETTINGS, type Counters } from './protocol.ts';
import { narrative, toCsv, toHtml, writeReport } from './report.ts';
import { FRAMING, SCHEMA, type BenchDoc, type PathResult, type Repetition } from './runner.ts';
import { summarize } from './stats.ts';

function rep(i: number, value: number, path: 'pv' | 'hvm'): Repetition {
  const counters: Counters = path === 'pv'
    ? { 'trap.int13': 17, 'blkfront.requests': 33, 'blkfront.notificationsSent': 17, 'blkback.notificationsSent': 33, 'blkback.notificationsSuppressed': 2, 'grant.granted': 258, 'grant.ended': 258, 'gntcopy.calls': 33, 'gntcopy.ops': 258, 'gntcopy.bytes': 1048576, 'evtchn.frontToBack': 17, 'evtchn.backToFront': 33 }
    : { 'exits.total': 259, 'exits.io': 259, 'exits.ioreq': 259, 'exit.pio:1f7': 51, 'exit.pio:c000': 51, 'ata.commands': 17, 'ata.sectorsRead': 2048 };
  return { rep: i, ok: true, value, phaseMs: 1000 / value, cpuMs: 900 / value, instructions: 9000, ticks: 0, totalMs: 20, units: 1, counters, explanation: perUnit(explain(path, counters, 9000), 1) };
}

function pathResult(path: 'pv' | 'hvm', values: number[]): PathResult {
  const reps = values.map((v, i) => rep(i + 1, v, path));
  return {
    path, variant: 'base', settings: DEFAULT_SETTINGS, backend: `test ${path}`,
    metric: summarize(values), phaseMs: summarize(reps.map((r) => r.phaseMs)), cpuMs: summarize(reps.map((r) => r.cpuMs)), failures: 0, repetitions: reps,
    explanation: reps[0]!.explanation,
    exitsByPort: path === 'hvm' ? [{ port: 'pio:1f7', perUnit: 51 }, { port: 'pio:c000', perUnit: 51 }] : [],
    trapsByVector: path === 'pv' ? [{ vector: 'int13', perUnit: 17 }] : [],
  };
}

function doc(): BenchDoc {
  return {
    schema: SCHEMA, started: '2026-01-01T00:00:00.000Z', finished: '2026-01-01T00:01:00.000Z', revision: 'abc1234',
    machine: { cpus: 2, model: 'test cpu', node: 'v20', platform: 'linux', loadavg: [1, 1, 1] },
    mode: 'in-process', profile: 'quick', warmups: 0, repetitions: 3, framing: FRAMING,
    backends: { pv: 'test pv', hvm: 'test hvm' },
    notes: [],
    variants: [{ label: 'base', settings: DEFAULT_SETTINGS, paths: ['pv', 'hvm'] }],
    scenarios: [{
      name: 'seqread', description: 'sequential read <test>', image: 'guests/workloads/seqread.bin', params: [2048, 127], diskSectors: 2112,
      metric: { name: 'throughput', unit: 'MiB/s', better: 'higher' }, unit: 'MiB',
      results: [pathResult('pv', [80, 100, 90]), pathResult('hvm', [50, 40, 45])],
      comparisons: [{ variant: 'base', pvOverHvm: 2, better: 'pv' }],
    }],
    targets: { 'seqread PV/HVM throughput': { target: 'reported', measured: 2, met: null, note: 'n' } },
  };
}

describe('report generation', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('CSV: a median row per path, then one row per repetition, numbers matching the document', () => {
    const lines = toCsv(doc()).trim().split('\n');
    const head = lines[0]!.split(',');
    expect(head.slice(0, 4)).toEqual(['kind', 'scenario', 'path', 'variant']);
    expect(lines).toHaveLength(1 + 2 * (1 + 3));
    const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((c, i) => [head[i], c])));
    const pvMedian = rows.find((r) => r.kind === 'median' && r.path === 'pv')!;
    expect(Number(pvMedian.value)).toBe(90);
    expect(Number(pvMedian.spread_mad)).toBe(10);
    expect(rows.filter((r) => r.kind === 'rep' && r.path === 'hvm').map((r) => Number(r.value))).toEqual([50, 40, 45]);
    expect(Number(rows.find((r) => r.kind === 'median' && r.path === 'hvm')!.vmExits_per_unit)).toBe(259);
    expect(Number(rows.find((r) => r.kind === 'median' && r.path === 'pv')!.trapBounces_per_unit)).toBe(17);
  });

  it('CSV quotes cells with commas and quotes', () => {
    const d = doc();
    d.scenarios[0]!.results[0]!.repetitions[0] = { ...d.scenarios[0]!.results[0]!.repetitions[0]!, ok: false, error: 'bad, "really"' };
    expect(toCsv(d)).toContain('"bad, ""really"""');
  });

  it('HTML: framing, every scenario, numbers and the explanation on one page, text escaped', () => {
    const html = toHtml(doc(), new Map([['seqread', '<svg id="chart-seqread"></svg>'], ['cost-breakdown', '<svg id="breakdown"></svg>']]));
    expect(html).toContain('xenlab&#39;s model of Xen on this machine, not real Xen');
    expect(html).toContain('id="seqread"');
    expect(html).toContain('<svg id="chart-seqread">');
    expect(html).toContain('<svg id="breakdown">');
    expect(html).toContain('sequential read &lt;test&gt;');
    expect(html).not.toContain('sequential read <test>');
    expect(html).toMatch(/PV 90 vs HVM 45 MiB\/s: PV\/HVM = 2\.00, PV is better than HVM/);
    expect(html).toContain('pio:1f7 51');
  });

  it('narrative names exits, ioreqs, trap bounces, notifications and grants per unit', () => {
    const text = narrative(doc(), doc().scenarios[0]!);
    expect(text).toContain('HVM took 259 VM exits, 259 of them ioreqs to qemu-dm');
    expect(text).toContain('PV took 17 trap bounces (int13 17), 33 ring requests, 50 notifications sent and 2 suppressed by hold-off');
    // phase 1000/90 ms over 17 bounces; 1000/45 ms over 259 exits (the test doc's medians, 1 MiB per repetition)
    expect(text).toContain(`PV ${fmt((1e6 / 90) / 17)} us per trap bounce`);
    expect(text).toContain(`HVM ${fmt((1e6 / 45) / 259)} us per exit`);
  });

  it('host mode: the CPU loop is judged by the vCPU\'s CPU time, and host time is split into pCPU time, host-CPU wait and the edges', () => {
    const loopRep = (path: 'pv' | 'hvm', i: number, phaseMs: number, waitMs: number): Repetition => {
      const counters: Counters = path === 'pv'
        ? { 'trap.int1a': 2, 'trap.int10': 6, 'pcpu.run_ns': (phaseMs - 20) * 1e6, 'pcpu.cpu_ns': 400e6, 'pcpu.os_wait_ns': waitMs * 1e6 }
        : { 'exits.total': 36, 'exits.ioreq': 29, 'pcpu.run_ns': (phaseMs - 5) * 1e6, 'pcpu.cpu_ns': 404e6, 'pcpu.os_wait_ns': waitMs * 1e6 };
      return { rep: i, ok: true, value: phaseMs, phaseMs, cpuMs: counters['pcpu.cpu_ns']! / 1e6, instructions: 44e6, ticks: 8, totalMs: 900, units: 4, counters, explanation: perUnit(explain(path, counters, 44e6), 4) };
    };
    const loop = (path: 'pv' | 'hvm', phases: number[], wait: number): PathResult => {
      const reps = phases.map((p, i) => loopRep(path, i + 1, p, wait));
      return { ...pathResult(path, phases), metric: summarize(phases), phaseMs: summarize(phases), cpuMs: summarize(reps.map((r) => r.cpuMs)), repetitions: reps, explanation: reps[0]!.explanation, exitsByPort: [], trapsByVector: [] };
    };
    const d: BenchDoc = {
      ...doc(),
      mode: 'host',
      scenarios: [{
        name: 'cpuloop', description: 'CPU-bound loop', image: 'guests/workloads/cpuloop.bin', params: [4_000_000], diskSectors: 128,
        metric: { name: 'time', unit: 'ms', better: 'lower' }, unit: 'M iterations',
        results: [loop('pv', [700, 720, 710], 300), loop('hvm', [430, 420, 425], 20)],
        comparisons: [{ variant: 'base', pvOverHvm: 710 / 425, better: 'hvm' }],
      }],
    };
    const text = narrative(d, d.scenarios[0]!);
    expect(text).toContain('PV 400 ms vs HVM 404 ms: PV/HVM = 0.990');
    expect(text).toMatch(/waited for a host CPU PV 300 ms vs HVM 20 ms/);
    expect(text).toContain('8 trap bounces');
    expect(text).not.toContain('harnesses');
    const html = toHtml(d, new Map());
    expect(html).toContain('<th>vCPU CPU ms</th><th>on pCPU ms</th><th>host-CPU wait ms</th>');
    const lines = toCsv(d).trim().split('\n');
    const head = lines[0]!.split(',');
    const median = Object.fromEntries(lines[1]!.split(',').map((c, i) => [head[i], c]));
    expect(median).toMatchObject({ path: 'pv', phase_cpu_ms: '400', pcpu_os_wait_ms: '300', pcpu_run_ms: '690' });
    const chart = scenarioSpec(d, d.scenarios[0]!) as unknown as { layer: Array<{ mark: { type: string }; data: { values: Array<Record<string, unknown>> } }> };
    expect(chart.layer.find((l) => l.mark.type === 'tick')?.data.values.map((v) => v.cpu)).toEqual([400, 404]);
    expect(JSON.stringify(chart)).toContain('by it PV/HVM = 0.99');
  });

  it('charts: Vega-Lite specs carry every path and repetition, and render to SVG and PNG', async () => {
    const d = doc();
    const spec = scenarioSpec(d, d.scenarios[0]!) as unknown as { layer: Array<{ data: { values: Array<Record<string, unknown>> } }> };
    expect(spec.layer[0]!.data.values.map((v) => [v.label, v.median])).toEqual([['PV', 90], ['HVM', 45]]);
    expect(spec.layer[2]!.data.values).toHaveLength(6);
    const b = breakdownSpec(d) as unknown as { data: { values: Array<{ quantity: string; label: string; value: number }> } };
    expect(b.data.values.find((v) => v.label === 'HVM' && v.quantity === 'VM exits')?.value).toBe(259);
    expect(b.data.values.every((v) => v.value > 0)).toBe(true);
    // A quantity far below 0.01 per unit (persistent grants: a few over thousands of ops) moves the log axis down to its decade.
    const scaleMin = (x: BenchDoc) => JSON.stringify(breakdownSpec(x)).match(/"domainMin":([^,}]+)/)?.[1];
    expect(scaleMin(d)).toBe('0.01');
    const tiny = doc();
    tiny.scenarios[0]!.results[0]!.explanation = { ...tiny.scenarios[0]!.results[0]!.explanation, grantOps: 0.000244 };
    expect(scaleMin(tiny)).toBe('0.0001');
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    dirs.push(dir);
    const w = await writeReport(d, dir);
    const svg = readFileSync(join(dir, 'charts', 'seqread.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('seqread: throughput (MiB/s)');
    const png = readFileSync(join(dir, 'charts', 'cost-breakdown.png'));
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(w.charts).toHaveLength(4);
    const json = JSON.parse(readFileSync(w.json, 'utf8')) as BenchDoc;
    expect(json.scenarios[0]!.results[1]!.metric.median).toBe(45);
  });
});

describe('command line', () => {
  it('knobs set the base settings; --vs makes a variant for the paths it changes', () => {
    const o = parseArgs(['--quick', '--ring-pages', '4', '--hvm-disk', 'pio', '--notify-holdoff', 'off']);
    expect(o.quick).toBe(true);
    expect(o.settings).toEqual({ ...DEFAULT_SETTINGS, ringPages: 4, hvmDiskMode: 'pio', notifyHoldoff: false });
    const v = parseVariant('grant=map, ring-pages=8', DEFAULT_SETTINGS);
    expect(v.paths).toEqual(['pv']);
    expect(v.settings).toMatchObject({ grantMode: 'map', ringPages: 8 });
    expect(parseVariant('hvm-disk=pio-multiple', DEFAULT_SETTINGS).paths).toEqual(['hvm']);
    expect(parseVariant('write-through=off,ioreq-page=off', DEFAULT_SETTINGS).paths).toEqual(['pv', 'hvm']);
  });

  it('refuses bad knob values and variants that change nothing', () => {
    expect(() => parseArgs(['--ring-pages', '3'])).toThrow(/ring pages must be 1, 2, 4 or 8/);
    expect(() => parseVariant('grant=copy', DEFAULT_SETTINGS)).toThrow(/changes nothing/);
    expect(() => parseVariant('colour=blue', DEFAULT_SETTINGS)).toThrow(/not knob=value/);
  });

  it('the summary lists every scenario with both medians and the ratio', () => {
    expect(summaryText(doc())).toMatch(/seqread\s+PV\s+90\s+HVM\s+45 MiB\/s\s+PV\/HVM 2(\s|$)/);
  });
});
