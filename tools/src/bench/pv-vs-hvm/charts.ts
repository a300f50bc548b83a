/**
 * Charts for the PV vs HVM report, as Vega-Lite specifications compiled and rendered to SVG in
 * Node by Vega (`View.toSVG()`, no browser or canvas), and to PNG by resvg. One chart per
 * scenario (the headline value per path: median bar, min–max whisker, every repetition as a
 * dot) and one cost-breakdown chart (the explanation quantities per unit of work, log scale).
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { EXPLAIN_KEYS, EXPLAIN_LABELS } from './explain.ts';
import type { BenchDoc, ScenarioResult } from './runner.ts';

export const PATH_COLORS = { PV: '#1f77b4', HVM: '#d62728' } as const;
const FONT = 'DejaVu Sans';

const baseConfig = {
  font: FONT,
  background: 'white',
  axis: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, subtitleFontSize: 11, anchor: 'start' as const },
  legend: { labelFontSize: 11, titleFontSize: 11 },
};

/** "PV" / "HVM", with the variant when there is more than one. */
export function barLabel(path: string, variant: string, variants: number): string {
  const p = path.toUpperCase();
  return variants > 1 ? `${p}|${variant}` : p;
}

export function scenarioSpec(doc: BenchDoc, sc: ScenarioResult): TopLevelSpec {
  const nv = doc.variants.length;
  const summary = sc.results.map((r) => ({
    label: barLabel(r.path, r.variant, nv),
    path: r.path.toUpperCase(),
    median: r.metric.median,
    min: r.metric.min,
    max: r.metric.max,
    text: Number.isFinite(r.metric.median) ? fmt(r.metric.median) : 'failed',
  }));
  const points = sc.results.flatMap((r) =>
    r.repetitions.filter((x) => x.ok).map((x) => ({ label: barLabel(r.path, r.variant, nv), path: r.path.toUpperCase(), value: x.value, rep: x.rep })),
  );
  // A time metric also shows the guest's CPU time (median) where the backend measured it.
  const cpu = sc.metric.unit === 'ms' ? sc.results.filter((r) => Number.isFinite(r.cpuMs.median)).map((r) => ({ label: barLabel(r.path, r.variant, nv), cpu: r.cpuMs.median })) : [];
  const cmp = sc.comparisons[0];
  const subtitle = [
    sc.description,
    `PV/HVM = ${Number.isFinite(cmp?.pvOverHvm ?? NaN) ? cmp!.pvOverHvm.toFixed(2) : 'n/a'} (${sc.metric.better} is better) · ${doc.mode} · ${doc.repetitions} repetition(s)`,
    'bar = median, whisker = min–max, dots = repetitions',
    ...(cpu.length ? [`black tick = median ${cpuTimeLabel(doc.mode)}${cpu.length === 2 ? `; by it PV/HVM = ${(cpu[0]!.cpu / cpu[1]!.cpu).toFixed(2)}` : ''}`] : []),
  ];
  const x = { field: 'label', type: 'nominal' as const, title: null, sort: summary.map((s) => s.label), axis: { labelAngle: 0, labelExpr: "split(datum.value, '|')", labelLimit: 200 } };
  const color = { field: 'path', type: 'nominal' as const, scale: { domain: ['PV', 'HVM'], range: [PATH_COLORS.PV, PATH_COLORS.HVM] }, legend: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${sc.name}: ${sc.metric.name} (${sc.metric.unit})`, subtitle },
    width: Math.max(360, 150 * summary.length),
    height: 260,
    config: baseConfig,
    layer: [
      {
        data: { values: summary },
        mark: { type: 'bar', opacity: 0.85, width: { band: 0.6 } },
        encoding: { x, y: { field: 'median', type: 'quantitative', title: `${sc.metric.name} (${sc.metric.unit}), median` }, color },
      },
      {
        data: { values: summary },
        mark: { type: 'rule', strokeWidth: 1.5, color: '#333' },
        encoding: { x, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 30, color: '#111', opacity: 0.7 },
        encoding: { x, y: { field: 'value', type: 'quantitative' } },
      },
      ...(cpu.length
        ? [{
            data: { values: cpu },
            mark: { type: 'tick', color: '#111', thickness: 3, bandSize: 40 },
            encoding: { x, y: { field: 'cpu', type: 'quantitative' } },
          }]
        : []),
      {
        data: { values: summary },
        mark: { type: 'text', dy: -8, fontSize: 12, fontWeight: 'bold' },
        encoding: { x, y: { field: 'max', type: 'quantitative' }, text: { field: 'text' } },
      },
    ],
  } as TopLevelSpec;
}

/**
 * The explanation quantities per unit of work for every scenario and path: a dot plot on a log
 * scale (bars cannot start at zero on a log axis), one panel per scenario.
 */
export function breakdownSpec(doc: BenchDoc): TopLevelSpec {
  const nv = doc.variants.length;
  const rows = doc.scenarios.flatMap((sc) =>
    sc.results.flatMap((r) =>
      EXPLAIN_KEYS.filter((k) => k !== 'instructions' && k !== 'bytesCopied')
        .map((k) => ({ scenario: `${sc.name} (per ${sc.unit})`, quantity: EXPLAIN_LABELS[k], label: barLabel(r.path, r.variant, nv).replace('|', ' · '), value: r.explanation[k] }))
        .filter((row) => Number.isFinite(row.value) && row.value > 0),
    ),
  );
  const labels = [...new Set(rows.map((r) => r.label))];
  // The log axis starts at 0.01 or at the decade of the smallest value (e.g. persistent grants:
  // a few grant operations over thousands of ops), so every dot is inside its panel.
  const smallest = Math.min(0.01, ...rows.map((r) => r.value));
  const axisMin = Number((10 ** Math.floor(Math.log10(smallest))).toPrecision(1));
  const ticks = Array.from({ length: 7 - Math.round(Math.log10(axisMin)) }, (_, i) => Number((axisMin * 10 ** i).toPrecision(1)));
  const pathColors = labels.length <= 2 && labels.every((l) => l === 'PV' || l === 'HVM');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Where the cost goes: events per unit of work', subtitle: [`median over repetitions, log scale; ${doc.mode} backends`, 'HVM pays in exits and ioreqs, PV in trap bounces, ring requests, notifications and grant operations'] },
    data: { values: rows },
    config: { ...baseConfig, facet: { spacing: 24 }, header: { labelFontSize: 12, labelFontWeight: 'bold', labelAnchor: 'start' } },
    facet: { field: 'scenario', type: 'nominal', title: null, sort: doc.scenarios.map((s) => `${s.name} (per ${s.unit})`) },
    columns: 2,
    spec: {
      width: 330,
      height: { step: 13 },
      layer: [
        {
          mark: { type: 'rule', color: '#ccc' },
          encoding: {
            y: { field: 'quantity', type: 'nominal', title: null, sort: EXPLAIN_KEYS.map((k) => EXPLAIN_LABELS[k]), axis: { labelLimit: 230 } },
            yOffset: { field: 'label', type: 'nominal', sort: labels },
            x: { field: 'value', type: 'quantitative' },
            x2: { datum: axisMin },
          },
        },
        {
          mark: { type: 'circle', size: 70, opacity: 0.95 },
          encoding: {
            y: { field: 'quantity', type: 'nominal', title: null, sort: EXPLAIN_KEYS.map((k) => EXPLAIN_LABELS[k]) },
            yOffset: { field: 'label', type: 'nominal', sort: labels },
            x: { field: 'value', type: 'quantitative', scale: { type: 'log', domainMin: axisMin }, title: 'events per unit (log scale)', axis: { format: '~g', values: ticks } },
            color: { field: 'label', type: 'nominal', title: 'path', sort: labels, scale: pathColors ? { domain: ['PV', 'HVM'], range: [PATH_COLORS.PV, PATH_COLORS.HVM] } : { scheme: 'tableau10' } },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 7, fontSize: 9, color: '#333' },
          encoding: {
            y: { field: 'quantity', type: 'nominal', sort: EXPLAIN_KEYS.map((k) => EXPLAIN_LABELS[k]) },
            yOffset: { field: 'label', type: 'nominal', sort: labels },
            x: { field: 'value', type: 'quantitative' },
            text: { field: 'value', type: 'quantitative', format: '.3~s' },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
  } as TopLevelSpec;
}

/** What a run's CPU time is, by backend (protocol.ts `phaseCpuMs`). */
export function cpuTimeLabel(mode: BenchDoc['mode']): string {
  return mode === 'host' ? "vCPU CPU time (its pCPU thread's, schedstat)" : 'harness CPU time';
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Vega-Lite's notes about faceted independent scales are expected here; only errors matter.
  const compiled = compile(spec, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string): Uint8Array {
  const r = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: FONT }, fitTo: { mode: 'zoom', value: 2 } });
  return r.render().asPng();
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const r = Math.round(v);
  if (Number.isInteger(v) || (Math.abs(v) >= 1 && Math.abs(v - r) < 1e-9 * Math.abs(v))) return String(r);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}
