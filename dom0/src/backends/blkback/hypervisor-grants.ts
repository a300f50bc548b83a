/**
 * blkback's GrantCopyInterface satisfied by the real hypervisor: GNTTABOP_copy between the
 * frontend's granted frames and dom0's own frames (named by GFN, `DOMID_SELF`). The copies of
 * every request started in one turn of the event loop (blkback's `inFlight` batch) go in one
 * hypercall. The scratch pages are dom0 frames from `Dom0Frames`.
 */
import { DOMID_SELF, GNTCOPY, GNTMAP, GNTST, type GnttabCopyArg, type HypercallClient } from '@xenlab/xen-public';
import type { Dom0Frames } from '../../toolstack/dom0-host.ts';
import type { GrantCopyInterface, GrantCopyOp, GrantMapInterface, GrantMapOp, GrantMapResult } from './grant-copy.ts';

const PAGE = 4096;

export class HypervisorGrantCopy implements GrantCopyInterface {
  private base = -1;
  private pages = 0;
  readonly counters = { hypercalls: 0, ops: 0 };

  constructor(
    private readonly hc: HypercallClient,
    private readonly frames: Dom0Frames,
  ) {}

  scratch(pages: number): Uint8Array {
    const r = this.frames.alloc(pages);
    this.base = r.gfn;
    this.pages = pages;
    return r.bytes;
  }

  /** Copies asked for in the same turn of the event loop, sent as one hypercall. */
  private queued: { args: GnttabCopyArg[]; resolve: (s: number[]) => void; reject: (e: unknown) => void }[] = [];

  copy(ops: readonly GrantCopyOp[]): Promise<readonly number[]> {
    const args = this.toArgs(ops);
    this.counters.ops += ops.length;
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) queueMicrotask(() => void this.flush());
      this.queued.push({ args, resolve, reject });
    });
  }

  /** GNTTABOP_copy takes an array: every request blkback started in this turn rides one call. */
  private async flush(): Promise<void> {
    const batch = this.queued;
    this.queued = [];
    this.counters.hypercalls++;
    try {
      const r = await this.hc.call('grant_table_op', 'copy', batch.flatMap((b) => b.args));
      let at = 0;
      for (const b of batch) {
        b.resolve(r.slice(at, at + b.args.length).map((s) => s.status));
        at += b.args.length;
      }
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }

  private toArgs(ops: readonly GrantCopyOp[]): GnttabCopyArg[] {
    return ops.map((o) => {
      const own = { gmfn: this.base + Math.floor(o.scratchOffset / PAGE), domid: DOMID_SELF, offset: o.scratchOffset % PAGE };
      const granted = { ref: o.gref, domid: o.domid, offset: o.offset };
      return o.dir === 'to-guest'
        ? { source: own, dest: granted, len: o.len, flags: GNTCOPY.dest_gref }
        : { source: granted, dest: own, len: o.len, flags: GNTCOPY.source_gref };
    });
  }

  release(): void {
    if (this.base >= 0) this.frames.free(this.base, this.pages);
    this.base = -1;
  }
}

/**
 * blkback's GrantMapInterface satisfied by the real hypervisor: GNTTABOP_map_grant_ref
 * (GNTMAP_host_map, plus GNTMAP_readonly for a WRITE's data) for all segments of a request in one
 * hypercall, the pages seen through machine memory at `dev_bus_addr`; GNTTABOP_unmap_grant_ref by
 * handle afterwards. Selected with XENLAB_BLKBACK_GRANTS=map in the host's environment.
 */
export class HypervisorGrantMap implements GrantMapInterface {
  readonly counters = { maps: 0, unmaps: 0 };

  constructor(
    private readonly hc: HypercallClient,
    private readonly memory: ArrayBuffer,
  ) {}

  async map(ops: readonly GrantMapOp[]): Promise<readonly GrantMapResult[]> {
    this.counters.maps++;
    const r = await this.hc.call(
      'grant_table_op',
      'map_grant_ref',
      ops.map((o) => ({ flags: GNTMAP.host_map | (o.readonly ? GNTMAP.readonly : 0), ref: o.gref, dom: o.domid })),
    );
    const bogus: number[] = [];
    const out = r.map((m) => {
      if (m.status !== GNTST.okay) return { status: m.status, handle: m.handle, page: null };
      // Only an address the hypervisor returned, and only if it is a whole frame of machine memory.
      const a = m.dev_bus_addr;
      if (!Number.isSafeInteger(a) || a < 0 || a % PAGE !== 0 || a + PAGE > this.memory.byteLength) {
        bogus.push(m.handle);
        return { status: GNTST.general_error, handle: m.handle, page: null };
      }
      return { status: m.status, handle: m.handle, page: new Uint8Array(this.memory, a, PAGE) };
    });
    if (bogus.length > 0) await this.unmap(bogus).catch(() => {});
    return out;
  }

  async unmap(handles: readonly number[]): Promise<readonly number[]> {
    this.counters.unmaps++;
    const r = await this.hc.call('grant_table_op', 'unmap_grant_ref', handles.map((handle) => ({ handle })));
    return r.map((s) => s.status);
  }
}
