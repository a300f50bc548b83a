/** The contract every benchmark suite module (`tools/src/bench/<name>.ts`) fulfils. */
export interface BenchResult {
  /** Human-readable summary printed at the end (ratios against the same-run baselines). */
  summary: string;
  /** Measurements: each with its unit, and the baseline it is compared against. */
  measurements: Record<string, unknown>;
  /** Target checks: name -> { target, measured, met }. */
  targets?: Record<string, { target: string; measured: number; met: boolean }>;
}

export interface BenchSuite {
  run(argv: string[]): Promise<BenchResult>;
}

/** Median and spread of a sample. */
export function stats(xs: number[]): { median: number; min: number; max: number; mean: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  const mean = s.reduce((a, b) => a + b, 0) / (n || 1);
  return { median, min: s[0] ?? NaN, max: s[n - 1] ?? NaN, mean, n };
}
