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
import type { GrantCopyInterface, GrantCopyOp, GrantMapInterface, GrantMapOp, GrantMapResult } from '../grant-copy.ts';

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

/**
 * TEST DOUBLE, not the product: GNTTABOP_map_grant_ref / unmap_grant_ref over the same v1 grant
 * entries, with the hypervisor's checks; a mapping pins the entry (GTF_reading, plus GTF_writing
 * unless read-only) until it is unmapped, so the granter cannot revoke a page under I/O.
 */
export class InMemoryGrantMap implements GrantMapInterface {
  private readonly maps = new Map<number, { frame: GrantFrame; index: number; readonly: boolean }>();
  /** Pin counts per entry, as the hypervisor's active entries keep them. */
  private readonly pins = new Map<GrantFrame, Map<number, { reading: number; writing: number }>>();
  private nextHandle = 0;

  constructor(
    private readonly mapper: DomId,
    private readonly domains: ReadonlyMap<number, GrantingDomain>,
  ) {}

  /** Mappings not yet unmapped (a leak check for tests). */
  get active(): number {
    return this.maps.size;
  }

  map(ops: readonly GrantMapOp[]): GrantMapResult[] {
    return ops.map((op) => this.one(op));
  }

  unmap(handles: readonly number[]): number[] {
    return handles.map((h) => {
      const m = this.maps.get(h);
      if (!m) return GNTST.bad_handle;
      this.maps.delete(h);
      this.unpin(m.frame, m.index, m.readonly);
      return GNTST.okay;
    });
  }

  private one(op: GrantMapOp): GrantMapResult {
    const fail = (status: number): GrantMapResult => ({ status, handle: -1, page: null });
    const d = this.domains.get(op.domid);
    if (!d) return fail(GNTST.bad_domain);
    const ref = op.gref;
    if (!Number.isInteger(ref) || ref < 0 || ref >= d.frames.length * GRANT_ENTRIES_PER_FRAME) return fail(GNTST.bad_gntref);
    const frame = d.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)]!;
    const index = ref % GRANT_ENTRIES_PER_FRAME;
    const busy = op.readonly ? GTF.reading : GTF.reading | GTF.writing;
    for (;;) {
      const flags = frame.flags(index);
      if ((flags & GTF.type_mask) !== GTF.permit_access) return fail(GNTST.general_error);
      if (!op.readonly && flags & GTF.readonly) return fail(GNTST.permission_denied);
      if (frame.casFlags(index, flags, flags | busy) === flags) break;
    }
    const pin = this.pinCount(frame, index);
    pin.reading++;
    if (!op.readonly) pin.writing++;
    const page = frame.domid(index) === this.mapper ? d.page(frame.frame(index)) : undefined;
    if (!page) {
      this.unpin(frame, index, op.readonly);
      return fail(frame.domid(index) === this.mapper ? GNTST.bad_page : GNTST.permission_denied);
    }
    const handle = this.nextHandle++;
    this.maps.set(handle, { frame, index, readonly: op.readonly });
    return { status: GNTST.okay, handle, page };
  }

  private pinCount(frame: GrantFrame, index: number): { reading: number; writing: number } {
    let byIndex = this.pins.get(frame);
    if (!byIndex) this.pins.set(frame, (byIndex = new Map()));
    let p = byIndex.get(index);
    if (!p) byIndex.set(index, (p = { reading: 0, writing: 0 }));
    return p;
  }

  /** Drops one pin; clears GTF_reading / GTF_writing when the last one goes. */
  private unpin(frame: GrantFrame, index: number, readonly: boolean): void {
    const p = this.pinCount(frame, index);
    p.reading--;
    if (!readonly) p.writing--;
    const clear = (p.reading === 0 ? GTF.reading : 0) | (p.writing === 0 ? GTF.writing : 0);
    for (;;) {
      const f = frame.flags(index);
      if (frame.casFlags(index, f, f & ~clear) === f) break;
    }
  }
}
