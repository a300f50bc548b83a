/**
 * End to end: the quick profile (one repetition of small workloads) on both backends — in-process
 * (real guest code on the x86 CPU, the shim + blkfront/blkback path and the virtual BIOS +
 * qemu-dm path, each in its harness child process) and, by default, a booted host (real PV and
 * HVM domains, counters from the processes' marks) — then checks that results.json,
 * results.csv, the charts and report.html are produced and agree with each other.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchMain, parseArgs, type CliRun } from './index.ts';
import { HostBackend, HostSession } from './host-backend.ts';
import { DEFAULT_SETTINGS } from './protocol.ts';
import type { BenchDoc } from './runner.ts';
import { SCENARIOS } from './scenarios.ts';

/** |a - b| relative to b (the CSV keeps 10 significant digits). */
const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

/** Every scenario ran once on both paths and every guest's own result checked out. */
function expectAllRan(doc: BenchDoc): void {
  expect(doc.schema).toBe('xenlab-bench/pv-vs-hvm@1');
  expect(doc.profile).toBe('quick');
  expect(doc.framing).toMatch(/not real Xen/);
  expect(doc.variants[0]!.settings).toEqual(DEFAULT_SETTINGS);
  expect(doc.scenarios.map((s) => s.name)).toEqual(SCENARIOS.map((s) => s.name));
  for (const sc of doc.scenarios) {
    expect(sc.results.map((r) => r.path)).toEqual(['pv', 'hvm']);
    for (const r of sc.results) {
      expect(r.repetitions, `${sc.name} ${r.path}`).toHaveLength(1);
      expect(r.repetitions[0]!.error, `${sc.name} ${r.path}`).toBeUndefined();
      expect(r.failures).toBe(0);
      expect(r.metric.median).toBeGreaterThan(0);
      expect(r.metric.median).toBe(r.repetitions[0]!.value);
    }
    expect(sc.comparisons[0]!.pvOverHvm).toBeCloseTo(sc.results[0]!.metric.median / sc.results[1]!.metric.median, 10);
  }
}

/** The CPU loop: the same guest instructions both ways (within its prints), judged by CPU time. */
function expectCpuLoopByCpuTime(doc: BenchDoc): void {
  const cpu = doc.scenarios.find((s) => s.name === 'cpuloop')!;
  const [cpv, chvm] = cpu.results.map((r) => r.repetitions[0]!.instructions);
  expect(Math.abs(cpv! - chvm!) / cpv!).toBeLessThan(0.01);
  for (const r of cpu.results) expect(r.repetitions[0]!.cpuMs).toBeGreaterThan(0);
  const t = doc.targets['cpuloop PV/HVM within 5%']!;
  expect(t.measured).toBeCloseTo(cpu.results[0]!.cpuMs.median / cpu.results[1]!.cpuMs.median, 10);
  expect(t.met).toBe(Math.abs(t.measured - 1) <= 0.05);
}

/** results.csv, the charts and report.html hold the same numbers and scenarios as results.json. */
function expectOutputsAgree(out: string, doc: BenchDoc, html: string): void {
  const lines = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
  const head = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((c, i) => [head[i]!, c])));
  expect(rows).toHaveLength(doc.scenarios.length * 2 * 2);
  for (const sc of doc.scenarios) {
    for (const r of sc.results) {
      const median = rows.find((x) => x.kind === 'median' && x.scenario === sc.name && x.path === r.path)!;
      expect(relDiff(Number(median.value), r.metric.median)).toBeLessThan(1e-8);
      const rep = rows.find((x) => x.kind === 'rep' && x.scenario === sc.name && x.path === r.path)!;
      expect(Number(rep.instructions)).toBe(r.repetitions[0]!.instructions);
      expect(relDiff(Number(rep.vmExits_per_unit || 0), r.repetitions[0]!.explanation.vmExits)).toBeLessThan(1e-8);
    }
  }
  for (const name of [...doc.scenarios.map((s) => s.name), 'cost-breakdown']) {
    const svg = readFileSync(join(out, 'charts', `${name}.svg`), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    const png = readFileSync(join(out, 'charts', `${name}.png`));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  }
  expect(readFileSync(join(out, 'charts', 'seqread.svg'), 'utf8')).toContain('seqread: throughput (MiB/s)');
  expect(html).toContain('not real Xen');
  for (const sc of doc.scenarios) {
    expect(html).toContain(`<section id="${sc.name}">`);
    expect(html).toContain(`PV/HVM = ${sc.comparisons[0]!.pvOverHvm.toFixed(2)}`);
  }
  expect(html.match(/<svg/g)?.length).toBe(doc.scenarios.length + 1);
  expect(existsSync(join(out, 'report.html'))).toBe(true);
}

