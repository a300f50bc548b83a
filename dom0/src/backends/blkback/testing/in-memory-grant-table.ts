/**
 * TEST DOUBLE, not the product: a stand-in for the hypervisor's GNTTABOP_copy, for tests that
 * run blkback (and blkfront) in one process. It reads the granting domain's real v1 grant frames
 * (the `GrantFrame` entries its frontend filled) and checks what the hypervisor checks before a
 * copy — ref in range, GTF_permit_access, the entry names the copying domain, GTF_readonly for
 * copies into the frame, the frame is the granter's, the range stays inside the page — and sets
 * GTF_reading/GTF_writing while it copies, so the granter cannot revoke a grant in use. The real
 * check lives in hypervisor/src/grant-table.ts (`copyOne`); this one exists so blkback can be
 * tested before the processes are wired together.
 */
import { GNTST, GRANT_ENTRIES_PER_FRAME, GTF, type DomId, type GrantFrame } from '@xenlab/xen-public';
import type { GrantCopyInterface, GrantCopyOp } from '../grant-copy.ts';

export interface GrantingDomain {
  readonly domid: DomId;
  /** The domain's grant frames, in table order (ref r lives in frame r / 512). */
  readonly frames: readonly GrantFrame[];
  /** The domain's memory: the 4 KiB page for a guest frame number, or undefined if it has none. */
  page(gfn: number): Uint8Array | undefined;
}

export class InMemoryGrantCopy implements GrantCopyInterface {
  readonly log: Array<{ op: GrantCopyOp; status: number }> = [];
  private buf: Uint8Array | null = null;

  constructor(
    private readonly copier: DomId,
    private readonly domains: ReadonlyMap<number, GrantingDomain>,
  ) {}

  scratch(pages: number): Uint8Array {
    this.buf = new Uint8Array(pages * 4096);
    return this.buf;
  }

  copy(ops: readonly GrantCopyOp[]): number[] {
    return ops.map((op) => {
      const status = this.one(op);
      this.log.push({ op, status });
      return status;
    });
  }

  private one(op: GrantCopyOp): number {
    const scratch = this.buf;
    if (!scratch) return GNTST.general_error;
    if (!Number.isInteger(op.len) || op.len < 0 || !Number.isInteger(op.offset) || op.offset < 0 || op.offset + op.len > 4096) return GNTST.bad_copy_arg;
    if (op.scratchOffset < 0 || (op.scratchOffset % 4096) + op.len > 4096 || op.scratchOffset + op.len > scratch.byteLength) return GNTST.bad_copy_arg;
    const d = this.domains.get(op.domid);
    if (!d) return GNTST.bad_domain;
    const ref = op.gref;
    if (!Number.isInteger(ref) || ref < 0 || ref >= d.frames.length * GRANT_ENTRIES_PER_FRAME) return GNTST.bad_gntref;
    const frame = d.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)]!;
    const i = ref % GRANT_ENTRIES_PER_FRAME;
    const toGuest = op.dir === 'to-guest';
    const busy = toGuest ? GTF.writing : GTF.reading;
    // Pin the entry as the hypervisor does: flags must say permit_access (and not readonly for a
    // write into the frame) at the moment GTF_reading/GTF_writing is set.
    let flags: number;
    for (;;) {
      flags = frame.flags(i);
      if ((flags & GTF.type_mask) !== GTF.permit_access) return GNTST.general_error;
      if (toGuest && flags & GTF.readonly) return GNTST.permission_denied;
      if (frame.casFlags(i, flags, flags | busy) === flags) break;
    }
    try {
      if (frame.domid(i) !== this.copier) return GNTST.permission_denied;
      const page = d.page(frame.frame(i));
      if (!page) return GNTST.bad_page;
      if (toGuest) page.set(scratch.subarray(op.scratchOffset, op.scratchOffset + op.len), op.offset);
      else scratch.set(page.subarray(op.offset, op.offset + op.len), op.scratchOffset);
      return GNTST.okay;
    } finally {
      for (;;) {
        const f = frame.flags(i);
        if (frame.casFlags(i, f, f & ~busy) === f) break;
      }
    }
  }
}
