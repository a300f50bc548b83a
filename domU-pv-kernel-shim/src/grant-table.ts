/**
 * The guest side of grant table v1 (grant_table.h, fact sheet §6.1): hands out grant references
 * by filling `grant_entry_v1`s in the domain's own grant frames, in Xen's order (domid, frame,
 * barrier, flags), and revokes them with a compare-and-swap that fails while the hypervisor has
 * the entry pinned (GTF_reading/GTF_writing). Like Mini-OS's gnttab.c in role; the frames are
 * injected (in the shim they are the frames the hypervisor set up with GNTTABOP_setup_table).
 */
import { GNTTAB_NR_RESERVED_ENTRIES, GRANT_ENTRIES_PER_FRAME, GrantRef, type DomId, type Gfn, type GrantFrame } from '@xenlab/xen-public';

/** What a frontend needs to share pages: the "injected grant-table writer". */
export interface GrantWriter {
  /** Grants `domid` access to guest frame `gfn`; null when the table has no free entry. */
  grantAccess(domid: DomId, gfn: Gfn, readonly: boolean): GrantRef | null;
  /** Revokes a grant. False if the peer still has it in use; the ref is then retired later. */
  endAccess(ref: GrantRef): boolean;
}

export class GuestGrantTable implements GrantWriter {
  private readonly free: number[] = [];
  /** Refs whose revocation failed (still pinned): retried before handing out refs. */
  private readonly retiring: number[] = [];
  readonly counters = { granted: 0, ended: 0, endBusy: 0, exhausted: 0 };

  constructor(private readonly frames: readonly GrantFrame[], firstFree = GNTTAB_NR_RESERVED_ENTRIES) {
    for (let r = frames.length * GRANT_ENTRIES_PER_FRAME - 1; r >= firstFree; r--) this.free.push(r);
  }

  get available(): number {
    return this.free.length;
  }

  grantAccess(domid: DomId, gfn: Gfn, readonly: boolean): GrantRef | null {
    if (this.free.length === 0) this.retryRetiring();
    const ref = this.free.pop();
    if (ref === undefined) {
      this.counters.exhausted++;
      return null;
    }
    this.frame(ref).grant(ref % GRANT_ENTRIES_PER_FRAME, domid, gfn, readonly);
    this.counters.granted++;
    return GrantRef(ref);
  }

  endAccess(ref: GrantRef): boolean {
    if (this.frame(ref).endAccess(ref % GRANT_ENTRIES_PER_FRAME)) {
      this.counters.ended++;
      this.free.push(ref);
      return true;
    }
    this.counters.endBusy++;
    this.retiring.push(ref);
    return false;
  }

  private retryRetiring(): void {
    for (let i = this.retiring.length - 1; i >= 0; i--) {
      const ref = this.retiring[i]!;
      if (this.frame(ref).endAccess(ref % GRANT_ENTRIES_PER_FRAME)) {
        this.retiring.splice(i, 1);
        this.free.push(ref);
      }
    }
  }

  private frame(ref: number): GrantFrame {
    const f = this.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)];
    if (!f) throw new RangeError(`grant ref ${ref} is outside this domain's ${this.frames.length} grant frame(s)`);
    return f;
  }
}