describe('xenlab-bench --quick, in-process backends', () => {
  const out = mkdtempSync(join(tmpdir(), 'xenlab-bench-e2e-'));
  let run: CliRun;
  let doc: BenchDoc;

  beforeAll(async () => {
    run = await benchMain(parseArgs(['--quick', '--backend', 'in-process', '--out', out, '--no-progress']), () => {});
    doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as BenchDoc;
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('every scenario ran on both paths, and every guest checked out (its own checksum and counts)', () => {
    expect(doc.mode).toBe('in-process');
    expectAllRan(doc);
  });

  it('the counters explain the paths: HVM exits and ioreqs, PV trap bounces, ring requests and grants', () => {
    const seq = doc.scenarios.find((s) => s.name === 'seqread')!;
    const [pv, hvm] = seq.results;
    // 1 MiB in 127-sector calls: 2048 / 127 -> 17 BIOS calls, 2 blkif requests each (16 pages > 11 segments)
    expect(pv!.explanation.trapBounces).toBeGreaterThanOrEqual(17);
    expect(pv!.explanation.ringRequests).toBe(33);
    expect(pv!.explanation.vmExits).toBe(0);
    expect(pv!.explanation.grantOps).toBeGreaterThan(0);
    expect(pv!.explanation.bytesCopied).toBe(1048576);
    expect(hvm!.explanation.vmExits).toBeGreaterThan(100);
    expect(hvm!.explanation.ioreqs).toBeGreaterThan(100);
    expect(hvm!.explanation.trapBounces).toBe(0);
    expect(hvm!.explanation.ringRequests).toBe(17); // one READ DMA per BIOS call
    expect(hvm!.exitsByPort.map((e) => e.port)).toContain('pio:1f7');
    expect(pv!.trapsByVector[0]).toMatchObject({ vector: 'int13' });
    expectCpuLoopByCpuTime(doc);
  });

  it('results.csv, the charts (SVG and PNG) and report.html agree with results.json', () => {
    expectOutputsAgree(out, doc, readFileSync(run.written.html, 'utf8'));
  });
});

describe('the host backend', () => {
  it('refuses a --host-dir with no running host, saying what to do', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'xenlab-bench-nohost-'));
    try {
      await expect(new HostBackend('pv', new HostSession({ runDir: empty })).start()).rejects.toThrow(/no running host in .*xenlab start/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('lists the knobs a host cannot honour, with why, for its own path only', () => {
    const hvm = new HostBackend('hvm', new HostSession());
    expect(hvm.unsupported({ ...DEFAULT_SETTINGS, hvmDiskMode: 'pio' })).toEqual([]);
    expect(hvm.unsupported({ ...DEFAULT_SETTINGS, ioreqPage: false })).toEqual([expect.stringMatching(/^ioreq-page=false \(every exit .* ioreq page\)$/)]);
    const pv = new HostBackend('pv', new HostSession());
    expect(pv.unsupported({ ...DEFAULT_SETTINGS, grantMode: 'map', pvWriteThrough: false })).toEqual([]);
    expect(pv.unsupported({ ...DEFAULT_SETTINGS, ringPages: 4, notifyHoldoff: false })).toEqual([expect.stringMatching(/^ring-pages=4 \(/), expect.stringMatching(/^notify-holdoff=false \(/)]);
    expect(new HostBackend('pv', new HostSession({ runDir: '/nonexistent' })).unsupported({ ...DEFAULT_SETTINGS, grantMode: 'map' })).toEqual([expect.stringMatching(/^grant=map \(the host in --host-dir/)]);
  });

  it('the quick profile on a booted host, the default backend: real counters from the marks, consistent across processes and outputs', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xenlab-bench-host-e2e-'));
    try {
      const { doc, written } = await benchMain(parseArgs(['--quick', '--warmups', '0', '--out', out, '--no-progress']), () => {});
      expect(doc.mode).toBe('host');
      expectAllRan(doc);
      const sc = doc.scenarios.find((s) => s.name === 'seqread')!;
      const pv = sc.results.find((r) => r.path === 'pv')!;
      const hvm = sc.results.find((r) => r.path === 'hvm')!;
      const pc = pv.repetitions[0]!.counters;
      const hc = hvm.repetitions[0]!.counters;
      // PV: the shim's blkfront and the hypervisor agree with the workload (1 MiB in 127-sector calls).
      expect(pc['int13.sectorsRead']).toBe(2048);
      expect(pv.explanation.ringRequests).toBeGreaterThanOrEqual(32);
      expect(pv.explanation.ringRequests).toBeLessThanOrEqual(34);
      expect(pv.explanation.trapBounces).toBeGreaterThanOrEqual(16);
      expect(pv.explanation.vmExits).toBe(0);
      expect(pv.explanation.hypercalls).toBeGreaterThan(0);
      // HVM (DMA): every exit but the hypervisor's own went to qemu-dm, which served exactly those; 1 MiB moved.
      expect(hvm.explanation.ioreqs).toBeGreaterThan(100);
      expect(hc['exits.ioreq']).toBe(hc['ioreq.served']);
      expect(hc['exits.total']).toBeGreaterThanOrEqual(hc['exits.ioreq']!);
      expect(hc['ata.sectorsRead']).toBe(2048);
      expect(hvm.explanation.bytesCopied).toBe(1 << 20);
      expect(hvm.explanation.ringRequests).toBeGreaterThanOrEqual(16);
      expect(hvm.explanation.ringRequests).toBeLessThanOrEqual(18);
      // Guest instructions come from the hypervisor per domain, the phase from the marks, and the
      // vCPU's CPU time from its pCPU threads: never more than the phase it ran in.
      for (const s of doc.scenarios.filter((x) => x.name !== 'boot')) {
        for (const r of s.results) {
          const x = r.repetitions[0]!;
          expect(x.instructions, `${s.name} ${r.path}`).toBeGreaterThan(80);
          expect(x.phaseMs, `${s.name} ${r.path}`).toBeGreaterThan(0);
          expect(x.counters['pcpu.run_ns']! / 1e6, `${s.name} ${r.path}`).toBeLessThanOrEqual(x.phaseMs * 1.05 + 1);
        }
      }
      expectCpuLoopByCpuTime(doc);
      expect(doc.notes).toEqual([]);
      const html = readFileSync(written.html, 'utf8');
      expect(html).toContain('host-CPU wait ms');
      expectOutputsAgree(out, doc, html);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 240_000);
});
