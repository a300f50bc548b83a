/**
 * A byte-stream ring with free-running 32-bit indices: the shape shared by the console page
 * (io/console.h: `in`/`out` with `*_cons`/`*_prod`) and the xenstore page (io/xs_wire.h:
 * `req`/`rsp`). Byte *x* of the stream lives at `x & (size - 1)`.
 *
 * One side produces (owns the producer index), the other consumes (owns the consumer index).
 * The peer's index is read once per call and checked: a peer claiming more bytes than the ring
 * holds is reported as `BAD_INDEX` instead of being believed, so no caller loops or reads past
 * the ring. Atomics.store of an index orders the data bytes before it (the producer's wmb, the
 * consumer's mb before it reuses space).
 */

/** Returned when the peer's index is impossible (more than `size` bytes apart). */
export const BAD_INDEX = -1;

export class ByteRing {
  private readonly data: Uint8Array;
  private readonly idx: Uint32Array;
  private readonly mask: number;

  /**
   * @param buffer  the shared page's buffer
   * @param dataOffset byte offset of the ring's bytes
   * @param size    ring size in bytes, a power of two
   * @param consOffset byte offset of the consumer index (4-byte aligned)
   * @param prodOffset byte offset of the producer index (4-byte aligned)
   */
  constructor(
    buffer: ArrayBufferLike,
    dataOffset: number,
    readonly size: number,
    private readonly consOffset: number,
    private readonly prodOffset: number,
  ) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ByteRing: size ${size} is not a power of two`);
    if (consOffset % 4 || prodOffset % 4) throw new RangeError('ByteRing: indices must be 4-byte aligned');
    this.data = new Uint8Array(buffer, dataOffset, size);
    this.idx = new Uint32Array(buffer);
    this.mask = size - 1;
  }

  get cons(): number {
    return Atomics.load(this.idx, this.consOffset >> 2);
  }

  get prod(): number {
    return Atomics.load(this.idx, this.prodOffset >> 2);
  }

  /** Bytes waiting for the consumer, or BAD_INDEX. */
  available(): number {
    const n = (this.prod - this.cons) >>> 0;
    return n > this.size ? BAD_INDEX : n;
  }

  /** Room for the producer, or BAD_INDEX. */
  room(): number {
    const used = (this.prod - this.cons) >>> 0;
    return used > this.size ? BAD_INDEX : this.size - used;
  }

  /** Producer: copies as much of `src` as fits, publishes, returns bytes written (or BAD_INDEX). */
  write(src: Uint8Array): number {
    const cons = this.cons;
    const prod = Atomics.load(this.idx, this.prodOffset >> 2);
    const used = (prod - cons) >>> 0;
    if (used > this.size) return BAD_INDEX;
    const n = Math.min(this.size - used, src.length);
    if (n === 0) return 0;
    const start = prod & this.mask;
    const first = Math.min(n, this.size - start);
    this.data.set(src.subarray(0, first), start);
    if (n > first) this.data.set(src.subarray(first, n), 0);
    Atomics.store(this.idx, this.prodOffset >> 2, (prod + n) >>> 0);
    return n;
  }

  /** Consumer: takes up to `max` bytes, frees their space, returns them (null if BAD_INDEX). */
  read(max = this.size): Uint8Array | null {
    const cons = Atomics.load(this.idx, this.consOffset >> 2);
    const avail = (this.prod - cons) >>> 0;
    if (avail > this.size) return null;
    const n = Math.min(avail, max);
    const out = new Uint8Array(n);
    const start = cons & this.mask;
    const first = Math.min(n, this.size - start);
    out.set(this.data.subarray(start, start + first));
    if (n > first) out.set(this.data.subarray(0, n - first), first);
    Atomics.store(this.idx, this.consOffset >> 2, (cons + n) >>> 0);
    return out;
  }

  /** Consumer: discards everything up to the producer (after a BAD_INDEX, to resynchronise). */
  skipToProducer(): void {
    Atomics.store(this.idx, this.consOffset >> 2, this.prod);
  }
}
