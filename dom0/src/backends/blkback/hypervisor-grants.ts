/**
 * blkback's GrantCopyInterface satisfied by the real hypervisor: GNTTABOP_copy between the
 * frontend's granted frames and dom0's own frames (named by GFN, `DOMID_SELF`), batched into one
 * hypercall per request. The scratch pages are dom0 frames from `Dom0Frames`.
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

  async copy(ops: readonly GrantCopyOp[]): Promise<readonly number[]> {
    const args: GnttabCopyArg[] = ops.map((o) => {
      const own = { gmfn: this.base + Math.floor(o.scratchOffset / PAGE), domid: DOMID_SELF, offset: o.scratchOffset % PAGE };
      const granted = { ref: o.gref, domid: o.domid, offset: o.offset };
      return o.dir === 'to-guest'
        ? { source: own, dest: granted, len: o.len, flags: GNTCOPY.dest_gref }
        : { source: granted, dest: own, len: o.len, flags: GNTCOPY.source_gref };
    });
    this.counters.hypercalls++;
    this.counters.ops += ops.length;
    const r = await this.hc.call('grant_table_op', 'copy', args);
    return r.map((s) => s.status);
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
    return r.map((m) => ({ status: m.status, handle: m.handle, page: m.status === GNTST.okay ? new Uint8Array(this.memory, m.dev_bus_addr, PAGE) : null }));
  }

  async unmap(handles: readonly number[]): Promise<readonly number[]> {
    this.counters.unmaps++;
    const r = await this.hc.call('grant_table_op', 'unmap_grant_ref', handles.map((handle) => ({ handle })));
    return r.map((s) => s.status);
  }
}
