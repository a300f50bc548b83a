/**
 * blkfront's core (the role of Mini-OS's blkfront.c and Linux's xen-blkfront, written from
 * io/blkif.h and io/ring.h): turns "read or write these sectors to these guest pages" into
 * `blkif_request`s of up to 11 segments, grants each page to the backend (read-only for writes),
 * publishes requests in batches and kicks the backend only when it asked (`req_event`), then
 * matches responses to requests by id, ends the grants and settles each request's promise.
 *
 * With persistent grants (`feature-persistent`, both ends agreed; fact sheet §2.3) each segment
 * instead goes through a page of blkfront's own pool, granted once (writable) and reused: a
 * WRITE's data is copied into it before the request is placed, a READ's data out of it when the
 * response comes; the grant is never ended while the device is connected, so the backend maps it
 * once and needs no hypercall per request. `releasePersistent()` ends the pool's grants.
 *
 * A request's promise settles with the BLKIF_RSP_* status. Requests beyond the ring's free slots
 * (or the pool's free pages) wait in a backlog and are placed as responses free them. A backend that answers ids it was
 * never given, or breaks the ring protocol, is counted and ignored, never trusted.
 * See docs/pv-disk-request.md.
 */
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OFFSETS,
  BLKIF_OP,
  BLKIF_RSP,
  blkifRequest,
  blkifRequestDiscard,
  type FrontRing,
} from '@xenlab/ring-buffers';
import type { DomId, Gfn, GrantRef } from '@xenlab/xen-public';
import type { GrantWriter } from '../grant-table.ts';

export const SECTOR_SIZE = 512;
export const SECTORS_PER_PAGE = 8;

/** One guest page of a transfer: sectors firstSect..lastSect (inclusive) of frame `gfn`. */
export interface BlkfrontSegment {
  readonly gfn: Gfn;
  readonly firstSect: number;
  readonly lastSect: number;
}

/** The disk as the backend described it in xenstore (see xenbus-frontend.ts). */
export interface BlkDiskInfo {
  readonly sectors: number;
  readonly sectorSize: number;
  readonly readOnly: boolean;
  readonly cdrom: boolean;
  readonly removable: boolean;
  readonly flush: boolean;
  readonly discard: boolean;
  /** Persistent grants were negotiated (the backend offered, this frontend wrote feature-persistent=1). */
  readonly persistent?: boolean;
}

/** A frame of the frontend's own, for the persistent pool. */
export interface BlkfrontFrame {
  readonly gfn: Gfn;
  readonly bytes: Uint8Array;
}

/**
 * What blkfront needs for persistent grants: frames of its own for the pool (at least 11, one
 * full request, so a request can always be placed once the others are answered) and the
 * caller's pages, to copy data into and out of the pool.
 */
export interface BlkfrontPersistentOptions {
  readonly frames: readonly BlkfrontFrame[];
  /** The 4 KiB page of guest frame `gfn` (the segments' frames), or undefined if there is none. */
  page(gfn: Gfn): Uint8Array | undefined;
  /**
   * Grant up to this many of the caller's own frames persistently and in place (default 0: none).
   * A segment whose frame has such a grant, or gets one while there is room, names it directly:
   * the backend reads or writes the caller's page itself and nothing is copied. Beyond the limit,
   * segments go through the pool as above. The trade: those frames stay granted (writable) to the
   * backend until the device disconnects, as pool pages do; suited to a caller that reuses its
   * I/O buffers (a BIOS disk buffer, a guest kernel's bounce pages), not one that reads into any page.
   */
  readonly direct?: number;
}

export interface BlkfrontCounters {
  requests: number;
  segments: number;
  bytes: number;
  responses: number;
  errors: number;
  pushes: number;
  notificationsSent: number;
  notificationsSuppressed: number;
  /** Requests that waited for a free ring slot. */
  backlogged: number;
  /** Responses for ids never issued (a broken or hostile backend). */
  bogusResponses: number;
  /** Pool pages granted (persistent grants: each once per connection). */
  persistentGrants: number;
  /** Segments that went through a pool page. */
  persistentSegments: number;
  /** Segments that named the caller's own frame under a persistent grant (no copy). */
  directSegments: number;
  /** Caller frames granted persistently in place (each once per connection). */
  directGrants: number;
}

export interface BlkfrontOptions {
  ring: FrontRing;
  backendDomid: DomId;
  grants: GrantWriter;
  /** Sends on the event channel to the backend. */
  notify: () => void;
  info: BlkDiskInfo;
  /** The vdev number written as `virtual-device`; echoed in each request's `handle`. */
  handle: number;
  /** The pool for persistent grants; used only when `info.persistent` says they were negotiated. */
  persistent?: BlkfrontPersistentOptions;
}

