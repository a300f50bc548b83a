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
  BLKIF_OP,
  BLKIF_RSP,
  blkifRequest,
  blkifRequestDiscard,
  blkifResponse,
  blkifSegment,
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
  /** Grants to end on completion (none on the persistent path). */
  readonly grefs: GrantRef[];
  /** Pool pages held, with the caller's page and byte range to copy a READ's data to. */
  readonly pool: { page: PoolPage; to: Uint8Array | undefined; from: number; to_: number }[];
  readonly resolve: (status: number) => void;
}

export class BlkfrontError extends Error {}

export class Blkfront {
  readonly counters: BlkfrontCounters = {
    requests: 0, segments: 0, bytes: 0, responses: 0, errors: 0, pushes: 0,
    notificationsSent: 0, notificationsSuppressed: 0, backlogged: 0, bogusResponses: 0, persistentGrants: 0, persistentSegments: 0,
  };
  private readonly ring: FrontRing;
  private readonly inflight = new Map<bigint, InFlight>();
  private readonly backlog: Array<{ op: Op; resolve: (s: number) => void }> = [];
  private nextId = 1n;
  private unpushed = 0;

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
    return this.inflight.size + this.backlog.length;
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
      while ((n = this.ring.unconsumedResponses()) > 0) {
        for (let i = 0; i < n; i++) {
          const rsp = blkifResponse.read(this.ring.view, this.ring.responseOffset());
          this.ring.consumed();
          handled++;
          this.complete(rsp.id, rsp.status);
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
    for (const [id, req] of this.inflight) {
      this.inflight.delete(id);
      for (const g of req.grefs) this.o.grants.endAccess(g);
      for (const p of req.pool) this.pool!.push(p.page);
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
    const id = this.nextId++;
    const grefs: GrantRef[] = [];
    const view = this.ring.view;
    const off = this.ring.nextRequestOffset();
    const pool: InFlight['pool'] = [];
    if (op.kind === 'rw') {
      const write = op.op === 'write';
      for (let i = 0; i < op.segments.length; i++) {
        const s = op.segments[i]!;
        const gref = this.pool ? this.poolSegment(s, write, pool) : this.o.grants.grantAccess(this.o.backendDomid, s.gfn, write);
        if (gref === null) {
          for (const g of grefs) this.o.grants.endAccess(g);
          for (const p of pool) this.pool!.push(p.page);
          this.counters.errors++;
          resolve(BLKIF_RSP.ERROR);
          return;
        }
        if (!this.pool) grefs.push(gref);
        blkifSegment.write(view, off + blkifRequest.offsetOf('seg', i), { gref, firstSect: s.firstSect, lastSect: s.lastSect });
        this.counters.bytes += (s.lastSect - s.firstSect + 1) * SECTOR_SIZE;
      }
      blkifRequest.write(view, off, {
        operation: write ? BLKIF_OP.WRITE : BLKIF_OP.READ,
        nrSegments: op.segments.length,
        handle: this.o.handle,
        id,
        sectorNumber: op.sector,
      });
      this.counters.segments += op.segments.length;
    } else if (op.kind === 'flush') {
      blkifRequest.write(view, off, { operation: BLKIF_OP.FLUSH_DISKCACHE, nrSegments: 0, handle: this.o.handle, id, sectorNumber: 0 });
    } else {
      blkifRequestDiscard.write(view, off, { operation: BLKIF_OP.DISCARD, flag: 0, handle: this.o.handle, id, sectorNumber: op.sector, nrSectors: op.nrSectors });
    }
    this.inflight.set(id, { grefs, pool, resolve });
    this.ring.produced();
    this.unpushed++;
    this.counters.requests++;
  }

  private complete(id: bigint, status: number): void {
    const req = this.inflight.get(id);
    if (!req) {
      this.counters.bogusResponses++;
      return;
    }
    this.inflight.delete(id);
    this.counters.responses++;
    for (const g of req.grefs) this.o.grants.endAccess(g);
    for (const p of req.pool) {
      // A READ's data, out of our pool page into the caller's (the backend wrote it before responding).
      if (p.to && status === BLKIF_RSP.OKAY) p.to.set(p.page.frame.bytes.subarray(p.from, p.to_), p.from);
      this.pool!.push(p.page);
    }
    if (status !== BLKIF_RSP.OKAY) this.counters.errors++;
    req.resolve(status);
  }

  /**
   * A segment through a pool page: grant it the first time (writable: the page carries READs and
   * WRITEs), copy a WRITE's data in. Null if the caller's frame is unknown or no ref is free.
   */
  private poolSegment(s: BlkfrontSegment, write: boolean, held: InFlight['pool']): GrantRef | null {
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
  }
}
