/**
 * blkback's core: serves one vbd's shared ring (the role of Linux's drivers/block/xen-blkback,
 * written from io/blkif.h and io/ring.h, fact sheet §1–2). For each request it copies the slot
 * out (RING_COPY_REQUEST), validates the copy (request.ts), executes it against the disk image
 * with grant copies (grant-copy.ts), and always answers with a response, even for garbage.
 * Responses are pushed with notification hold-off: the frontend is kicked only when it asked
 * (`rsp_event`), and the backend re-arms `req_event` before going idle (the final check).
 *
 * The wiring (xenstore watches, mapping the ring page, binding the event channel) lives outside
 * this file; a `BlkbackDevice` is given a `BackRing`, the frontend's domid, a disk, the grant-copy
 * interface and a `notify` callback, and `kick()` is called whenever the event channel fires.
 * See docs/pv-disk-request.md for the whole path.
 */
import { BLKIF_OFFSETS, BLKIF_OP, BLKIF_RSP, BLKIF_ENTRY_BYTES, BLKIF_MAX_SEGMENTS_PER_REQUEST, blkifResponse, lookEachTurn, type BackRing } from '@xenlab/ring-buffers';
import { gntstName, type DomId } from '@xenlab/xen-public';
import type { BlockDisk } from './disk-image.ts';
import type { GrantCopyInterface, GrantCopyOp, GrantMapInterface } from './grant-copy.ts';
import type { PersistentGrants, PersistentMapping } from './persistent-grants.ts';
import { opName, parseRequest, type BlkDeviceLimits, type BlkRequest } from './request.ts';

const PAGE = 4096;
const SECTOR = 512;

// Byte offsets of the fields the hot path reads from its private copy of a slot (io/blkif.h, x86_64).
const { reqOperation: RQ_OP, reqNrSegments: RQ_NSEG, reqId: RQ_ID, reqSector: RQ_SECTOR, reqSeg0: RQ_SEG0, segBytes: SEG_BYTES } = BLKIF_OFFSETS;
const { segGref: SEG_GREF, segFirst: SEG_FIRST, segLast: SEG_LAST, rspId: RS_ID, rspOperation: RS_OP, rspStatus: RS_STATUS } = BLKIF_OFFSETS;
/**
 * Most requests one merged run may hold, and most bytes. Small enough that responses trickle
 * out while the rest of the ring is served (the frontend, on the other core, refills the ring
 * meanwhile, so neither side waits for the other: measured with bench pv-blk, 128 KiB beat both
 * 64 KiB and a whole ring's 1 MiB), big enough that a sequential stream costs few system calls.
 */
const RUN_MAX_REQUESTS = 32;
const RUN_MAX_BYTES = 128 * 1024;
/** readv/writev take at most IOV_MAX (1024) buffers. */
const RUN_MAX_IOV = 1024;

export interface BlkbackCounters {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  bytesRead: number;
  bytesWritten: number;
  segments: number;
  /** Responses other than OKAY. */
  errors: number;
  eopnotsupp: number;
  grantErrors: number;
  /** Unmaps that failed (a backend or hypervisor bug; the request was still answered). */
  unmapErrors: number;
  notificationsSent: number;
  notificationsSuppressed: number;
  /** Times the ring was found with no work at the final check (went idle). */
  idles: number;
  /** Polls after a busy pass that found new requests (a wake-up the frontend did not need to send). */
  pollHits: number;
  /** Polls that ran out of time (the device then re-armed `req_event` and went idle). */
  pollMisses: number;
  /** Disk system calls made by the merged fast path (persistent grants), and the requests they served. */
  mergedIos: number;
  mergedRequests: number;
}

