/**
 * Summary statistics for repeated measurements: robust ones first (median, median absolute
 * deviation, quartiles), because this machine is shared and a single slow repetition must not
 * move the headline number. Quartiles use linear interpolation between order statistics (the
 * "type 7" definition that R and NumPy use by default).
 */

export interface Summary {
  n: number;
  median: number;
  /** Median absolute deviation from the median (unscaled). */
  mad: number;
  q1: number;
  q3: number;
  /** q3 - q1. */
  iqr: number;
  min: number;
  max: number;
  mean: number;
  /** mad / median, a unit-free spread (0 when the median is 0). */
  relativeSpread: number;
}

/** The p-quantile (0..1) of already sorted values, interpolating linearly. */
export function quantileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile ${p} is outside 0..1`);
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function median(xs: readonly number[]): number {
  return quantileSorted([...xs].sort((a, b) => a - b), 0.5);
}

/** Summarises finite values; NaN and infinities (failed repetitions) are ignored. */
export function summarize(values: readonly number[]): Summary {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return { n: 0, median: NaN, mad: NaN, q1: NaN, q3: NaN, iqr: NaN, min: NaN, max: NaN, mean: NaN, relativeSpread: NaN };
  const med = quantileSorted(xs, 0.5);
  const mad = median(xs.map((x) => Math.abs(x - med)));
  const q1 = quantileSorted(xs, 0.25);
  const q3 = quantileSorted(xs, 0.75);
  return {
    n,
    median: med,
    mad,
    q1,
    q3,
    iqr: q3 - q1,
    min: xs[0]!,
    max: xs[n - 1]!,
    mean: xs.reduce((a, b) => a + b, 0) / n,
    relativeSpread: med === 0 ? 0 : mad / Math.abs(med),
  };
}

/** a / b, or NaN when either is not a finite number or b is 0. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
