/**
 * Xen's io/ring.h in TypeScript: the shared request/response ring between a front end and a
 * back end, with the same page layout, free-running 32-bit indices and notification hold-off
 * (`req_event`/`rsp_event`) as the C macros. Follows xen/include/public/io/ring.h; the rules are
 * explained with a diagram in ../README.md ("The shared ring").
 *
 * Each side keeps private indices outside the page (front: reqProdPvt, rspCons; back:
 * rspProdPvt, reqCons). Everything the peer wrote is hostile: the back end bounds the number of
 * requests it will consume by the free space it has seen answered, and a producer index that
 * claims more entries than the ring holds marks the peer as broken instead of looping.
 */
import { defineLayout } from './layout.ts';

/** The 64-byte header at the start of every shared ring page. */
export const sringHeader = defineLayout('sring header', 64, {
  reqProd: { offset: 0, type: 'u32', writer: 'front', doc: 'request producer index' },
  reqEvent: { offset: 4, type: 'u32', writer: 'back', doc: 'front notifies when req_prod passes this' },
  rspProd: { offset: 8, type: 'u32', writer: 'back', doc: 'response producer index' },
  rspEvent: { offset: 12, type: 'u32', writer: 'front', doc: 'back notifies when rsp_prod passes this' },
  pvt: { offset: 16, count: 4, elem: 'u8', writer: 'either', doc: 'protocol-private (netif: smartpoll_active)' },
  pad: { offset: 20, count: 44, elem: 'u8', writer: 'front', doc: 'zero' },
});

export const SRING_HEADER_BYTES = 64;
const REQ_PROD = 0;
const REQ_EVENT = 1;
const RSP_PROD = 2;
const RSP_EVENT = 3;

/** Entries in a ring of `ringBytes` (pages × 4096) for slots of `entryBytes`: __RD32 of the raw fit. */
export function ringEntries(ringBytes: number, entryBytes: number): number {
  const raw = Math.floor((ringBytes - SRING_HEADER_BYTES) / entryBytes);
  if (raw < 1) throw new RangeError(`ring: ${ringBytes} bytes hold no ${entryBytes}-byte entry`);
  return 2 ** Math.floor(Math.log2(raw));
}

/** Should the producer notify? `(new - event) < (new - old)` modulo 2^32, as RING_PUSH_*_AND_CHECK_NOTIFY. */
export function needsNotify(oldProd: number, newProd: number, event: number): boolean {
  return ((newProd - event) >>> 0) < ((newProd - oldProd) >>> 0);
}

/** A peer that broke the ring protocol; the ring stops processing and reports this. */
export interface RingPeerError {
  readonly kind: 'request-overflow' | 'response-overflow';
  readonly message: string;
  readonly prod: number;
  readonly cons: number;
}

abstract class RingSide {
  readonly nrEnts: number;
  readonly view: DataView;
  /** Header words (req_prod, req_event, rsp_prod, rsp_event) for atomic access. */
  protected readonly hdr: Uint32Array;
  protected readonly base: number;
  protected readonly entryBytes: number;
  private readonly mask: number;

  constructor(buffer: ArrayBuffer, byteOffset: number, ringBytes: number, entryBytes: number) {
    if (byteOffset % 4 !== 0 || byteOffset < 0 || byteOffset + ringBytes > buffer.byteLength) {
      throw new RangeError(`ring: ${ringBytes} bytes at offset ${byteOffset} do not fit in a ${buffer.byteLength}-byte buffer`);
    }
    this.nrEnts = ringEntries(ringBytes, entryBytes);
    this.mask = this.nrEnts - 1;
    this.entryBytes = entryBytes;
    this.base = byteOffset;
    this.view = new DataView(buffer, byteOffset, ringBytes);
    this.hdr = new Uint32Array(buffer, byteOffset, 4);
  }

  /** Byte offset in `view` of the slot for free-running index `idx`. */
  slotOffset(idx: number): number {
    return SRING_HEADER_BYTES + (idx & this.mask) * this.entryBytes;
  }

