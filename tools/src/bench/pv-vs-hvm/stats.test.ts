import { describe, expect, it } from 'vitest';
import { median, quantileSorted, ratio, summarize } from './stats.ts';

describe('statistics', () => {
  it('median of odd and even samples, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(Number.isNaN(median([]))).toBe(true);
  });

  it('quartiles interpolate between order statistics', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(quantileSorted(s, 0.25)).toBe(3);
    expect(quantileSorted(s, 0.75)).toBe(7);
    expect(quantileSorted([10, 20], 0.25)).toBe(12.5);
    expect(() => quantileSorted(s, 1.5)).toThrow(RangeError);
  });

  it('summarize: median, MAD, IQR, min/max, mean, relative spread', () => {
    const r = summarize([10, 12, 11, 50, 9]);
    expect(r.n).toBe(5);
    expect(r.median).toBe(11);
    // deviations 1, 1, 0, 39, 2 -> median 1: the outlier does not move it
    expect(r.mad).toBe(1);
    expect(r.q1).toBe(10);
    expect(r.q3).toBe(12);
    expect(r.iqr).toBe(2);
    expect(r.min).toBe(9);
    expect(r.max).toBe(50);
    expect(r.mean).toBeCloseTo(18.4, 10);
    expect(r.relativeSpread).toBeCloseTo(1 / 11, 10);
  });

  it('ignores failed repetitions (NaN) and reports an empty sample as NaN', () => {
    expect(summarize([NaN, 4, Infinity, 2]).median).toBe(3);
    const empty = summarize([NaN]);
    expect(empty.n).toBe(0);
    expect(Number.isNaN(empty.median)).toBe(true);
  });

  it('a single repetition has no spread', () => {
    const r = summarize([42]);
    expect(r).toMatchObject({ n: 1, median: 42, mad: 0, iqr: 0, min: 42, max: 42 });
  });

  it('ratio guards against zero and missing values', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(Number.isNaN(ratio(3, 0))).toBe(true);
    expect(Number.isNaN(ratio(NaN, 2))).toBe(true);
  });
});
