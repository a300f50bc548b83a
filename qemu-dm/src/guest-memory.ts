/**
 * An HVM guest's physical memory as qemu-dm sees it: the guest's frames inside the host's
 * machine-memory file, found through the domain's P2M (`domctl getmemlist`, which names the GFN
 * of each MFN). This is what QEMU's mapcache does over `xenforeignmemory_map` in Xen. Guest
 * frames that are holes (VGA at A0000-BFFFF, the option-ROM area) are not RAM: a DMA touching
 * them moves nothing and fails, like a PCI master abort.
 */
import type { DmaMemory } from './devices/types.ts';

const PAGE = 4096;

export class GuestMemory implements DmaMemory {
  /** Byte offset of each guest frame in `buffer`, or -1 for a hole. */
  private readonly frameOffset: Int32Array | Float64Array;

  constructor(
    private readonly buffer: ArrayBuffer,
    /** Pairs from getmemlist: guest frame → machine frame. Frames at or above `limitGfn` are ignored. */
    gfns: readonly number[],
    mfns: readonly number[],
    readonly limitGfn = 0x100,
  ) {
    this.frameOffset = new Float64Array(limitGfn).fill(-1);
    for (let i = 0; i < gfns.length; i++) if (gfns[i]! < limitGfn) this.frameOffset[gfns[i]!] = mfns[i]! * PAGE;
  }

  /** Number of RAM frames below `limitGfn`. */
  get ramFrames(): number {
    let n = 0;
    for (const o of this.frameOffset) if (o >= 0) n++;
    return n;
  }

  isRam(gfn: number): boolean {
    return gfn >= 0 && gfn < this.limitGfn && this.frameOffset[gfn]! >= 0;
  }

  read(gpa: number, length: number): Uint8Array | null {
    if (!this.check(gpa, length)) return null;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      const a = gpa + i;
      const off = a & (PAGE - 1);
      const n = Math.min(PAGE - off, length - i);
      out.set(new Uint8Array(this.buffer, this.frameOffset[a >>> 12]! + off, n), i);
      i += n;
    }
    return out;
  }

  write(gpa: number, data: Uint8Array): boolean {
    if (!this.check(gpa, data.length)) return false;
    for (let i = 0; i < data.length; ) {
      const a = gpa + i;
      const off = a & (PAGE - 1);
      const n = Math.min(PAGE - off, data.length - i);
      new Uint8Array(this.buffer, this.frameOffset[a >>> 12]! + off, n).set(data.subarray(i, i + n));
      i += n;
    }
    return true;
  }

  private check(gpa: number, length: number): boolean {
    if (!Number.isInteger(gpa) || !Number.isInteger(length) || gpa < 0 || length < 0) return false;
    if (gpa + length > this.limitGfn * PAGE) return false;
    for (let p = gpa >>> 12; p <= (gpa + Math.max(length, 1) - 1) >>> 12; p++) if (!(this.frameOffset[p]! >= 0)) return false;
    return true;
  }
}