  /** Header as the peer left it (for dumps and tests). */
  header(): { reqProd: number; reqEvent: number; rspProd: number; rspEvent: number } {
    return {
      reqProd: Atomics.load(this.hdr, REQ_PROD),
      reqEvent: Atomics.load(this.hdr, REQ_EVENT),
      rspProd: Atomics.load(this.hdr, RSP_PROD),
      rspEvent: Atomics.load(this.hdr, RSP_EVENT),
    };
  }
}

/** The front end's side: produces requests, consumes responses. */
export class FrontRing extends RingSide {
  reqProdPvt = 0;
  rspCons = 0;
  broken: RingPeerError | null = null;

  /** SHARED_RING_INIT + FRONT_RING_INIT: only the front end initialises the page. */
  static init(buffer: ArrayBuffer, byteOffset: number, ringBytes: number, entryBytes: number): FrontRing {
    new Uint8Array(buffer, byteOffset, SRING_HEADER_BYTES).fill(0);
    const r = new FrontRing(buffer, byteOffset, ringBytes, entryBytes);
    Atomics.store(r.hdr, REQ_EVENT, 1);
    Atomics.store(r.hdr, RSP_EVENT, 1);
    return r;
  }

  /** FRONT_RING_ATTACH: resume on a page already in use, starting from its producer index. */
  static attach(buffer: ArrayBuffer, byteOffset: number, ringBytes: number, entryBytes: number): FrontRing {
    const r = new FrontRing(buffer, byteOffset, ringBytes, entryBytes);
    r.reqProdPvt = r.rspCons = Atomics.load(r.hdr, REQ_PROD);
    return r;
  }

  /** RING_FREE_REQUESTS. */
  freeRequests(): number {
    return this.nrEnts - ((this.reqProdPvt - this.rspCons) >>> 0);
  }

  full(): boolean {
    return this.freeRequests() === 0;
  }

  /** Offset of the next request slot; fill it, then call `produced()`. Check `full()` first. */
  nextRequestOffset(): number {
    return this.slotOffset(this.reqProdPvt);
  }