interface PoolPage {
  gref: GrantRef | null;
  readonly frame: BlkfrontFrame;
}

type Op =
  | { kind: 'rw'; op: 'read' | 'write'; sector: number; segments: readonly BlkfrontSegment[] }
  | { kind: 'flush' }
  | { kind: 'discard'; sector: number; nrSectors: number };

interface InFlight {
  /** The request's id (the shadow slot is `id & mask`; the id tells a stale answer from a live one). */
  readonly id: number;
  /** Grants to end on completion (none on the persistent path). */
  readonly grefs: GrantRef[] | null;
  /** Pool pages held, with the caller's page and byte range to copy a READ's data to. */
  readonly pool: { page: PoolPage; to: Uint8Array | undefined; from: number; to_: number }[] | null;
  readonly resolve: (status: number) => void;
}

// Byte offsets of the fields the hot paths write and read in ring slots (io/blkif.h, x86_64).
const { reqOperation: RQ_OP, reqNrSegments: RQ_NSEG, reqHandle: RQ_HANDLE, reqId: RQ_ID, reqSector: RQ_SECTOR, reqSeg0: RQ_SEG0, segBytes: SEG_BYTES } = BLKIF_OFFSETS;
const { segGref: SEG_GREF, segFirst: SEG_FIRST, segLast: SEG_LAST, rspId: RS_ID, rspStatus: RS_STATUS } = BLKIF_OFFSETS;
const TWO32 = 0x100000000;

export class BlkfrontError extends Error {}

export class Blkfront {
  readonly counters: BlkfrontCounters = {
    requests: 0, segments: 0, bytes: 0, responses: 0, errors: 0, pushes: 0,
    notificationsSent: 0, notificationsSuppressed: 0, backlogged: 0, bogusResponses: 0, persistentGrants: 0, persistentSegments: 0,
    directSegments: 0, directGrants: 0,
  };
  private readonly ring: FrontRing;
  /**
   * Requests on the ring, by `id & mask` (Linux blkfront's shadow array): at most one ring's worth
   * is outstanding, the table has twice that many places, and an id whose place is still taken
   * (a request answered late) is skipped. Ids are numbers below 2^53, unique per connection.
   */
  private readonly shadow: (InFlight | undefined)[];
  private readonly mask: number;
  private inflightCount = 0;
  private readonly backlog: Array<{ op: Op; resolve: (s: number) => void }> = [];
  private nextId = 1;
  private unpushed = 0;
  /** Caller frame -> its in-place persistent grant (`direct`). */
  private readonly direct = new Map<number, GrantRef>();
  private readonly directMax: number;

  /** Free pool pages (LIFO, so the backend's working set of mappings stays small); null: not persistent. */
  private readonly pool: PoolPage[] | null;
  private readonly persistent: BlkfrontPersistentOptions | undefined;

