/** The scenario list's sizes: which profile and backend run which parameters. */
import { describe, expect, it } from 'vitest';
import { SCENARIOS, sizingFor } from './scenarios.ts';

describe('sizingFor', () => {
  const byName = (n: string) => SCENARIOS.find((s) => s.name === n)!;

  it('quick is the same on both backends; the full profile on a host uses its own sizes where a scenario has them', () => {
    const console = byName('console');
    expect(sizingFor(console, 'quick', 'host')).toBe(console.quick);
    expect(sizingFor(console, 'quick', 'in-process')).toBe(console.quick);
    expect(sizingFor(console, 'full', 'in-process')).toBe(console.full);
    expect(sizingFor(console, 'full', 'host')).toBe(console.fullOnHost);
    const seq = byName('seqread');
    expect(sizingFor(seq, 'full', 'host')).toBe(seq.full);
  });

  it('host sizes sit between the quick and the in-process full ones', () => {
    for (const sc of SCENARIOS.filter((s) => s.fullOnHost)) {
      expect(sc.fullOnHost!.params[0]!, sc.name).toBeGreaterThan(sc.quick.params[0]!);
      expect(sc.fullOnHost!.params[0]!, sc.name).toBeLessThan(sc.full.params[0]!);
    }
  });
});
