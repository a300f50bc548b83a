/**
 * The xenstore ring page (`struct xenstore_domain_interface`, io/xs_wire.h; fact sheet 5.5):
 * two 1024-byte byte-stream rings with free-running u32 indices. The guest produces requests
 * and consumes responses; xenstored does the opposite. The layout comes from ring-buffers'
 * table. Each side treats the other's indices as hostile: a producer/consumer gap above the ring
 * size is reported (never looped on), and xenstored then sets the page's error field.
 * Protocol prose: ../../README.md.
 */
import { XENSTORE_CONNECTION, XENSTORE_RING_SIZE, xenstoreDomainInterface as L } from '@xenlab/ring-buffers';

const MASK = XENSTORE_RING_SIZE - 1;
const word = (field: 'reqCons' | 'reqProd' | 'rspCons' | 'rspProd' | 'serverFeatures' | 'connection' | 'error'): number =>
  L.fields[field].offset / 4;

/** The indices were inconsistent (another party wrote nonsense into them). */
export const RING_BAD_INDEX = -1;

export class XenstoreRing {
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset = 0) {
    if (byteOffset % 4 !== 0 || byteOffset + L.size > buffer.byteLength) {
      throw new RangeError(`XenstoreRing: a ${L.size}-byte page at offset ${byteOffset} does not fit a ${buffer.byteLength}-byte buffer`);
    }
    this.bytes = new Uint8Array(buffer, byteOffset, L.size);
    this.words = new Uint32Array(buffer, byteOffset, L.size / 4);
  }

  /** Zeroes the page (the domain builder does this before introducing the guest). */
  reset(): void {
    this.bytes.fill(0);
  }

  // Guest side.
  writeRequest(src: Uint8Array): number {
    return this.produce(L.fields.req.offset, word('reqCons'), word('reqProd'), src);
  }
  readResponse(max = XENSTORE_RING_SIZE): Uint8Array | null {
    return this.consume(L.fields.rsp.offset, word('rspCons'), word('rspProd'), max);
  }

  // Server side.
  readRequest(max = XENSTORE_RING_SIZE): Uint8Array | null {
    return this.consume(L.fields.req.offset, word('reqCons'), word('reqProd'), max);
  }
  writeResponse(src: Uint8Array): number {
    return this.produce(L.fields.rsp.offset, word('rspCons'), word('rspProd'), src);
  }

  /** Bytes the guest has produced and the server not consumed (or RING_BAD_INDEX). */
  requestBytes(): number {
    return this.gap(word('reqCons'), word('reqProd'));
  }
  /** Bytes the server has produced and the guest not consumed (or RING_BAD_INDEX). */
  responseBytes(): number {
    return this.gap(word('rspCons'), word('rspProd'));
  }

  get connection(): number {
    return Atomics.load(this.words, word('connection'));
  }
  set connection(v: number) {
    Atomics.store(this.words, word('connection'), v);
  }
  get error(): number {
    return Atomics.load(this.words, word('error'));
  }
  set error(v: number) {
    Atomics.store(this.words, word('error'), v);
  }
  get serverFeatures(): number {
    return Atomics.load(this.words, word('serverFeatures'));
  }
  set serverFeatures(v: number) {
    Atomics.store(this.words, word('serverFeatures'), v);
  }

  /** The server's answer to a guest's RECONNECT: indices back to 0, then CONNECTED. */
  resetIndices(): void {
    for (const f of ['reqCons', 'reqProd', 'rspCons', 'rspProd'] as const) Atomics.store(this.words, word(f), 0);
    this.connection = XENSTORE_CONNECTION.CONNECTED;
  }

  private gap(consW: number, prodW: number): number {
    const used = (Atomics.load(this.words, prodW) - Atomics.load(this.words, consW)) >>> 0;
    return used > XENSTORE_RING_SIZE ? RING_BAD_INDEX : used;
  }

  private produce(dataOff: number, consW: number, prodW: number, src: Uint8Array): number {
    // Each index is read once; the sequentially consistent loads and stores order the data copy.
    const cons = Atomics.load(this.words, consW);
    const prod = Atomics.load(this.words, prodW);
    const used = (prod - cons) >>> 0;
    if (used > XENSTORE_RING_SIZE) return RING_BAD_INDEX;
    const n = Math.min(XENSTORE_RING_SIZE - used, src.length);
    if (n === 0) return 0;
    const start = prod & MASK;
    const first = Math.min(n, XENSTORE_RING_SIZE - start);
    this.bytes.set(src.subarray(0, first), dataOff + start);
    if (n > first) this.bytes.set(src.subarray(first, n), dataOff);
    Atomics.store(this.words, prodW, (prod + n) >>> 0);
    return n;
  }

  private consume(dataOff: number, consW: number, prodW: number, max: number): Uint8Array | null {
    const cons = Atomics.load(this.words, consW);
    const prod = Atomics.load(this.words, prodW);
    const avail = (prod - cons) >>> 0;
    if (avail > XENSTORE_RING_SIZE) return null;
    const n = Math.min(avail, max);
    const out = new Uint8Array(n);
    if (n === 0) return out;
    const start = cons & MASK;
    const first = Math.min(n, XENSTORE_RING_SIZE - start);
    out.set(this.bytes.subarray(dataOff + start, dataOff + start + first));
    if (n > first) out.set(this.bytes.subarray(dataOff, dataOff + n - first), first);
    Atomics.store(this.words, consW, (cons + n) >>> 0);
    return out;
  }
}
