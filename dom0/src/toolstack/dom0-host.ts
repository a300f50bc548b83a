/**
 * What dom0's toolstack and backends share inside the dom0 process: the privileged hypercall
 * connection, machine memory mapped once, dom0's event channels (`DomainEvents`: each part takes
 * only its own ports), a xenstore connection, and an allocator for dom0's own frames (blkback's
 * bounce pages, named by GFN in grant copies). Built once by `startToolstack` (service.ts).
 */
import { SharedMemory } from '@xenlab/ring-buffers';
import { type HostLayout, type HypercallClient } from '@xenlab/xen-public';
import { DomainEvents, type XenstoreClient } from '@xenlab/xenstore-client';

const PAGE = 4096;

export interface Dom0Host {
  layout: HostLayout;
  hc: HypercallClient;
  mm: SharedMemory;
  events: DomainEvents;
  xs: XenstoreClient;
  frames: Dom0Frames;
  log(line: string): void;
}

/**
 * dom0's RAM is populated at boot (GFN i -> MFN); the dom0 processes are not x86 code, so its
 * frames serve as backend memory. Runs are handed out from the top of dom0's RAM downwards
 * (qemu-dm and others may take from the bottom), machine-contiguous, so one view covers them.
 */
export class Dom0Frames {
  private top: number;
  private readonly freed: { gfn: number; pages: number }[] = [];

  private constructor(
    private readonly mm: SharedMemory,
    private readonly mfns: number[],
  ) {
    this.top = mfns.length;
  }

  static async open(hc: HypercallClient, mm: SharedMemory): Promise<Dom0Frames> {
    const info = await hc.call('domctl', 'getdomaininfo', { domain: 0 });
    const { mfns } = await hc.call('domctl', 'getmemlist', { domain: 0, max_pfns: info.tot_pages });
    return new Dom0Frames(mm, mfns);
  }

  /** `pages` frames, contiguous in machine memory: their first GFN and one view of them all. */
  alloc(pages: number): { gfn: number; bytes: Uint8Array } {
    const reuse = this.freed.findIndex((f) => f.pages === pages);
    if (reuse >= 0) {
      const [f] = this.freed.splice(reuse, 1);
      return { gfn: f!.gfn, bytes: this.view(f!.gfn, pages) };
    }
    for (let end = this.top; end - pages >= 0; end--) {
      const g = end - pages;
      let ok = true;
      for (let i = 1; i < pages && ok; i++) ok = this.mfns[g + i] === this.mfns[g]! + i;
      if (ok) {
        this.top = g;
        return { gfn: g, bytes: this.view(g, pages) };
      }
    }
    throw new Error(`dom0 has no ${pages} machine-contiguous free frames left`);
  }

  free(gfn: number, pages: number): void {
    this.freed.push({ gfn, pages });
  }

  private view(gfn: number, pages: number): Uint8Array {
    return new Uint8Array(this.mm.buffer, this.mfns[gfn]! * PAGE, pages * PAGE);
  }
}
