/**
 * A domain's physical-to-machine map: which machine frame backs each guest frame (Xen's p2m,
 * xen/arch/x86/mm/p2m.c, reduced to a map). The frame table keeps the reverse (m2p).
 */
import type { Gfn, Mfn } from '@xenlab/xen-public';

/** GFNs are below 2^32 (grant entries carry them in a u32). */
export const MAX_GFN = 0xffffffff;

export class P2m {
  private readonly map = new Map<number, Mfn>();
  private maxGfn = -1;

  lookup(gfn: Gfn): Mfn | undefined {
    return this.map.get(gfn);
  }
  set(gfn: Gfn, mfn: Mfn): void {
    this.map.set(gfn, mfn);
    if (gfn > this.maxGfn) this.maxGfn = gfn;
  }
  remove(gfn: Gfn): Mfn | undefined {
    const m = this.map.get(gfn);
    this.map.delete(gfn);
    return m;
  }
  get size(): number {
    return this.map.size;
  }
  /** Highest GFN ever populated (XENMEM_maximum_gpfn), -1 if none. */
  get maximumGpfn(): number {
    return this.maxGfn;
  }
  entries(): IterableIterator<[number, Mfn]> {
    return this.map.entries();
  }
  clear(): void {
    this.map.clear();
  }
}
