/**
 * Writes a `BenchDoc` out: results.json (everything, including every repetition's counters),
 * results.csv (one row per repetition plus one median row per scenario/path/variant), an SVG and
 * a PNG chart per scenario and one cost-breakdown chart (charts.ts), and report.html, which puts
 * the numbers, the charts and the explanation on one page.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { breakdownSpec, fmt, renderSvg, scenarioSpec, svgToPng } from './charts.ts';
import { EXPLAIN_KEYS, EXPLAIN_LABELS, type Explanation } from './explain.ts';
import type { BenchDoc, PathResult, ScenarioResult } from './runner.ts';

export interface WrittenReport {
  json: string;
  csv: string;
  html: string;
  charts: string[];
}

export async function writeReport(doc: BenchDoc, outDir: string, opts: { png?: boolean } = {}): Promise<WrittenReport> {
  mkdirSync(join(outDir, 'charts'), { recursive: true });
  const json = join(outDir, 'results.json');
  writeFileSync(json, JSON.stringify(doc, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  const csv = join(outDir, 'results.csv');
  writeFileSync(csv, toCsv(doc));
  const charts: string[] = [];
  const svgs = new Map<string, string>();
  const emit = async (name: string, spec: Parameters<typeof renderSvg>[0]) => {
    const svg = await renderSvg(spec);
    svgs.set(name, svg);
    const file = join(outDir, 'charts', `${name}.svg`);
    writeFileSync(file, svg);
    charts.push(file);
    if (opts.png !== false) {
      const png = join(outDir, 'charts', `${name}.png`);
      writeFileSync(png, svgToPng(svg));
      charts.push(png);
    }
  };
  for (const sc of doc.scenarios) await emit(sc.name, scenarioSpec(doc, sc));
  await emit('cost-breakdown', breakdownSpec(doc));
  const html = join(outDir, 'report.html');
  writeFileSync(html, toHtml(doc, svgs));
  return { json, csv, html, charts };
}

// ---------------------------------------------------------------- CSV

const CSV_HEAD = ['kind', 'scenario', 'path', 'variant', 'rep', 'ok', 'metric', 'unit', 'value', 'spread_mad', 'phase_ms', 'phase_cpu_ms', 'pcpu_run_ms', 'pcpu_os_wait_ms', 'instructions', 'ticks', 'total_ms', 'work_units', 'work_unit', ...EXPLAIN_KEYS.map((k) => `${k}_per_unit`), 'error'];

function cell(v: unknown): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = typeof v === 'number' ? String(Number(v.toPrecision(10))) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(doc: BenchDoc): string {
  const lines = [CSV_HEAD.join(',')];
  for (const sc of doc.scenarios) {
    for (const r of sc.results) {
      const per = (e: Explanation) => EXPLAIN_KEYS.map((k) => e[k]);
      lines.push([
        'median', sc.name, r.path, r.variant, '', r.failures === 0, sc.metric.name, sc.metric.unit, r.metric.median, r.metric.mad,
        r.phaseMs.median, r.cpuMs.median, medianCounter(r, 'pcpu.run_ns') / 1e6, medianCounter(r, 'pcpu.os_wait_ns') / 1e6, '', '', '', '', sc.unit, ...per(r.explanation), r.failures ? `${r.failures} failed` : '',
      ].map(cell).join(','));
      for (const x of r.repetitions) {
        lines.push([
          'rep', sc.name, r.path, r.variant, x.rep, x.ok, sc.metric.name, sc.metric.unit, x.value, '',
          x.phaseMs, x.cpuMs, (x.counters['pcpu.run_ns'] ?? NaN) / 1e6, (x.counters['pcpu.os_wait_ns'] ?? NaN) / 1e6, x.instructions, x.ticks, x.totalMs, x.units, sc.unit, ...per(x.explanation), x.error ?? '',
        ].map(cell).join(','));
      }
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- HTML

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function pathName(r: PathResult, variants: number): string {
  return variants > 1 ? `${r.path.toUpperCase()} [${r.variant}]` : r.path.toUpperCase();
}

function settingsText(doc: BenchDoc): string {
  return doc.variants
    .map((v) => {
      const s = v.settings;
      return `<li><b>${esc(v.label)}</b> (runs ${v.paths.map((p) => p.toUpperCase()).join(' and ')}): PV ring ${s.ringPages} page(s) (${32 * s.ringPages} slots), notification hold-off ${s.notifyHoldoff ? 'on' : 'off'}, grant ${s.grantMode}, INT 13h write-through ${s.pvWriteThrough ? 'on' : 'off'}; HVM INT 13h ${s.hvmDiskMode}, ioreq slot ${s.ioreqPage ? 'on' : 'off'}</li>`;
    })
    .join('\n');
}

/** Plain-language account of where one scenario's difference comes from, from its counters. */
export function narrative(doc: BenchDoc, sc: ScenarioResult): string {
  const base = doc.variants[0]?.label;
  const pv = sc.results.find((r) => r.path === 'pv' && r.variant === base);
  const hvm = sc.results.find((r) => r.path === 'hvm' && r.variant === base);
  const cmp = sc.comparisons.find((c) => c.variant === base);
  if (!pv || !hvm || !cmp) return '';
  const u = sc.unit;
  const parts: string[] = [];
  const q = cmp.pvOverHvm;
  if (Number.isFinite(q)) {
    const word = cmp.better === 'tie' ? 'about the same as' : cmp.better === 'pv' ? 'better than' : 'worse than';
    parts.push(`PV ${fmt(pv.metric.median)} vs HVM ${fmt(hvm.metric.median)} ${sc.metric.unit}: PV/HVM = ${q.toFixed(2)}, PV is ${word} HVM (${sc.metric.better} is better).`);
  } else {
    parts.push('One of the paths did not produce a valid result; see the repetitions below.');
  }
  const p = pv.explanation;
  const h = hvm.explanation;
  if (sc.name === 'cpuloop' && doc.mode === 'host') {
    const ms = (r: PathResult, k: string) => medianCounter(r, k) / 1e6;
    const cpuQ = pv.cpuMs.median / hvm.cpuMs.median;
    parts.push(
      `Both paths ran ${fmt(p.instructions)} vs ${fmt(h.instructions)} guest instructions per ${u} on the same pCPU worker code, with no I/O in the loop. ` +
        `The vCPU's CPU time (its pCPU thread's own, from Linux schedstat) was PV ${fmt(pv.cpuMs.median)} ms vs HVM ${fmt(hvm.cpuMs.median)} ms: PV/HVM = ${Number.isFinite(cpuQ) ? cpuQ.toFixed(3) : 'n/a'}. That is the like-for-like comparison of the CPU.`,
    );
    parts.push(
      `Host time holds more. The pCPU thread was in the vCPU's slices for PV ${fmt(ms(pv, 'pcpu.run_ns'))} ms vs HVM ${fmt(ms(hvm, 'pcpu.run_ns'))} ms, of which it waited for a host CPU PV ${fmt(ms(pv, 'pcpu.os_wait_ns'))} ms vs HVM ${fmt(ms(hvm, 'pcpu.os_wait_ns'))} ms: ` +
        `other processes on this machine (the host's own included, e.g. the spare shim process dom0 starts 100 ms after each PV create, while that PV guest runs). ` +
        `The rest of the phase the vCPU was off its pCPU (PV ${fmt(pv.phaseMs.median - ms(pv, 'pcpu.run_ns'))} ms, HVM ${fmt(hvm.phaseMs.median - ms(hvm, 'pcpu.run_ns'))} ms): the phase's edges are not the same work — ` +
        `PV bounces the workload's two INT 1Ah tick reads and the six INT 10h bytes of "BENCH " to the shim (${fmt(p.trapBounces * (pv.repetitions.find((x) => x.ok)?.units ?? NaN))} trap bounces, each a round trip to another process), while HVM reads the tick count inside its virtual BIOS and takes ${fmt(h.vmExits * (hvm.repetitions.find((x) => x.ok)?.units ?? NaN))} exits for the same bytes.`,
    );
  } else if (sc.name === 'cpuloop') {
    parts.push(`Both paths ran ${fmt(p.instructions)} vs ${fmt(h.instructions)} guest instructions per ${u} with ${fmt(h.vmExits)} VM exits and ${fmt(p.trapBounces)} trap bounces per ${u}: no I/O, so a difference is noise on this shared machine or the harnesses' different run loops (HVM runs 20 000-instruction slices and checks for timer ticks between them, PV 1 M). Harness CPU time: PV ${fmt(pv.cpuMs.median)} ms, HVM ${fmt(hvm.cpuMs.median)} ms.`);
  } else {
    const ports = hvm.exitsByPort.slice(0, 4).map((e) => `${e.port} ${fmt(e.perUnit)}`).join(', ');
    parts.push(
      `Per ${u}, HVM took ${fmt(h.vmExits)} VM exits, ${fmt(h.ioreqs)} of them ioreqs to qemu-dm${ports ? ` (by port: ${ports})` : ''}, ${fmt(h.ringRequests)} ATA commands, and ran ${fmt(h.instructions)} guest instructions (the virtual BIOS's driver runs inside the guest).`,
    );
    const vecs = pv.trapsByVector.slice(0, 3).map((t) => `${t.vector} ${fmt(t.perUnit)}`).join(', ');
    parts.push(
      `PV took ${fmt(p.trapBounces)} trap bounces${vecs ? ` (${vecs})` : ''}, ${fmt(p.ringRequests)} ring requests, ${fmt(p.notifySent)} notifications sent and ${fmt(p.notifySuppressed)} suppressed by hold-off, ${fmt(p.grantOps)} grant operations, ${fmt(p.hypercalls)} hypercalls, ${fmt(p.flushes)} disk flushes, ${fmt(p.bytesCopied)} bytes grant-copied, and ran ${fmt(p.instructions)} guest instructions.`,
    );
    if (h.vmExits > 0 && p.trapBounces > 0) {
      parts.push(`That is ${fmt(h.vmExits / p.trapBounces)} HVM exits for every PV trap bounce: each costs a round trip through the hypervisor (and, for an ioreq, to qemu-dm and back).`);
      // Phase time per event: what one trap bounce (with the I/O it starts) and one exit cost here.
      const units = (r: PathResult) => r.repetitions.find((x) => x.ok)?.units ?? NaN;
      const perBounce = (pv.phaseMs.median * 1000) / (p.trapBounces * units(pv));
      const perExit = (hvm.phaseMs.median * 1000) / (h.vmExits * units(hvm));
      // (Not for boot: its phase is mostly building the domain, not its few bounces and exits.)
      if (sc.name !== 'boot' && Number.isFinite(perBounce) && Number.isFinite(perExit)) {
        parts.push(`Phase time per event: PV ${fmt(perBounce)} us per trap bounce (the bounce to the shim, the requests it starts on the ring to blkback and back, the iret), HVM ${fmt(perExit)} us per exit (the ioreq to qemu-dm and its answer, or the hypervisor's own emulation).`);
      }
    }
  }
  return parts.map((s) => `<p>${esc(s)}</p>`).join('\n');
}