  /** Marks the slot from `nextRequestOffset()` filled. */
  produced(n = 1): void {
    this.reqProdPvt = (this.reqProdPvt + n) >>> 0;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish, and say whether the back end asked for a kick. */
  pushRequests(): boolean {
    const old = Atomics.load(this.hdr, REQ_PROD);
    const nu = this.reqProdPvt;
    // Atomics.store is sequentially consistent: the slots are visible before the index (wmb),
    // and the index before we read req_event (mb).
    Atomics.store(this.hdr, REQ_PROD, nu);
    return needsNotify(old, nu, Atomics.load(this.hdr, REQ_EVENT));
  }

  /** RING_HAS_UNCONSUMED_RESPONSES, with the response-overflow check of a hostile back end. */
  unconsumedResponses(): number {
    if (this.broken) return 0;
    const prod = Atomics.load(this.hdr, RSP_PROD);
    const n = (prod - this.rspCons) >>> 0;
    if (n > ((this.reqProdPvt - this.rspCons) >>> 0)) {
      this.broken = {
        kind: 'response-overflow',
        message: `back end published rsp_prod ${prod} with rsp_cons ${this.rspCons}: ${n} responses for ${(this.reqProdPvt - this.rspCons) >>> 0} outstanding requests`,
        prod,
        cons: this.rspCons,
      };
      return 0;
    }
    return n;
  }

  /** Offset of the response at rspCons; read it, then call `consumed()`. */
  responseOffset(): number {
    return this.slotOffset(this.rspCons);
  }

  consumed(n = 1): void {
    this.rspCons = (this.rspCons + n) >>> 0;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: re-arm rsp_event, then look once more. True if work remains. */
  finalCheckForResponses(): boolean {
    if (this.unconsumedResponses() > 0) return true;
    Atomics.store(this.hdr, RSP_EVENT, (this.rspCons + 1) >>> 0);
    return this.unconsumedResponses() > 0;
  }
}

/** The back end's side: consumes requests, produces responses. */
export class BackRing extends RingSide {
  rspProdPvt = 0;
  reqCons = 0;
  broken: RingPeerError | null = null;

  /** BACK_RING_INIT on a page the front end initialised. */
  static attach(buffer: ArrayBuffer, byteOffset: number, ringBytes: number, entryBytes: number): BackRing {
    return new BackRing(buffer, byteOffset, ringBytes, entryBytes);
  }

  /** BACK_RING_ATTACH: resume from the page's current response producer (after migration, say). */
  static resume(buffer: ArrayBuffer, byteOffset: number, ringBytes: number, entryBytes: number): BackRing {
    const r = new BackRing(buffer, byteOffset, ringBytes, entryBytes);
    r.rspProdPvt = r.reqCons = Atomics.load(r.hdr, RSP_PROD);
    return r;
  }

  /**
   * RING_HAS_UNCONSUMED_REQUESTS with the RING_REQUEST_PROD_OVERFLOW check: the number of
   * requests that may be consumed now, never more than the ring can hold. A front end whose
   * req_prod is impossible marks the ring broken and gets 0 from then on.
   */
  unconsumedRequests(): number {
    if (this.broken) return 0;
    const prod = Atomics.load(this.hdr, REQ_PROD);
    if (((prod - this.rspProdPvt) >>> 0) > this.nrEnts) {
      this.broken = {
        kind: 'request-overflow',
        message: `front end published req_prod ${prod} with ${this.rspProdPvt} responses produced: more than the ring's ${this.nrEnts} entries outstanding`,
        prod,
        cons: this.reqCons,
      };
      return 0;
    }
    const unconsumed = (prod - this.reqCons) >>> 0;
    const room = this.nrEnts - ((this.reqCons - this.rspProdPvt) >>> 0);
    return Math.min(unconsumed, room);
  }

  /** Offset of the request at reqCons. Copy it out (`copyRequest`) before validating it. */
  requestOffset(): number {
    return this.slotOffset(this.reqCons);
  }

  /**
   * RING_COPY_REQUEST: copies the request at reqCons into `dst` (a private buffer of at least
   * one entry) and advances reqCons. Parse and validate only the copy: the front end may change
   * the shared slot at any moment.
   */
  copyRequest(dst: Uint8Array): void {
    const off = this.view.byteOffset + this.slotOffset(this.reqCons);
    if (this.words && dst === this.lastDst) {
      // The hot case (the same private buffer every time, a word-aligned ring): word by word, no
      // view allocated per request.
      const from = off >>> 2;
      const to = this.lastDst32!;
      const w = this.words;
      for (let i = 0; i < to.length; i++) to[i] = w[from + i]!;
    } else {
      dst.set(new Uint8Array(this.view.buffer, off, this.entryBytes));
      if (this.words && dst.byteOffset % 4 === 0 && dst.byteLength >= this.entryBytes) {
        this.lastDst = dst;
        this.lastDst32 = new Uint32Array(dst.buffer, dst.byteOffset, this.entryBytes >>> 2);
      }
    }
    this.reqCons = (this.reqCons + 1) >>> 0;
  }

  /** The ring's buffer as 32-bit words, when slots are word-aligned (for copyRequest). */
  private readonly words: Uint32Array | null =
    this.view.byteOffset % 4 === 0 && this.entryBytes % 4 === 0 && this.view.buffer.byteLength % 4 === 0 ? new Uint32Array(this.view.buffer) : null;
  private lastDst: Uint8Array | null = null;
  private lastDst32: Uint32Array | null = null;

  /** Offset of the next response slot; fill it, then call `produced()`. */
  nextResponseOffset(): number {
    return this.slotOffset(this.rspProdPvt);
  }

  produced(n = 1): void {
    this.rspProdPvt = (this.rspProdPvt + n) >>> 0;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY. */
  pushResponses(): boolean {
    const old = Atomics.load(this.hdr, RSP_PROD);
    const nu = this.rspProdPvt;
    Atomics.store(this.hdr, RSP_PROD, nu);
    return needsNotify(old, nu, Atomics.load(this.hdr, RSP_EVENT));
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: re-arm req_event, then look once more. True if work remains. */
  finalCheckForRequests(): boolean {
    if (this.unconsumedRequests() > 0) return true;
    if (this.broken) return false;
    Atomics.store(this.hdr, REQ_EVENT, (this.reqCons + 1) >>> 0);
    return this.unconsumedRequests() > 0;
  }
}