  constructor(private readonly o: BlkfrontOptions) {
    this.ring = o.ring;
    this.persistent = o.info.persistent ? o.persistent : undefined;
    if (o.info.persistent && !o.persistent) throw new BlkfrontError('blkfront: persistent grants negotiated but no pool given');
    if (this.persistent && this.persistent.frames.length < BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      throw new BlkfrontError(`blkfront: a persistent pool needs at least ${BLKIF_MAX_SEGMENTS_PER_REQUEST} frames (got ${this.persistent.frames.length})`);
    }
    this.pool = this.persistent ? this.persistent.frames.map((frame) => ({ gref: null, frame })).reverse() : null;
    this.directMax = this.persistent ? Math.max(0, Math.floor(this.persistent.direct ?? 0)) : 0;
    let size = 1;
    while (size < this.ring.nrEnts * 2) size *= 2;
    this.shadow = new Array<InFlight | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  /** Persistent grants are in use on this connection. */
  get isPersistent(): boolean {
    return this.pool !== null;
  }

  get info(): BlkDiskInfo {
    return this.o.info;
  }

  /** Requests placed on the ring or waiting for a slot, not yet answered. */
  get outstanding(): number {
    return this.inflightCount + this.backlog.length;
  }

  /**
   * Queues a read or write of consecutive disk sectors from `sector` into/out of `segments`
   * (1..11 guest pages). Call `push()` to publish. Resolves with the BLKIF_RSP_* status.
   */
  queueRw(op: 'read' | 'write', sector: number, segments: readonly BlkfrontSegment[]): Promise<number> {
    if (segments.length === 0 || segments.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      throw new BlkfrontError(`blkfront: ${segments.length} segments (expected 1..${BLKIF_MAX_SEGMENTS_PER_REQUEST})`);
    }
    for (const s of segments) {
      if (!(s.firstSect >= 0 && s.firstSect <= s.lastSect && s.lastSect < SECTORS_PER_PAGE)) {
        throw new BlkfrontError(`blkfront: segment sectors ${s.firstSect}..${s.lastSect} are not within a page`);
      }
    }
    return this.enqueue({ kind: 'rw', op, sector, segments });
  }

  queueFlush(): Promise<number> {
    return this.enqueue({ kind: 'flush' });
  }

  queueDiscard(sector: number, nrSectors: number): Promise<number> {
    return this.enqueue({ kind: 'discard', sector, nrSectors });
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish what was queued; kick the backend if it asked. */
  push(): void {
    if (this.unpushed === 0) return;
    this.unpushed = 0;
    this.counters.pushes++;
    if (this.ring.pushRequests()) {
      this.counters.notificationsSent++;
      this.o.notify();
    } else {
      this.counters.notificationsSuppressed++;
    }
  }

  /**
   * The event channel fired: consume every response (with the final check that re-arms
   * `rsp_event`), settle the requests, then place backlogged requests in the freed slots.
   * Returns the number of responses handled.
   */
  handleResponses(): number {
    let handled = 0;
    do {
      let n: number;
      const view = this.ring.view;
      while ((n = this.ring.unconsumedResponses()) > 0) {
        for (let i = 0; i < n; i++) {
          const off = this.ring.responseOffset();
          // Read each field once: the backend may rewrite the slot at any moment.
          const lo = view.getUint32(off + RS_ID, true);
          const hi = view.getUint32(off + RS_ID + 4, true);
          const status = view.getInt16(off + RS_STATUS, true);
          this.ring.consumed();
          handled++;
          this.complete(hi < 0x200000 ? hi * TWO32 + lo : -1, status);
        }
      }
    } while (this.ring.finalCheckForResponses());
    if (this.backlog.length > 0) {
      while (this.backlog.length > 0 && this.canPlace(this.backlog[0]!.op)) {
        const b = this.backlog.shift()!;
        this.place(b.op, b.resolve);
      }
      this.push();
    }
    return handled;
  }

  /** Why the ring is unusable (a backend broke the protocol), or null. */
  get broken(): string | null {
    return this.ring.broken?.message ?? null;
  }

  /**
   * The device is going away (backend closed, ring broken): every request still waiting is
   * answered BLKIF_RSP_ERROR and its grants are ended (or retired, if the backend still holds them).
   */
  failAll(): void {
    for (let i = 0; i < this.shadow.length; i++) {
      const req = this.shadow[i];
      if (!req) continue;
      this.shadow[i] = undefined;
      this.inflightCount--;
      if (req.grefs) for (const g of req.grefs) this.o.grants.endAccess(g);
      if (req.pool) for (const p of req.pool) this.pool!.push(p.page);
      this.counters.errors++;
      req.resolve(BLKIF_RSP.ERROR);
    }
    for (const b of this.backlog.splice(0)) {
      this.counters.errors++;
      b.resolve(BLKIF_RSP.ERROR);
    }
  }

  /** Pool pages a request needs (0 when not persistent). */
  private poolNeed(op: Op): number {
    return this.pool && op.kind === 'rw' ? op.segments.length : 0;
  }

  private canPlace(op: Op): boolean {
    return !this.ring.full() && (this.pool === null || this.pool.length >= this.poolNeed(op));
  }

  private enqueue(op: Op): Promise<number> {
    return new Promise<number>((resolve) => {
      if (this.backlog.length > 0 || !this.canPlace(op)) {
        this.counters.backlogged++;
        this.backlog.push({ op, resolve });
      } else {
        this.place(op, resolve);
      }
    });
  }

  /** Fills the next request slot (the slot is ours: nothing the backend wrote is read here). */
  private place(op: Op, resolve: (s: number) => void): void {
    let id = this.nextId++;
    while (this.shadow[id & this.mask] !== undefined) id = this.nextId++;
    const view = this.ring.view;
    const off = this.ring.nextRequestOffset();
    let grefs: GrantRef[] | null = null;
    let pool: InFlight['pool'] = null;
    if (op.kind === 'rw') {
      const write = op.op === 'write';
      const segs = op.segments;
      for (let i = 0; i < segs.length; i++) {
        const s = segs[i]!;
        let gref: GrantRef | null;
        if (this.pool) {
          gref = this.directGrant(s.gfn);
          if (gref !== null) this.counters.directSegments++;
          else gref = this.poolSegment(s, write, (pool ??= []));
        } else {
          gref = this.o.grants.grantAccess(this.o.backendDomid, s.gfn, write);
          if (gref !== null) (grefs ??= []).push(gref);
        }
        if (gref === null) {
          if (grefs) for (const g of grefs) this.o.grants.endAccess(g);
          if (pool) for (const p of pool) this.pool!.push(p.page);
          this.counters.errors++;
          resolve(BLKIF_RSP.ERROR);
          return;
        }
        const at = off + RQ_SEG0 + i * SEG_BYTES;
        view.setUint32(at + SEG_GREF, gref, true);
        view.setUint8(at + SEG_FIRST, s.firstSect);
        view.setUint8(at + SEG_LAST, s.lastSect);
        this.counters.bytes += (s.lastSect - s.firstSect + 1) * SECTOR_SIZE;
      }
      view.setUint8(off + RQ_OP, write ? BLKIF_OP.WRITE : BLKIF_OP.READ);
      view.setUint8(off + RQ_NSEG, segs.length);
      view.setUint16(off + RQ_HANDLE, this.o.handle, true);
      view.setUint32(off + RQ_ID, id >>> 0, true);
      view.setUint32(off + RQ_ID + 4, Math.floor(id / TWO32), true);
      view.setUint32(off + RQ_SECTOR, op.sector >>> 0, true);
      view.setUint32(off + RQ_SECTOR + 4, Math.floor(op.sector / TWO32), true);
      this.counters.segments += segs.length;
    } else if (op.kind === 'flush') {
      blkifRequest.write(view, off, { operation: BLKIF_OP.FLUSH_DISKCACHE, nrSegments: 0, handle: this.o.handle, id: BigInt(id), sectorNumber: 0 });
    } else {
      blkifRequestDiscard.write(view, off, { operation: BLKIF_OP.DISCARD, flag: 0, handle: this.o.handle, id: BigInt(id), sectorNumber: op.sector, nrSectors: op.nrSectors });
    }
    this.shadow[id & this.mask] = { id, grefs, pool, resolve };
    this.inflightCount++;
    this.ring.produced();
    this.unpushed++;
    this.counters.requests++;
  }

  private complete(id: number, status: number): void {
    const req = id >= 0 ? this.shadow[id & this.mask] : undefined;
    if (!req || req.id !== id) {
      this.counters.bogusResponses++;
      return;
    }
    this.shadow[id & this.mask] = undefined;
    this.inflightCount--;
    this.counters.responses++;
    if (req.grefs) for (const g of req.grefs) this.o.grants.endAccess(g);
    if (req.pool) {
      for (const p of req.pool) {
        // A READ's data, out of our pool page into the caller's (the backend wrote it before responding).
        if (p.to && status === BLKIF_RSP.OKAY) p.to.set(p.page.frame.bytes.subarray(p.from, p.to_), p.from);
        this.pool!.push(p.page);
      }
    }
    if (status !== BLKIF_RSP.OKAY) this.counters.errors++;
    req.resolve(status);
  }

  /** The caller's frame under an in-place persistent grant, granting it now if there is room; null otherwise. */
  private directGrant(gfn: Gfn): GrantRef | null {
    if (this.directMax === 0) return null;
    const g = this.direct.get(gfn);
    if (g !== undefined) return g;
    if (this.direct.size >= this.directMax) return null;
    const ref = this.o.grants.grantAccess(this.o.backendDomid, gfn, false);
    if (ref === null) return null;
    this.direct.set(gfn, ref);
    this.counters.directGrants++;
    return ref;
  }

  /**
   * A segment through a pool page: grant it the first time (writable: the page carries READs and
   * WRITEs), copy a WRITE's data in. Null if the caller's frame is unknown or no ref is free.
   */
  private poolSegment(s: BlkfrontSegment, write: boolean, held: NonNullable<InFlight['pool']>): GrantRef | null {
    const caller = this.persistent!.page(s.gfn);
    const page = this.pool!.pop();
    if (!caller || !page) {
      if (page) this.pool!.push(page);
      return null;
    }
    if (page.gref === null) {
      page.gref = this.o.grants.grantAccess(this.o.backendDomid, page.frame.gfn, false);
      if (page.gref === null) {
        this.pool!.push(page);
        return null;
      }
      this.counters.persistentGrants++;
    }
    const from = s.firstSect * SECTOR_SIZE;
    const to = (s.lastSect + 1) * SECTOR_SIZE;
    if (write) page.frame.bytes.set(caller.subarray(from, to), from);
    held.push({ page, to: write ? undefined : caller, from, to_: to });
    this.counters.persistentSegments++;
    return page.gref;
  }

  /**
   * The connection is gone (after `failAll`): end the pool's grants. A grant the backend still
   * has mapped cannot be ended yet; the grant table retires it and retries later.
   */
  releasePersistent(): void {
    if (!this.pool) return;
    for (const p of this.pool) {
      if (p.gref !== null) this.o.grants.endAccess(p.gref);
      p.gref = null;
    }
    for (const g of this.direct.values()) this.o.grants.endAccess(g);
    this.direct.clear();
  }
}
