/**
 * blkback's persistent grants (`feature-persistent`, fact sheet §2.3; the idea of Linux
 * xen-blkback's persistent_gnts tree, written in our own words): when both ends agreed, the
 * frontend keeps granting the same pool of data pages, and blkback maps each new gref once
 * through the hypervisor (GNTTABOP_map_grant_ref, writable: a pool page carries READs and WRITEs)
 * and keeps the mapping until the ring disconnects. A request naming a known gref is then served
 * by copying between the image and that page directly, with no hypercall.
 *
 * Safety: a page is only ever the view the hypervisor's map returned (it validated the entry,
 * the grantee and the frame, and holds a reference on the frame until the unmap, so the frame
 * cannot go to another domain meanwhile). A gref that fails to map (never granted, revoked,
 * granted read-only, out of range) is not remembered: the request falls back to the per-request
 * path, whose hypercall fails it with BLKIF_RSP_ERROR as before. At most `limit` grefs are kept
 * (Linux's default is the same order: a few hundred); beyond it requests use the per-request
 * path. `release()` unmaps everything; the device calls it on disconnect, after its last request.
 */
import type { DomId, GrantRef } from '@xenlab/xen-public';
import type { GrantMapInterface } from './grant-copy.ts';

const PAGE = 4096;

export const DEFAULT_PERSISTENT_GRANTS = 1056;

export interface PersistentGrantCounters {
  /** Grefs mapped now. */
  mapped: number;
  /** Map hypercalls made (each for every new gref of a request). */
  mapCalls: number;
  /** Grefs that failed to map (served, and normally failed, by the per-request path). */
  mapFailures: number;
  /** Segments served straight from a persistent mapping. */
  hits: number;
  /** Segments that could not get a mapping because the table was full. */
  overLimit: number;
  /** Mappings released (disconnect). */
  released: number;
  unmapFailures: number;
}

/** Grefs below this are found by array index (`PersistentGrants.mapping`), the rest by hash. */
const SMALL_GREFS = 1 << 16;

/** One persistent mapping: its handle and page, with the page's buffer and offset kept as plain fields. */
export class PersistentMapping {
  readonly buffer: ArrayBufferLike;
  /** Byte offset of the page in `buffer`. */
  readonly offset: number;
  constructor(
    readonly handle: number,
    readonly page: Uint8Array,
  ) {
    this.buffer = page.buffer;
    this.offset = page.byteOffset;
  }
}

export class PersistentGrants {
  readonly counters: PersistentGrantCounters = { mapped: 0, mapCalls: 0, mapFailures: 0, hits: 0, overLimit: 0, released: 0, unmapFailures: 0 };
  private readonly pages = new Map<number, PersistentMapping>();
  /**
   * The same mappings indexed by gref for the grefs a guest normally uses (below 2^16; a Linux
   * guest's whole table is 16,384 entries): the hot path's lookup is an array load, not a hash.
   */
  private readonly byGref: (PersistentMapping | undefined)[] = [];
  /** Grefs whose map is on its way, so two requests naming a new gref map it once. */
  private readonly pending = new Map<number, Promise<void>>();
  private closed = false;

  constructor(
    private readonly gm: GrantMapInterface,
    private readonly domid: DomId,
    readonly limit = DEFAULT_PERSISTENT_GRANTS,
  ) {}

  get size(): number {
    return this.pages.size;
  }

  /** The mapped page for `gref`, or undefined (not mapped: use the per-request path). */
  page(gref: GrantRef): Uint8Array | undefined {
    return this.mapping(gref)?.page;
  }

  /** The mapping of `gref` (its page, and the page's buffer and offset read once), or undefined. */
  mapping(gref: number): PersistentMapping | undefined {
    return gref < SMALL_GREFS ? this.byGref[gref] : this.pages.get(gref);
  }

  /**
   * Maps those of `grefs` that are new, while the table has room, in one hypercall; waits for
   * maps of the same grefs already on their way. Never throws for a guest's mistake.
   */
  acquire(grefs: readonly GrantRef[]): Promise<void> | undefined {
    let wait: Promise<void>[] | undefined;
    const fresh: GrantRef[] = [];
    for (const g of grefs) {
      if (this.pages.has(g) || fresh.includes(g)) continue;
      const p = this.pending.get(g);
      if (p) (wait ??= []).push(p);
      else if (!this.closed && this.pages.size + this.pending.size + fresh.length < this.limit) fresh.push(g);
      else this.counters.overLimit++;
    }
    if (fresh.length > 0) {
      const p = this.mapFresh(fresh);
      for (const g of fresh) this.pending.set(g, p);
      (wait ??= []).push(p);
    }
    if (!wait) return undefined;
    return Promise.all(wait).then(() => undefined);
  }

  private async mapFresh(grefs: readonly GrantRef[]): Promise<void> {
    this.counters.mapCalls++;
    try {
      const results = await this.gm.map(grefs.map((gref) => ({ domid: this.domid, gref, readonly: false })));
      const late: number[] = [];
      grefs.forEach((g, i) => {
        const r = results[i];
        if (!r || r.status !== 0 || !r.page || r.page.byteLength !== PAGE) {
          this.counters.mapFailures++;
          if (r && r.status === 0) late.push(r.handle);
          return;
        }
        // Released while the map was on its way: give it straight back.
        if (this.closed) late.push(r.handle);
        else {
          const m = new PersistentMapping(r.handle, r.page);
          this.pages.set(g, m);
          if (g < SMALL_GREFS) this.byGref[g] = m;
        }
      });
      this.counters.mapped = this.pages.size;
      if (late.length > 0) await this.unmap(late);
    } catch {
      this.counters.mapFailures += grefs.length;
    } finally {
      for (const g of grefs) this.pending.delete(g);
    }
  }

  /** Unmaps every persistent mapping (the ring is disconnecting; no request may be running). */
  async release(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pending.values()]);
    const handles = [...this.pages.values()].map((m) => m.handle);
    this.pages.clear();
    this.byGref.length = 0;
    this.counters.mapped = 0;
    if (handles.length > 0) await this.unmap(handles);
  }

  private async unmap(handles: readonly number[]): Promise<void> {
    try {
      const st = await this.gm.unmap(handles);
      for (const s of st) {
        if (s === 0) this.counters.released++;
        else this.counters.unmapFailures++;
      }
    } catch {
      this.counters.unmapFailures += handles.length;
    }
  }
}