export interface BlkbackOptions {
  ring: BackRing;
  frontendDomid: DomId;
  disk: BlockDisk;
  grants: GrantCopyInterface;
  /**
   * With a map interface the device maps each segment's page and reads or writes the disk
   * straight into it (one copy fewer, an unmap per request) instead of copying through scratch.
   */
  grantMap?: GrantMapInterface;
  /**
   * Persistent grants, when both ends wrote `feature-persistent=1` (persistent-grants.ts): a
   * segment whose gref is mapped is served straight from the mapping, new grefs are mapped once;
   * the rest (over the limit, failed maps) take the per-request path (`grants` / `grantMap`).
   * The device releases the mappings in `close()`.
   */
  persistent?: PersistentGrants;
  /** Sends on the event channel to the frontend. */
  notify: () => void;
  /** What the device advertised: feature-flush-cache, feature-discard. Default both on. */
  features?: { flush?: boolean; discard?: boolean };
  /** One line per problem; defaults to silence (the counters still count). */
  log?: (line: string) => void;
  /**
   * Read/write requests served concurrently (default 1). With more, consecutive read/write
   * requests are taken off the ring together and their grant copies overlap (each has its own
   * scratch pages); flush and discard still wait for everything before them.
   */
  inFlight?: number;
  /**
   * After a pass that served requests, keep looking at `req_prod` for up to this many
   * microseconds (yielding to the event loop between looks) before re-arming `req_event` and
   * going idle. A frontend that pushes again meanwhile is served without a notification (its
   * push sees `req_event` behind and does not kick), so a busy ring costs no wake-up per batch.
   * Default 0: go idle at once.
   */
  pollUs?: number;
  /**
   * Poll only after passes that served at most this many requests (default: any). A frontend
   * with few requests in flight turns a response around quickly, and a poll saves it a wake-up
   * per request; one with many in flight answers a big batch slowly, gets one wake-up per batch
   * anyway, and a poll would only take a core from it (measured on two cores: bench pv-blk).
   */
  pollMaxBatch?: number;
  /** Problems logged before the device goes quiet (default 1: a hostile guest must not flood dom0's log; the counters keep counting). */
  logLimit?: number;
}

export class BlkbackDevice {
  readonly counters: BlkbackCounters = {
    requests: 0, reads: 0, writes: 0, flushes: 0, discards: 0, bytesRead: 0, bytesWritten: 0, segments: 0,
    errors: 0, eopnotsupp: 0, grantErrors: 0, unmapErrors: 0, notificationsSent: 0, notificationsSuppressed: 0, idles: 0,
    pollHits: 0, pollMisses: 0, mergedIos: 0, mergedRequests: 0,
  };
  /** The persistent-grant table's counters, when persistent grants were negotiated. */
  get persistentCounters(): PersistentGrants['counters'] | undefined {
    return this.o.persistent?.counters;
  }

  /** Set when the frontend broke the ring protocol (or `close()` ran: 'closed'); the device then serves nothing more. */
  stopped: string | null = null;

  private readonly ring: BackRing;
  private readonly slot = new Uint8Array(BLKIF_ENTRY_BYTES);
  private readonly slotView = new DataView(this.slot.buffer);
  private readonly scratch: Uint8Array;
  private readonly depth: number;
  private readonly limits: BlkDeviceLimits;
  private running: Promise<void> | null = null;
  /**
   * The merged run being built by the hot path: consecutive READs (or WRITEs) of adjacent sectors
   * whose segments are all persistently mapped, served by one readv/writev. Ids are kept as their
   * two raw 32-bit halves (echoed byte for byte, no BigInt per request).
   */
  private readonly run = {
    n: 0,
    write: false,
    sector: 0,
    bytes: 0,
    idLo: new Uint32Array(RUN_MAX_REQUESTS),
    idHi: new Uint32Array(RUN_MAX_REQUESTS),
    /**
     * The run's data: `ranges` (byteOffset, length) pairs of the one buffer every page of the run
     * lives in (the machine-memory mapping, in dom0), pages at consecutive offsets coalesced into
     * one range; no typed-array view is made unless the disk wants views.
     */
    buffer: null as ArrayBufferLike | null,
    iov: new Float64Array(2 * RUN_MAX_IOV),
    ranges: 0,
  };
  private again = false;
  private logged = 0;

  constructor(private readonly o: BlkbackOptions) {
    this.ring = o.ring;
    this.depth = Math.max(1, Math.floor(o.inFlight ?? 1));
    this.scratch = o.grants.scratch(BLKIF_MAX_SEGMENTS_PER_REQUEST * this.depth);
    if (this.scratch.byteLength < BLKIF_MAX_SEGMENTS_PER_REQUEST * this.depth * PAGE) {
      throw new RangeError(`blkback: scratch of ${this.scratch.byteLength} bytes is smaller than ${BLKIF_MAX_SEGMENTS_PER_REQUEST * this.depth} pages`);
    }
    this.limits = {
      sectors: o.disk.sectors,
      readOnly: o.disk.readOnly,
      flush: o.features?.flush ?? true,
      discard: o.features?.discard ?? true,
    };
  }

