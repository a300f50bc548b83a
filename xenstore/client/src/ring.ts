/**
 * The xenstore ring page (`struct xenstore_domain_interface`, io/xs_wire.h; fact sheet 5.5):
 * two 1024-byte byte-stream rings with free-running u32 indices. The guest produces requests
 * and consumes responses; xenstored does the opposite. The layout comes from ring-buffers'
 * table. Each side treats the other's indices as hostile: a producer/consumer gap above the ring
 * size is reported (never looped on), and xenstored then sets the page's error field.
 * Protocol prose: ../../README.md.
 */
import { BAD_INDEX, ByteRing, XENSTORE_CONNECTION, XENSTORE_RING_SIZE, xenstoreDomainInterface as L } from '@xenlab/ring-buffers';

const word = (field: 'reqCons' | 'reqProd' | 'rspCons' | 'rspProd' | 'serverFeatures' | 'connection' | 'error'): number =>
  L.fields[field].offset / 4;

/** The indices were inconsistent (another party wrote nonsense into them). */
export const RING_BAD_INDEX = BAD_INDEX;

export class XenstoreRing {
  private readonly bytes: Uint8Array;
  private readonly words: Uint32Array;
  /** Guest to server. */
  private readonly req: ByteRing;
  /** Server to guest: replies and watch events. */
  private readonly rsp: ByteRing;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset = 0) {
    if (byteOffset % 4 !== 0 || byteOffset + L.size > buffer.byteLength) {
      throw new RangeError(`XenstoreRing: a ${L.size}-byte page at offset ${byteOffset} does not fit a ${buffer.byteLength}-byte buffer`);
    }
    this.bytes = new Uint8Array(buffer, byteOffset, L.size);
    this.words = new Uint32Array(buffer, byteOffset, L.size / 4);
    const at = (f: 'req' | 'rsp' | 'reqCons' | 'reqProd' | 'rspCons' | 'rspProd') => byteOffset + L.fields[f].offset;
    this.req = new ByteRing(buffer, at('req'), XENSTORE_RING_SIZE, at('reqCons'), at('reqProd'));
    this.rsp = new ByteRing(buffer, at('rsp'), XENSTORE_RING_SIZE, at('rspCons'), at('rspProd'));
  }

  /** Zeroes the page (the domain builder does this before introducing the guest). */
  reset(): void {
    this.bytes.fill(0);
  }

  // Guest side.
  writeRequest(src: Uint8Array): number {
    return this.req.write(src);
  }
  readResponse(max = XENSTORE_RING_SIZE): Uint8Array | null {
    return this.rsp.read(max);
  }

  // Server side.
  readRequest(max = XENSTORE_RING_SIZE): Uint8Array | null {
    return this.req.read(max);
  }
  writeResponse(src: Uint8Array): number {
    return this.rsp.write(src);
  }

  /** Bytes the guest has produced and the server not consumed (or RING_BAD_INDEX). */
  requestBytes(): number {
    return this.req.available();
  }
  /** Bytes the server has produced and the guest not consumed (or RING_BAD_INDEX). */
  responseBytes(): number {
    return this.rsp.available();
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
}
