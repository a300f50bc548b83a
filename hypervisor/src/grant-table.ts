/**
 * Grant tables, v1 (xen/common/grant_table.c): each domain's table lives in grant frames of
 * machine memory that the domain owns and fills itself (GrantFrame in @xenlab/xen-public); the
 * hypervisor validates an entry when another domain maps or copies through it, sets GTF_reading /
 * GTF_writing while it is in use (so the granter cannot revoke it), keeps the pin counts in its
 * private "active" entries and the mapper's handles in its maptrack table. Statuses are per
 * element (GNTST_*); only a malformed call as a whole is an errno.
 */
import {
  DOMID_SELF,
  GNTCOPY,
  GNTMAP,
  GNTST,
  GNTTAB_DEFAULT_MAX_FRAMES,
  GRANT_ENTRIES_PER_FRAME,
  GTF,
  GrantFrame,
  XEN_PAGE_SIZE,
  type DomId,
  type GnttabCopyArg,
  type GnttabCopyPtr,
  type GnttabMapArg,
  type GnttabMapResult,
  type Gfn,
  type Mfn,
} from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { FrameKind } from './mm/frame-table.ts';

/** Maptrack entries per frame in Xen (16-byte entries). */
const MAPTRACK_PER_FRAME = 256;
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;

/** Xen's active_grant_entry: pins held on one of the granter's entries. */
interface ActiveEntry {
  domid: DomId;
  mfn: Mfn;
  pins: number;
  writePins: number;
}

interface Maptrack {
  granter: GrantTable;
  ref: number;
  mfn: Mfn;
  readonly: boolean;
}

class GntError extends Error {
  constructor(readonly status: number) {
    super(`GNTST ${status}`);
  }
}
const fail = (status: number): never => {
  throw new GntError(status);
};

export class GrantTable {
  readonly frames: Mfn[] = [];
  readonly views: GrantFrame[] = [];
  readonly active = new Map<number, ActiveEntry>();
  readonly maptrack: (Maptrack | undefined)[] = [];
  private readonly freeHandles: number[] = [];
  /** Set when the owning domain has been destroyed: its entries are gone, mappings may linger. */
  dead = false;

  constructor(
    readonly domain: Domain,
    readonly maxFrames: number,
    readonly maxMaptrack: number,
  ) {}

  get nrEntries(): number {
    return this.frames.length * GRANT_ENTRIES_PER_FRAME;
  }
  entryFrame(ref: number): { view: GrantFrame; index: number } {
    return { view: this.views[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)]!, index: ref % GRANT_ENTRIES_PER_FRAME };
  }
  allocHandle(m: Maptrack): number | undefined {
    const h = this.freeHandles.pop() ?? (this.maptrack.length < this.maxMaptrack ? this.maptrack.length : undefined);
    if (h === undefined) return undefined;
    this.maptrack[h] = m;
    return h;
  }
  freeHandle(h: number): void {
    this.maptrack[h] = undefined;
    this.freeHandles.push(h);
  }
  mappedHandles(): number[] {
    const out: number[] = [];
    this.maptrack.forEach((m, h) => m && out.push(h));
    return out;
  }
}

export interface GrantTableLimits {
  maxFrames?: number;
  maxMaptrackFrames?: number;
}

export class GrantTables {
  constructor(private readonly hv: Hypervisor) {}

  /** Creates a domain's table with its first grant frame (Xen starts with one). */
  init(d: Domain, limits: GrantTableLimits = {}): void {
    const maxFrames = limits.maxFrames && limits.maxFrames > 0 ? limits.maxFrames : GNTTAB_DEFAULT_MAX_FRAMES;
    const maxMt = (limits.maxMaptrackFrames && limits.maxMaptrackFrames > 0 ? limits.maxMaptrackFrames : DEFAULT_MAX_MAPTRACK_FRAMES) * MAPTRACK_PER_FRAME;
    d.gnttab = new GrantTable(d, maxFrames, maxMt);
    if (!this.grow(d.gnttab, 1)) throw new Error('grant table: no memory for the first grant frame');
  }

  private grow(gt: GrantTable, nr: number): boolean {
    while (gt.frames.length < nr) {
      const mfn = this.hv.allocFrame(gt.domain, FrameKind.grant_table);
      if (mfn === undefined) return false;
      gt.frames.push(mfn);
      gt.views.push(new GrantFrame(this.hv.mem.buffer, this.hv.mem.addr(mfn)));
    }
    return true;
  }

