import { describe, expect, it } from 'vitest';
import { measureDiskReads } from './hvm-io.ts';

describe('disk read exits per megabyte', () => {
  it('PIO pays per sector, PIO MULTIPLE per 16-sector block, DMA per call', () => {
    const iterations = 4; // 508 sectors
    const pio = measureDiskReads('pio', iterations);
    const multiple = measureDiskReads('pio-multiple', iterations);
    const dma = measureDiskReads('dma', iterations);
    // per 127-sector call: 7 setup exits + per-block (poll + rep insw), or 15 for DMA
    expect(pio.exits).toBe(iterations * (7 + 2 * 127));
    expect(multiple.exits).toBe(iterations * (7 + 2 * Math.ceil(127 / 16)));
    expect(dma.exits).toBe(iterations * 15);
    expect(pio.ports['pio:1f0']).toBe(iterations * 127);
    expect(dma.ports['pio:1f0']).toBeUndefined();
    expect(dma.exitsPerMiB).toBeLessThan(multiple.exitsPerMiB);
    expect(multiple.exitsPerMiB).toBeLessThan(pio.exitsPerMiB);
  });
});
