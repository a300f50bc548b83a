/**
 * The benchmark harness (bench-guest.ts) on its own: a workload runs to power-off on both paths
 * with the phase measured between its BEGIN and BENCH lines, and a run that cannot finish is
 * reported as a failure with the console's tail, not thrown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDisk } from '../../tools/src/bench/pv-vs-hvm/disk.ts';
import { DEFAULT_SETTINGS } from '../../tools/src/bench/pv-vs-hvm/protocol.ts';
import { parseFields, runJob } from './bench-guest.ts';

const WORKLOADS = fileURLToPath(new URL('../workloads/', import.meta.url));

describe('bench-guest harness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-guest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses BENCH lines', () => {
    expect(parseFields('BENCH name=seqread sectors=16 csum=00AB')).toEqual({ name: 'seqread', sectors: '16', csum: '00AB' });
  });

  it('randread with a 4-page ring and grant map (PV) and PIO (HVM): same answer, counters of each path', async () => {
    const disk = join(dir, 'randread.img');
    writeDisk(disk, join(WORKLOADS, 'randread.bin'), [16, 0x3f, 7], 64 + 64 * 8);
    const settings = { ...DEFAULT_SETTINGS, ringPages: 4, grantMode: 'map' as const, hvmDiskMode: 'pio' as const };
    const pv = await runJob({ id: 1, path: 'pv', disk, settings, maxInstructions: 50_000_000 });
    const hvm = await runJob({ id: 2, path: 'hvm', disk, settings, maxInstructions: 50_000_000 });
    for (const r of [pv, hvm]) {
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.outcome).toBe('poweroff');
      expect(r.phaseMs).toBeGreaterThan(0);
      expect(r.phaseCpuMs).toBeGreaterThanOrEqual(0);
    }
    const { ticks: _pt, ...pvResult } = pv.bench!;
    const { ticks: _ht, ...hvmResult } = hvm.bench!;
    expect(pvResult).toEqual(hvmResult); // the same answer, checksum included (ticks are host time)
    expect(pv.bench).toMatchObject({ name: 'randread', ops: '16', bytes: '65536' });
    expect(pv.counters['blkfront.requests']).toBe(16);
    expect(pv.counters['gntmap.maps']).toBe(16);
    expect(pv.counters['gntcopy.ops'] ?? 0).toBe(0);
    expect(hvm.counters['ata.commands']).toBe(16);
    expect(hvm.counters['ata.dmaTransfers'] ?? 0).toBe(0);
    expect(hvm.counters['exit.pio:1f0']).toBe(16 * 8); // one rep insw per sector
  });

  it('a guest that runs out of instructions is a failed run with its console tail', async () => {
    const disk = join(dir, 'cpuloop.img');
    writeDisk(disk, join(WORKLOADS, 'cpuloop.bin'), [10_000_000], 128);
    for (const path of ['pv', 'hvm'] as const) {
      const r = await runJob({ id: 3, path, disk, settings: DEFAULT_SETTINGS, maxInstructions: path === 'pv' ? 200_000 : 400_000 });
      expect(r.ok).toBe(false);
      expect(r.outcome).toBe('budget');
      expect(r.error).toMatch(/did not power off/);
      expect(r.consoleTail).toContain('BEGIN name=cpuloop');
    }
  });
});