  /** Resolves `dom` for setup_table/query_size: self, or anyone for a privileged caller. */
  private target(caller: Domain, dom: number): Domain {
    if (dom === DOMID_SELF || dom === caller.domid) return caller;
    const d = this.hv.domains.get(dom);
    if (!d || d.dying !== 'alive') return fail(GNTST.bad_domain);
    if (!caller.privileged) return fail(GNTST.permission_denied);
    return d;
  }

  /** GNTTABOP_setup_table: grow to `nrFrames` and return the frames (MFNs, as for a PV guest). */
  setupTable(caller: Domain, dom: number, nrFrames: number): { status: number; frame_list: number[] } {
    try {
      const d = this.target(caller, dom);
      const gt = d.gnttab;
      if (!Number.isInteger(nrFrames) || nrFrames < 0 || nrFrames > gt.maxFrames) return { status: GNTST.general_error, frame_list: [] };
      if (!this.grow(gt, nrFrames)) return { status: GNTST.general_error, frame_list: [] };
      return { status: GNTST.okay, frame_list: gt.frames.slice(0, nrFrames) };
    } catch (e) {
      if (e instanceof GntError) return { status: e.status, frame_list: [] };
      throw e;
    }
  }

  /** GNTTABOP_query_size. */
  querySize(caller: Domain, dom: number): { nr_frames: number; max_nr_frames: number; status: number } {
    try {
      const gt = this.target(caller, dom).gnttab;
      return { nr_frames: gt.frames.length, max_nr_frames: gt.maxFrames, status: GNTST.okay };
    } catch (e) {
      if (e instanceof GntError) return { nr_frames: 0, max_nr_frames: 0, status: e.status };
      throw e;
    }
  }

  /**
   * Pins `ref` of `granter` for `caller`: validates the entry (type, grantee, permission) the
   * first time and sets GTF_reading/GTF_writing with compare-and-swap, as Xen's _set_status_v1.
   */
  private pin(caller: Domain, granter: Domain, ref: number, readonly: boolean): ActiveEntry {
    const gt = granter.gnttab;
    if (!Number.isInteger(ref) || ref < 0 || ref >= gt.nrEntries) fail(GNTST.bad_gntref);
    const { view, index } = gt.entryFrame(ref);
    let act = gt.active.get(ref);
    if (act && act.domid !== caller.domid) fail(GNTST.general_error);
    if (!act || (!readonly && act.writePins === 0)) {
      for (let retries = 0; ; retries++) {
        const flags = view.flags(index);
        if ((flags & GTF.type_mask) !== GTF.permit_access || view.domid(index) !== caller.domid) fail(GNTST.general_error);
        if (!readonly && flags & GTF.readonly) fail(GNTST.general_error);
        const next = flags | GTF.reading | (readonly ? 0 : GTF.writing);
        if (view.casFlags(index, flags, next) === flags) break;
        if (retries === 4) fail(GNTST.general_error);
      }
      if (!act) {
        const gfn = view.frame(index) as Gfn;
        const mfn = granter.p2m.lookup(gfn);
        if (mfn === undefined) {
          this.clearFlags(view, index, GTF.reading | GTF.writing);
          return fail(GNTST.bad_page);
        }
        act = { domid: caller.domid, mfn, pins: 0, writePins: 0 };
        gt.active.set(ref, act);
      }
    }
    act.pins++;
    if (!readonly) act.writePins++;
    return act;
  }

  private unpin(gt: GrantTable, ref: number, readonly: boolean): void {
    const act = gt.active.get(ref);
    if (!act) return;
    const { view, index } = gt.entryFrame(ref);
    act.pins--;
    if (!readonly && --act.writePins === 0) this.clearFlags(view, index, GTF.writing);
    if (act.pins === 0) {
      this.clearFlags(view, index, GTF.reading | GTF.writing);
      gt.active.delete(ref);
    }
  }

  private clearFlags(view: GrantFrame, index: number, bits: number): void {
    for (;;) {
      const f = view.flags(index);
      if (view.casFlags(index, f, f & ~bits) === f) return;
    }
  }