  /**
   * The event channel fired (or the device just connected): serve every request on the ring,
   * then re-arm and go idle. Never throws; a kick while serving makes the loop look again (and
   * returns the same promise, settled when everything up to that kick has been served).
   */
  kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.stopped) return Promise.resolve();
    // `loop` always awaits before it ends, so `running` is set before its `finally` clears it.
    this.running = this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.serve();
      } while (this.again && !this.stopped);
    } catch (e) {
      // Not a guest's doing (those are answered above): the ring mapping went away, say. Stop this
      // device only; dom0 goes on.
      this.stop(`internal error: ${(e as Error).message ?? String(e)}`);
    } finally {
      // Cleared in the same synchronous step as the last look at `again`. (It used to be cleared
      // by kick() after awaiting this loop, a microtask later: a kick from a microtask that ran
      // in between saw the loop still running, set `again` for a loop that had already decided
      // to stop, and was lost. The frontend, having notified once, waited for ever.)
      this.running = null;
    }
  }

  /**
   * The ring is disconnecting: serve nothing more, wait for the requests under way, then release
   * the persistent mappings (after this no page of the frontend is touched).
   */
  async close(): Promise<void> {
    if (!this.stopped) this.stopped = 'closed';
    while (this.running) await this.running.catch(() => {});
    await this.o.persistent?.release();
  }

  private async serve(): Promise<void> {
    for (;;) {
      let n: number;
      let served = 0;
      while (!this.stopped && (n = this.ring.unconsumedRequests()) > 0) {
        served += n;
        // Up to `depth` read/write requests at once, each with its own scratch slot; anything
        // else (flush, discard, errors) waits for the batch before it, so ordering holds.
        let batch: { id: bigint; operation: number; run: Promise<number> }[] = [];
        const drain = async () => {
          const done = batch;
          batch = [];
          for (const b of done) this.respond(b.id, b.operation, await b.run);
        };
        for (let i = 0; i < n && !this.stopped; i++) {
          this.ring.copyRequest(this.slot);
          this.counters.requests++;
          // The hot path: a READ/WRITE whose pages are all persistently mapped joins the merged run.
          if (this.o.persistent && this.tryFast(this.o.persistent)) continue;
          this.flushRun();
          const p = this.prepare();
          if (p.kind === 'rw') {
            batch.push({ id: p.id, operation: p.operation, run: this.executeSafely(p.request, batch.length) });
            if (batch.length >= this.depth) await drain();
          } else {
            if (batch.length > 0) await drain();
            const r = p.kind === 'done' ? p : { ...p, status: await this.executeSafely(p.request, 0) };
            this.respond(r.id, r.operation, r.status);
          }
        }
        this.flushRun();
        if (batch.length > 0) await drain();
      }
      if (this.ring.broken) {
        this.stop(this.ring.broken.message);
        return;
      }
      if (served > 0 && served <= (this.o.pollMaxBatch ?? Infinity) && (this.o.pollUs ?? 0) > 0 && (await this.pollForRequests(this.o.pollUs!))) continue;
      if (this.stopped) return;
      if (!this.ring.finalCheckForRequests()) {
        this.counters.idles++;
        return;
      }
    }
  }

  /**
   * Bounded polling of `req_prod` (not `req_event`: it stays where it was, so the frontend's
   * pushes meanwhile are not kicked): a look per turn of the event loop, the core yielded before
   * each (`lookEachTurn`), so dom0's other devices and xenstore keep being served and a frontend
   * runnable on this core runs at once. True when requests (or a broken index) showed up.
   */
  private async pollForRequests(us: number): Promise<boolean> {
    const end = performance.now() + us / 1000;
    const found = await lookEachTurn(
      () => this.stopped !== null || this.ring.unconsumedRequests() > 0 || this.ring.broken !== null,
      () => performance.now() < end,
    );
    if (found && !this.stopped) {
      this.counters.pollHits++;
      return true;
    }
    if (!found) this.counters.pollMisses++;
    return false;
  }

  /** Parses the private copy in `slot`: an answer already (garbage), or a request to execute. */
  private prepare():
    | { kind: 'done'; id: bigint; operation: number; status: number }
    | { kind: 'rw' | 'other'; id: bigint; operation: number; request: BlkRequest } {
    let parsed: ReturnType<typeof parseRequest>;
    try {
      parsed = parseRequest(this.slotView, this.limits);
    } catch (e) {
      return { kind: 'done', id: this.slotView.getBigUint64(8, true), operation: this.slot[0]!, status: this.fail(BLKIF_RSP.ERROR, `unparseable request: ${String(e)}`) };
    }
    const { id, operation } = parsed;
    if (parsed.kind === 'rejected') return { kind: 'done', id, operation, status: this.fail(parsed.status, `${opName(operation)} id ${id}: ${parsed.reason}`) };
    return { kind: parsed.kind === 'rw' ? 'rw' : 'other', id, operation, request: parsed };
  }

  /** Executes a validated request with scratch slot `k`; an I/O error becomes BLKIF_RSP_ERROR. */
  private async executeSafely(r: BlkRequest, k: number): Promise<number> {
    try {
      return await this.execute(r, k);
    } catch (e) {
      return this.fail(BLKIF_RSP.ERROR, `${opName(r.operation)} id ${r.id}: I/O error: ${(e as Error).message ?? String(e)}`);
    }
  }

  private async execute(r: BlkRequest, k: number): Promise<number> {
    switch (r.kind) {
      case 'flush':
        this.o.disk.flush();
        this.counters.flushes++;
        return BLKIF_RSP.OKAY;
      case 'discard':
        if (r.nrSectors > 0) this.o.disk.discard(r.sector, r.nrSectors);
        this.counters.discards++;
        return BLKIF_RSP.OKAY;
      case 'rw': {
        if (this.o.persistent) return this.executePersistent(r, k, this.o.persistent);
        if (this.o.grantMap) return this.executeMapped(r, this.o.grantMap);
        // Segment i's bytes sit in scratch page i at the same in-page offset as in the granted
        // page, so every copy stays inside one page on both sides (GNTTABOP_copy's rule).
        const ops: GrantCopyOp[] = [];
        const buffers: Uint8Array[] = [];
        const base = k * BLKIF_MAX_SEGMENTS_PER_REQUEST * PAGE;
        for (let i = 0; i < r.segments.length; i++) {
          const s = r.segments[i]!;
          const offset = s.firstSect * SECTOR;
          const len = (s.lastSect - s.firstSect + 1) * SECTOR;
          const at = base + i * PAGE + offset;
          ops.push({ dir: r.op === 'read' ? 'to-guest' : 'from-guest', domid: this.o.frontendDomid, gref: s.gref, offset, len, scratchOffset: at });
          buffers.push(this.scratch.subarray(at, at + len));
        }
        this.counters.segments += ops.length;
        const bytes = r.nrSectors * SECTOR;
        if (r.op === 'write') {
          // All of the data first: a bad grant anywhere means nothing reaches the disk.
          const bad = this.badGrant(ops, await this.o.grants.copy(ops));
          if (bad) return this.fail(BLKIF_RSP.ERROR, `WRITE id ${r.id}: ${bad}`);
          this.o.disk.writev(buffers, r.sector);
          this.counters.writes++;
          this.counters.bytesWritten += bytes;
        } else {
          this.o.disk.readv(buffers, r.sector);
          const bad = this.badGrant(ops, await this.o.grants.copy(ops));
          if (bad) return this.fail(BLKIF_RSP.ERROR, `READ id ${r.id}: ${bad}`);
          this.counters.reads++;
          this.counters.bytesRead += bytes;
        }
        return BLKIF_RSP.OKAY;
      }
    }
  }

  /**
   * The hot path for the private copy in `slot`: a well-formed READ/WRITE whose every segment's
   * gref is persistently mapped is added to the merged run (flushing the run first if it does
   * not continue it) and true is returned; anything else (other operations, a bad segment or
   * sector, an unmapped gref) returns false with nothing changed, for the general path, which
   * validates and answers it exactly as before.
   */
  private tryFast(pg: PersistentGrants): boolean {
    const v = this.slotView;
    const op = v.getUint8(RQ_OP);
    if (op !== BLKIF_OP.READ && op !== BLKIF_OP.WRITE) return false;
    const write = op === BLKIF_OP.WRITE;
    if (write && this.limits.readOnly) return false;
    const nseg = v.getUint8(RQ_NSEG);
    if (nseg === 0 || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) return false;
    const lo = v.getUint32(RQ_SECTOR, true);
    const hi = v.getUint32(RQ_SECTOR + 4, true);
    if (hi >= 0x200000) return false; // beyond 2^53: let the general path say so
    const sector = hi * 0x100000000 + lo;
    let sectors = 0;
    const maps = this.fastMaps;
    let buffer: ArrayBufferLike | null = null;
    for (let i = 0; i < nseg; i++) {
      const at = RQ_SEG0 + i * SEG_BYTES;
      const first = v.getUint8(at + SEG_FIRST);
      const last = v.getUint8(at + SEG_LAST);
      const m = pg.mapping(v.getUint32(at + SEG_GREF, true));
      if (last >= 8 || first > last || m === undefined) return false;
      // A request's pages in two mappings (not in dom0, where all are machine memory): general path.
      if (buffer !== m.buffer) {
        if (buffer !== null) return false;
        buffer = m.buffer;
      }
      maps[i] = m;
      sectors += last - first + 1;
    }
    if (sector + sectors > this.limits.sectors) return false;
    const r = this.run;
    const bytes = sectors * SECTOR;
    if (r.n > 0 && (r.write !== write || r.sector + r.bytes / SECTOR !== sector || r.buffer !== buffer || r.n === RUN_MAX_REQUESTS || r.bytes + bytes > RUN_MAX_BYTES || r.ranges + nseg > RUN_MAX_IOV)) {
      this.flushRun();
    }
    if (r.n === 0) {
      r.write = write;
      r.sector = sector;
      r.bytes = 0;
      r.buffer = buffer;
      r.ranges = 0;
    }
    const iov = r.iov;
    for (let i = 0; i < nseg; i++) {
      const at = RQ_SEG0 + i * SEG_BYTES;
      const m = maps[i]!;
      const start = m.offset + v.getUint8(at + SEG_FIRST) * SECTOR;
      const len = (v.getUint8(at + SEG_LAST) + 1 - v.getUint8(at + SEG_FIRST)) * SECTOR;
      const k = 2 * r.ranges;
      if (r.ranges > 0 && iov[k - 2]! + iov[k - 1]! === start) {
        // Adjacent in the same mapping (consecutive machine frames): one range for both.
        iov[k - 1] = iov[k - 1]! + len;
      } else {
        iov[k] = start;
        iov[k + 1] = len;
        r.ranges++;
      }
    }
    pg.counters.hits += nseg;
    this.counters.segments += nseg;
    r.idLo[r.n] = v.getUint32(RQ_ID, true);
    r.idHi[r.n] = v.getUint32(RQ_ID + 4, true);
    this.runSectors[r.n] = sectors;
    r.n++;
    r.bytes += bytes;
    return true;
  }

  /** "READ id N" for run request `k`, for the log. */
  private runRequest(k: number): string {
    return `${this.run.write ? 'WRITE' : 'READ'} id ${this.run.idHi[k]! * 0x100000000 + this.run.idLo[k]!}`;
  }

  /** The run's ranges as views (for a disk without `readRanges`, and the error path). */
  private runViews(): Uint8Array[] {
    const r = this.run;
    const views: Uint8Array[] = [];
    for (let i = 0; i < r.ranges; i++) views.push(new Uint8Array(r.buffer!, r.iov[2 * i]!, r.iov[2 * i + 1]!));
    return views;
  }

  /**
   * Serves the merged run with one readv/writev and answers each of its requests. If the merged
   * I/O fails, each request is retried alone so every one gets its own true status.
   */
  private flushRun(): void {
    const r = this.run;
    if (r.n === 0) return;
    const n = r.n;
    r.n = 0;
    const disk = this.o.disk;
    let status: number = BLKIF_RSP.OKAY;
    try {
      if (r.write) {
        if (disk.writeRanges) disk.writeRanges(r.buffer!, r.iov, r.ranges, r.sector);
        else disk.writev(this.runViews(), r.sector);
      } else if (disk.readRanges) disk.readRanges(r.buffer!, r.iov, r.ranges, r.sector);
      else disk.readv(this.runViews(), r.sector);
      this.counters.mergedIos++;
      this.counters.mergedRequests += n;
    } catch (e) {
      status = BLKIF_RSP.ERROR;
      if (n === 1) this.fail(status, `${this.runRequest(0)}: I/O error: ${(e as Error).message ?? String(e)}`);
    }
    if (status !== BLKIF_RSP.OKAY && n > 1) {
      // Per request, in order: split the buffers back by each request's byte count.
      let b = 0;
      let sector = r.sector;
      const flat = this.runViews().flatMap((buf) => Array.from({ length: buf.byteLength / SECTOR }, (_, k) => buf.subarray(k * SECTOR, (k + 1) * SECTOR)));
      for (let k = 0; k < n; k++) {
        const count = this.runSectors[k]!;
        const mine = flat.slice(b, b + count);
        b += count;
        let st: number = BLKIF_RSP.OKAY;
        try {
          if (r.write) this.o.disk.writev(mine, sector);
          else this.o.disk.readv(mine, sector);
        } catch (e) {
          st = this.fail(BLKIF_RSP.ERROR, `${this.runRequest(k)}: I/O error: ${(e as Error).message ?? String(e)}`);
        }
        sector += count;
        this.respondRaw(k, r.write, st);
      }
    } else {
      for (let k = 0; k < n; k++) this.respondRaw(k, r.write, status);
    }
    if (status === BLKIF_RSP.OKAY) {
      if (r.write) {
        this.counters.writes += n;
        this.counters.bytesWritten += r.bytes;
      } else {
        this.counters.reads += n;
        this.counters.bytesRead += r.bytes;
      }
    }
    this.pushAndNotify();
  }

  /** The mappings of the request `tryFast` is looking at (found once, used twice). */
  private readonly fastMaps: PersistentMapping[] = [];

  /** Sectors of each request in the run (for the error path, which serves them one by one). */
  private readonly runSectors = new Uint32Array(RUN_MAX_REQUESTS);

  /** Writes the response for run request `k` (id echoed as raw halves) and produces it. */
  private respondRaw(k: number, write: boolean, status: number): void {
    if (status !== BLKIF_RSP.OKAY) this.counters.errors++;
    const v = this.ring.view;
    const off = this.ring.nextResponseOffset();
    v.setUint32(off + RS_ID, this.run.idLo[k]!, true);
    v.setUint32(off + RS_ID + 4, this.run.idHi[k]!, true);
    v.setUint8(off + RS_OP, write ? BLKIF_OP.WRITE : BLKIF_OP.READ);
    v.setInt16(off + RS_STATUS, status, true);
    this.ring.produced();
  }

  private pushAndNotify(): void {
    if (this.ring.pushResponses()) {
      this.counters.notificationsSent++;
      this.o.notify();
    } else {
      this.counters.notificationsSuppressed++;
    }
  }

  /**
   * READ/WRITE with persistent grants: new grefs are mapped once (one hypercall for all of them),
   * mapped segments are read or written in place; any segment without a mapping (table full, map
   * failed) goes through scratch page i and a grant copy, as on the per-request path.
   */
  private async executePersistent(r: Extract<BlkRequest, { kind: 'rw' }>, k: number, pg: PersistentGrants): Promise<number> {
    const segs = r.segments;
    let missing = false;
    for (const s of segs) if (!pg.page(s.gref)) missing = true;
    if (missing) await pg.acquire(segs.map((s) => s.gref));
    if (this.stopped === 'closed') return BLKIF_RSP.ERROR;
    const buffers: Uint8Array[] = [];
    let ops: GrantCopyOp[] | undefined;
    const base = k * BLKIF_MAX_SEGMENTS_PER_REQUEST * PAGE;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      const offset = s.firstSect * SECTOR;
      const end = (s.lastSect + 1) * SECTOR;
      const page = pg.page(s.gref);
      if (page) {
        pg.counters.hits++;
        buffers.push(page.subarray(offset, end));
      } else {
        const at = base + i * PAGE + offset;
        (ops ??= []).push({ dir: r.op === 'read' ? 'to-guest' : 'from-guest', domid: this.o.frontendDomid, gref: s.gref, offset, len: end - offset, scratchOffset: at });
        buffers.push(this.scratch.subarray(at, at + end - offset));
      }
    }
    this.counters.segments += segs.length;
    const bytes = r.nrSectors * SECTOR;
    if (r.op === 'write') {
      if (ops) {
        const bad = this.badGrant(ops, await this.o.grants.copy(ops));
        if (bad) return this.fail(BLKIF_RSP.ERROR, `WRITE id ${r.id}: ${bad}`);
      }
      this.o.disk.writev(buffers, r.sector);
      this.counters.writes++;
      this.counters.bytesWritten += bytes;
    } else {
      this.o.disk.readv(buffers, r.sector);
      if (ops) {
        const bad = this.badGrant(ops, await this.o.grants.copy(ops));
        if (bad) return this.fail(BLKIF_RSP.ERROR, `READ id ${r.id}: ${bad}`);
      }
      this.counters.reads++;
      this.counters.bytesRead += bytes;
    }
    return BLKIF_RSP.OKAY;
  }

  /** READ/WRITE by grant map: map every segment (read-only for a WRITE), disk I/O in place, unmap. */
  private async executeMapped(r: Extract<BlkRequest, { kind: 'rw' }>, gm: GrantMapInterface): Promise<number> {
    const write = r.op === 'write';
    const results = await gm.map(r.segments.map((s) => ({ domid: this.o.frontendDomid, gref: s.gref, readonly: write })));
    const mapped = results.filter((m) => m.status === 0 && m.page).map((m) => m.handle);
    try {
      const buffers: Uint8Array[] = [];
      for (let i = 0; i < r.segments.length; i++) {
        const m = results[i];
        const s = r.segments[i]!;
        if (!m || m.status !== 0 || !m.page) {
          this.counters.grantErrors++;
          return this.fail(BLKIF_RSP.ERROR, `${r.op.toUpperCase()} id ${r.id}: segment ${i} gref ${s.gref}: grant map failed (${m ? gntstName(m.status) : 'no status'})`);
        }
        buffers.push(m.page.subarray(s.firstSect * SECTOR, (s.lastSect + 1) * SECTOR));
      }
      this.counters.segments += buffers.length;
      const bytes = r.nrSectors * SECTOR;
      if (write) {
        this.o.disk.writev(buffers, r.sector);
        this.counters.writes++;
        this.counters.bytesWritten += bytes;
      } else {
        this.o.disk.readv(buffers, r.sector);
        this.counters.reads++;
        this.counters.bytesRead += bytes;
      }
      return BLKIF_RSP.OKAY;
    } finally {
      if (mapped.length > 0) {
        const st = await gm.unmap(mapped);
        const bad = st.filter((x) => x !== 0).length;
        if (bad > 0) {
          this.counters.unmapErrors += bad;
          this.log(`blkback dom${this.o.frontendDomid}: ${bad} unmap(s) failed`);
        }
      }
    }
  }

  private badGrant(ops: readonly GrantCopyOp[], statuses: readonly number[]): string | null {
    for (let i = 0; i < ops.length; i++) {
      const st = statuses[i];
      if (st !== 0) {
        this.counters.grantErrors++;
        return `segment ${i} gref ${ops[i]!.gref}: grant copy failed (${st === undefined ? 'no status' : gntstName(st)})`;
      }
    }
    return null;
  }

  private fail(status: number, why: string): number {
    if (status === BLKIF_RSP.EOPNOTSUPP) this.counters.eopnotsupp++;
    this.log(`blkback dom${this.o.frontendDomid}: ${why}`);
    return status;
  }

  private respond(id: bigint, operation: number, status: number): void {
    if (status !== BLKIF_RSP.OKAY) this.counters.errors++;
    blkifResponse.write(this.ring.view, this.ring.nextResponseOffset(), { id, operation, status });
    this.ring.produced();
    this.pushAndNotify();
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.log(`blkback dom${this.o.frontendDomid}: ring stopped: ${reason}`);
  }

  private log(line: string): void {
    const limit = this.o.logLimit ?? 1;
    if (!this.o.log || this.logged > limit) return;
    this.logged++;
    this.o.log(this.logged > limit ? `blkback dom${this.o.frontendDomid}: further problems not logged (see counters)` : line);
  }
}
