/**
 * Machine memory: the host's RAM, one buffer (in the running host, the MAP_SHARED machine-memory
 * file; in unit tests, a plain ArrayBuffer) cut into 4 KiB frames numbered by MFN. Only the
 * hypervisor decides who owns which frame (frame-table.ts); every process that maps the file sees
 * the same bytes (ARCHITECTURE.md, "Memory").
 */
import { XEN_PAGE_SIZE, type Mfn } from '@xenlab/xen-public';

export class MachineMemory {
  readonly nrFrames: number;
  readonly u8: Uint8Array;

  constructor(readonly buffer: ArrayBuffer | SharedArrayBuffer) {
    if (buffer.byteLength % XEN_PAGE_SIZE !== 0 || buffer.byteLength === 0) {
      throw new RangeError(`machine memory of ${buffer.byteLength} bytes is not a whole number of 4 KiB frames`);
    }
    this.nrFrames = buffer.byteLength / XEN_PAGE_SIZE;
    this.u8 = new Uint8Array(buffer);
  }

  /** Byte offset of a frame (its machine address). */
  addr(mfn: Mfn): number {
    return mfn * XEN_PAGE_SIZE;
  }

  frame(mfn: Mfn): Uint8Array {
    this.check(mfn);
    return this.u8.subarray(mfn * XEN_PAGE_SIZE, (mfn + 1) * XEN_PAGE_SIZE);
  }

  scrub(mfn: Mfn): void {
    this.frame(mfn).fill(0);
  }

  copy(dst: Mfn, dstOff: number, src: Mfn, srcOff: number, len: number): void {
    const s = mfnAddr(src) + srcOff;
    this.u8.copyWithin(mfnAddr(dst) + dstOff, s, s + len);
  }

  private check(mfn: number): void {
    if (!Number.isInteger(mfn) || mfn < 0 || mfn >= this.nrFrames) throw new RangeError(`mfn ${mfn} out of range`);
  }
}

const mfnAddr = (mfn: Mfn): number => mfn * XEN_PAGE_SIZE;