  /** GNTTABOP_map_grant_ref, one element. */
  mapOne(caller: Domain, op: GnttabMapArg): GnttabMapResult {
    const res = { status: GNTST.okay as number, handle: 0xffffffff, dev_bus_addr: 0 };
    try {
      if ((op.flags & (GNTMAP.host_map | GNTMAP.device_map)) === 0) fail(GNTST.bad_gntref);
      const granter = op.dom === DOMID_SELF ? caller : this.hv.domains.get(op.dom);
      if (!granter || granter.dying !== 'alive') fail(GNTST.bad_domain);
      const readonly = (op.flags & GNTMAP.readonly) !== 0;
      const act = this.pin(caller, granter!, op.ref, readonly);
      const handle = caller.gnttab.allocHandle({ granter: granter!.gnttab, ref: op.ref, mfn: act.mfn, readonly });
      if (handle === undefined) {
        this.unpin(granter!.gnttab, op.ref, readonly);
        fail(GNTST.no_space);
      }
      this.hv.frames.get(act.mfn);
      granter!.count('gnttab.map.ops');
      res.handle = handle!;
      res.dev_bus_addr = this.hv.mem.addr(act.mfn);
    } catch (e) {
      if (!(e instanceof GntError)) throw e;
      res.status = e.status;
    }
    return res;
  }

  /** GNTTABOP_unmap_grant_ref, one element. */
  unmapOne(caller: Domain, handle: number, devBusAddr = 0): number {
    const m = Number.isInteger(handle) && handle >= 0 ? caller.gnttab.maptrack[handle] : undefined;
    if (!m) return GNTST.bad_handle;
    if (devBusAddr && devBusAddr !== this.hv.mem.addr(m.mfn)) return GNTST.bad_dev_addr;
    caller.gnttab.freeHandle(handle);
    m.granter.domain.count('gnttab.unmap.ops');
    if (!m.granter.dead) this.unpin(m.granter, m.ref, m.readonly);
    this.hv.frames.put(m.mfn);
    return GNTST.okay;
  }

  /** GNTTABOP_copy, one element. */
  copyOne(caller: Domain, op: GnttabCopyArg): number {
    const held: { gt: GrantTable; ref: number; readonly: boolean }[] = [];
    try {
      if (!Number.isInteger(op.len) || op.len < 0) return GNTST.bad_copy_arg;
      const src = this.resolveCopy(caller, op.source, (op.flags & GNTCOPY.source_gref) !== 0, true, op.len, held);
      const dst = this.resolveCopy(caller, op.dest, (op.flags & GNTCOPY.dest_gref) !== 0, false, op.len, held);
      this.hv.mem.copy(dst, op.dest.offset, src, op.source.offset, op.len);
      // Counted against the domain whose grant was used (the guest a backend copies for).
      for (const h of held.slice(0, 1)) {
        h.gt.domain.count('gnttab.copy.ops');
        h.gt.domain.count('gnttab.copy.bytes', op.len);
      }
      return GNTST.okay;
    } catch (e) {
      if (e instanceof GntError) return e.status;
      throw e;
    } finally {
      for (const h of held) this.unpin(h.gt, h.ref, h.readonly);
    }
  }

  private resolveCopy(
    caller: Domain,
    p: GnttabCopyPtr,
    isGref: boolean,
    readonly: boolean,
    len: number,
    held: { gt: GrantTable; ref: number; readonly: boolean }[],
  ): Mfn {
    if (!p || !Number.isInteger(p.offset) || p.offset < 0 || p.offset + len > XEN_PAGE_SIZE) fail(GNTST.bad_copy_arg);
    if (!isGref) {
      if (p.domid !== DOMID_SELF && p.domid !== caller.domid) fail(GNTST.permission_denied);
      const mfn = caller.p2m.lookup((p.gmfn ?? p.ref ?? -1) as Gfn);
      return mfn ?? fail(GNTST.bad_page);
    }
    const d = p.domid === DOMID_SELF ? caller : this.hv.domains.get(p.domid);
    if (!d || d.dying !== 'alive') fail(GNTST.bad_domain);
    const ref = p.ref ?? -1;
    const act = this.pin(caller, d!, ref, readonly);
    held.push({ gt: d!.gnttab, ref, readonly });
    return act.mfn;
  }

  /** Drops every mapping `d` holds (its process died or it is being destroyed). */
  releaseMappings(d: Domain): void {
    for (const h of d.gnttab.mappedHandles()) this.unmapOne(d, h);
  }

  /** Destroys `d`'s own table: its grant frames go back (once no one maps them). */
  destroyTable(d: Domain): void {
    const gt = d.gnttab;
    gt.dead = true;
    gt.active.clear();
    for (const mfn of gt.frames) this.hv.frames.release(mfn);
    gt.frames.length = 0;
    gt.views.length = 0;
  }
}