/** Median over a path's good repetitions of one raw counter (NaN when none has it). */
function medianCounter(r: PathResult, key: string): number {
  const v = r.repetitions.filter((x) => x.ok && x.counters[key] !== undefined).map((x) => x.counters[key]!).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

function explanationTable(sc: ScenarioResult, variants: number): string {
  const head = sc.results.map((r) => `<th>${esc(pathName(r, variants))}</th>`).join('');
  const rows = EXPLAIN_KEYS.map((k) => `<tr><td>${esc(EXPLAIN_LABELS[k])}</td>${sc.results.map((r) => `<td class="n">${Number.isNaN(r.explanation[k]) ? 'missing' : fmt(r.explanation[k])}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr><th>per ${esc(sc.unit)}</th>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function repetitionsTable(doc: BenchDoc, sc: ScenarioResult, variants: number): string {
  // On a host: the pCPU thread's time in the vCPU's slices and its wait for a host CPU.
  const host = doc.mode === 'host';
  const nsMs = (v: number | undefined) => (v === undefined ? '' : fmt(v / 1e6));
  const rows = sc.results
    .flatMap((r) =>
      r.repetitions.map(
        (x) =>
          `<tr><td>${esc(pathName(r, variants))}</td><td class="n">${x.rep}</td><td class="n">${fmt(x.value)}</td><td class="n">${fmt(x.phaseMs)}</td><td class="n">${fmt(x.cpuMs)}</td>${host ? `<td class="n">${nsMs(x.counters['pcpu.run_ns'])}</td><td class="n">${nsMs(x.counters['pcpu.os_wait_ns'])}</td>` : ''}<td class="n">${x.instructions}</td><td class="n">${x.ticks ?? ''}</td><td>${x.ok ? 'ok' : esc(x.error ?? 'failed')}</td></tr>`,
      ),
    )
    .join('\n');
  const cpuHead = host ? '<th>vCPU CPU ms</th><th>on pCPU ms</th><th>host-CPU wait ms</th>' : '<th>harness CPU ms</th>';
  const legend = host
    ? "<p class=\"meta\">vCPU CPU ms: the pCPU threads' CPU time for the vCPU's slices, loading the vCPU into each (memory map, registers) included, so it can exceed the time on the pCPU when slices are short; on pCPU ms: wall time inside the slices; host-CPU wait ms: time a pCPU thread was runnable with no host CPU free (Linux schedstat).</p>"
    : '';
  return `${legend}<table><thead><tr><th>path</th><th>rep</th><th>${esc(sc.metric.unit)}</th><th>phase ms</th>${cpuHead}<th>guest instructions</th><th>guest ticks</th><th>result</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

export function toHtml(doc: BenchDoc, svgs: ReadonlyMap<string, string>): string {
  const nv = doc.variants.length;
  const summaryRows = doc.scenarios
    .flatMap((sc) =>
      sc.results.map((r) => {
        const cmp = sc.comparisons.find((c) => c.variant === r.variant);
        return `<tr><td><a href="#${esc(sc.name)}">${esc(sc.name)}</a></td><td>${esc(pathName(r, nv))}</td><td>${esc(`${sc.metric.name} (${sc.metric.unit})`)}</td><td class="n">${fmt(r.metric.median)}</td><td class="n">${fmt(r.metric.mad)}</td><td class="n">${fmt(r.metric.min)} – ${fmt(r.metric.max)}</td><td class="n">${r.metric.n}</td><td class="n">${r.path === 'pv' && cmp ? fmt(cmp.pvOverHvm) : ''}</td></tr>`;
      }),
    )
    .join('\n');
  const targetRows = Object.entries(doc.targets)
    .map(([name, t]) => `<tr><td>${esc(name)}</td><td>${esc(t.target)}</td><td class="n">${fmt(t.measured)}</td><td>${t.met === null ? '—' : t.met ? 'met' : 'not met'}</td><td>${esc(t.note)}</td></tr>`)
    .join('\n');
  const sections = doc.scenarios
    .map(
      (sc) => `<section id="${esc(sc.name)}">
<h2>${esc(sc.name)} <small>${esc(sc.description)}</small></h2>
<p class="meta">${esc(sc.image)}, parameters [${sc.params.join(', ')}], disk ${sc.diskSectors} sectors (${fmt((sc.diskSectors * 512) / 1048576)} MiB)</p>
<div class="chart">${svgs.get(sc.name) ?? ''}</div>
${narrative(doc, sc)}
${explanationTable(sc, nv)}
<details><summary>every repetition</summary>${repetitionsTable(doc, sc, nv)}</details>
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xenlab PV vs HVM benchmark</title>
<style>
body{font-family:"DejaVu Sans",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.framing{background:#fff6d5;border-left:4px solid #e0b000;padding:.6em 1em}.meta{color:#666;font-size:.9em}h2 small{font-weight:normal;color:#666;font-size:.6em}
section{border-top:1px solid #ddd;margin-top:2em}.chart svg{max-width:100%;height:auto}
</style></head><body>
<h1>xenlab: PV vs HVM, the same guest programs both ways</h1>
<p class="framing"><b>How to read this.</b> ${esc(doc.framing)}</p>
<table>
<tr><th>mode</th><td>${esc(doc.mode)} (${esc(doc.profile)} profile, ${doc.warmups} warm-up(s), ${doc.repetitions} repetition(s) per path)</td></tr>
<tr><th>PV path</th><td>${esc(doc.backends.pv)}</td></tr>
<tr><th>HVM path</th><td>${esc(doc.backends.hvm)}</td></tr>
<tr><th>revision</th><td>${esc(doc.revision)}</td></tr>
<tr><th>machine</th><td>${doc.machine.cpus} × ${esc(doc.machine.model)}, Node ${esc(doc.machine.node)}, ${esc(doc.machine.platform)}, load ${doc.machine.loadavg.map((l) => l.toFixed(2)).join(' ')} at start</td></tr>
<tr><th>started / finished</th><td>${esc(doc.started)} / ${esc(doc.finished)}</td></tr>
</table>
<h2>Driver settings</h2><ul>${settingsText(doc)}</ul>
${doc.notes.length ? `<ul class="meta">${doc.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Summary</h2>
<table><thead><tr><th>scenario</th><th>path</th><th>metric</th><th>median</th><th>MAD</th><th>min – max</th><th>n</th><th>PV/HVM</th></tr></thead><tbody>
${summaryRows}
</tbody></table>
<h2>Targets</h2>
<table><thead><tr><th>target</th><th>wanted</th><th>measured</th><th>status</th><th>note</th></tr></thead><tbody>
${targetRows}
</tbody></table>
<h2>Where the cost goes</h2>
<p>Each bar is a count of one kind of event per unit of work (per MiB moved, per operation, per KiB printed), on a log scale. HVM pays in VM exits and ioreqs (every port access of the virtual BIOS's disk and console drivers leaves the guest); PV pays in trap bounces, ring requests, notifications and grant operations, batched per BIOS call.</p>
<div class="chart">${svgs.get('cost-breakdown') ?? ''}</div>
${sections}
<p class="meta">Written by xenlab-bench (tools/src/bench/pv-vs-hvm). Data: results.json, results.csv; charts in charts/.</p>
</body></html>
`;
}
