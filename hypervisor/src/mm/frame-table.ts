/**
 * The frame table: for every machine frame its owner, its kind and its reference count, like
 * Xen's `struct page_info` array (xen/include/asm-x86/mm.h, xen/common/page_alloc.c).
 *
 * A frame's count holds one reference for being allocated (Xen's PGC_allocated) plus one for
 * every mapping someone else holds (a grant map, a privileged foreign map). When the owner gives
 * the frame up (decrease_reservation, domain destruction) the allocation reference goes; the frame
 * returns to the free pool, scrubbed, only when the last mapping reference is dropped too.
 */
import { DOMID_INVALID, Mfn, type DomId, type Gfn } from '@xenlab/xen-public';
import type { MachineMemory } from './machine-memory.ts';

/** What a frame is used for. `ram` frames count towards a domain's tot_pages. */
export const FrameKind = {
  free: 0,
  /** Guest RAM in a domain's P2M. */
  ram: 1,
  /** A domain's shared_info page (Xen heap, shared with the guest). */
  shared_info: 2,
  /** One of a domain's grant-table frames. */
  grant_table: 3,
  /** Owned by the hypervisor itself (doorbells, console). */
  xen: 4,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const NO_GFN = -1;

export interface FrameFreedEvent {
  mfn: Mfn;
  owner: DomId;
  kind: FrameKind;
}

export class FrameTable {
  private readonly owner: Uint16Array;
  private readonly kind: Uint8Array;
  private readonly count: Uint32Array;
  /** Whether the owner still holds its allocation reference (PGC_allocated). */
  private readonly allocated: Uint8Array;
  /** machine-to-phys: the GFN this frame backs in its owner's P2M, or -1. */
  private readonly m2p: Int32Array;
  private readonly freeList: Int32Array;
  private nrFree: number;
  /** Called after a frame has returned to the pool (for the owner's bookkeeping). */
  onFreed: ((ev: FrameFreedEvent) => void) | undefined;

  constructor(readonly mem: MachineMemory) {
    const n = mem.nrFrames;
    this.owner = new Uint16Array(n).fill(DOMID_INVALID);
    this.kind = new Uint8Array(n);
    this.count = new Uint32Array(n);
    this.allocated = new Uint8Array(n);
    this.m2p = new Int32Array(n).fill(NO_GFN);
    this.freeList = new Int32Array(n);
    // Pop order gives the lowest MFN first.
    for (let i = 0; i < n; i++) this.freeList[i] = n - 1 - i;
    this.nrFree = n;
  }

  get totalFrames(): number {
    return this.mem.nrFrames;
  }
  get freeFrames(): number {
    return this.nrFree;
  }

  /** Takes a zeroed frame from the pool for `owner`; undefined when memory is exhausted. */
  alloc(owner: DomId, kind: Exclude<FrameKind, 0>): Mfn | undefined {
    if (this.nrFree === 0) return undefined;
    const mfn = Mfn(this.freeList[--this.nrFree]!);
    this.owner[mfn] = owner;
    this.kind[mfn] = kind;
    this.count[mfn] = 1;
    this.allocated[mfn] = 1;
    this.m2p[mfn] = NO_GFN;
    return mfn;
  }

  isValid(mfn: number): mfn is Mfn {
    return Number.isInteger(mfn) && mfn >= 0 && mfn < this.mem.nrFrames;
  }
  isInUse(mfn: Mfn): boolean {
    return this.count[mfn]! > 0;
  }
  /** Owned and still allocated (not merely kept alive by someone's mapping). */
  isAllocated(mfn: Mfn): boolean {
    return this.allocated[mfn] === 1;
  }
  ownerOf(mfn: Mfn): DomId {
    return this.owner[mfn] as DomId;
  }
  kindOf(mfn: Mfn): FrameKind {
    return this.kind[mfn] as FrameKind;
  }
  refs(mfn: Mfn): number {
    return this.count[mfn]!;
  }
  gfnOf(mfn: Mfn): Gfn | undefined {
    const g = this.m2p[mfn]!;
    return g === NO_GFN ? undefined : (g as Gfn);
  }
  setGfn(mfn: Mfn, gfn: Gfn | undefined): void {
    this.m2p[mfn] = gfn === undefined ? NO_GFN : gfn;
  }

  /** Takes a mapping reference on an in-use frame (Xen's get_page). */
  get(mfn: Mfn): boolean {
    if (!this.isValid(mfn) || this.count[mfn] === 0) return false;
    this.count[mfn]!++;
    return true;
  }

  /** Drops a mapping reference (Xen's put_page); frees the frame if it was the last. */
  put(mfn: Mfn): void {
    if (this.count[mfn] === 0) throw new Error(`frame-table: put on free frame ${mfn}`);
    if (--this.count[mfn]! === 0) this.free(mfn);
  }

  /** The owner gives the frame up: drops the allocation reference once. */
  release(mfn: Mfn): void {
    if (!this.allocated[mfn]) return;
    this.allocated[mfn] = 0;
    this.m2p[mfn] = NO_GFN;
    this.put(mfn);
  }

  private free(mfn: Mfn): void {
    const ev: FrameFreedEvent = { mfn, owner: this.owner[mfn] as DomId, kind: this.kind[mfn] as FrameKind };
    this.mem.scrub(mfn);
    this.owner[mfn] = DOMID_INVALID;
    this.kind[mfn] = FrameKind.free;
    this.allocated[mfn] = 0;
    this.m2p[mfn] = NO_GFN;
    this.freeList[this.nrFree++] = mfn;
    this.onFreed?.(ev);
  }

  /** Frames currently owned by `domid` (allocated or kept alive by a mapping). O(frames). */
  framesOf(domid: DomId): Mfn[] {
    const out: Mfn[] = [];
    for (let i = 0; i < this.mem.nrFrames; i++) if (this.count[i]! > 0 && this.owner[i] === domid) out.push(Mfn(i));
    return out;
  }
}
