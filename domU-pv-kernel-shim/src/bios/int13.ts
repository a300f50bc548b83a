/**
 * INT 13h, the BIOS disk service, served paravirtually: each read or write becomes blkfront
 * requests whose segments are the guest's own buffer pages, granted to the backend (the
 * "A PV disk read, end to end" path in ARCHITECTURE.md; docs/pv-disk-request.md walks through it).
 * Functions: 00h reset, 01h status, 02h/03h CHS read/write, 04h verify, 08h parameters,
 * 0Ch/10h/11h/0Dh no-op successes, 15h type, 41h extensions check, 42h/43h extended read/write
 * (16-byte DAP, 64-bit LBA, the FFFF:FFFF flat-address form), 44h/47h, 48h extended parameters.
 * Semantics follow the classic BIOS interface (shared/reference/bios.md); status codes in AH,
 * CF set on failure, AL / the DAP count say how many sectors moved.
 *
 * A buffer that is sector-aligned in guest memory is granted page by page (no copy). A buffer at
 * an odd address cannot be described by blkif segments (they count whole sectors), so it goes
 * through the shim's own bounce frames. With `writeThrough` (the default) a write is followed by
 * BLKIF_OP_FLUSH_DISKCACHE before the BIOS call returns, so a guest that saw CF=0 has its data
 * on disk, as it would on a BIOS without a write cache.
 */
import { BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_RSP } from '@xenlab/ring-buffers';
import { Gfn } from '@xenlab/xen-public';
import { SECTORS_PER_PAGE, type Blkfront, type BlkfrontSegment } from '../blkfront/blkfront.ts';
import {
  ADDRESS_MASK,
  GuestMemoryError,
  linear,
  readGuest,
  readU16,
  readU32,
  readU8,
  writeGuest,
  writeU16,
  writeU32,
  type GuestMemory,
  type RegisterFile,
} from './machine.ts';

/** INT 13h status codes (AH). */
export const DISK_STATUS = {
  OK: 0x00,
  BAD_COMMAND: 0x01,
  WRITE_PROTECTED: 0x03,
  SECTOR_NOT_FOUND: 0x04,
  BAD_DMA_ADDRESS: 0x09,
  CONTROLLER_FAILURE: 0x20,
  TIMEOUT: 0x80,
  WRITE_FAULT: 0xcc,
} as const;

export const EDD_VERSION = 0x21;
/** CX bit 0 of AH=41h: the fixed-disk access subset (42h, 43h, 44h, 47h, 48h). */
export const EDD_SUBSET_FIXED_DISK = 0x0001;
/** AH=42h/43h: the most sectors one call may move (as common BIOSes enforce). */
export const EDD_MAX_SECTORS = 127;

export interface Geometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly spt: number;
}

/** LBA-assisted translation: 63 sectors per track, heads 16..255 by size, at most 1024 cylinders. */
export function biosGeometry(sectors: number): Geometry {
  if (sectors < 63) return { cylinders: 1, heads: 1, spt: Math.max(1, sectors) };
  const spt = 63;
  let heads = 16;
  for (const h of [16, 32, 64, 128, 255]) {
    heads = h;
    if (sectors <= 1024 * h * spt) break;
  }
  if (sectors < heads * spt) heads = Math.max(1, Math.floor(sectors / spt));
  const cylinders = Math.max(1, Math.min(1024, Math.floor(sectors / (heads * spt))));
  return { cylinders, heads, spt };
}

export interface Int13Drive {
  /** BIOS drive number: 80h for the first hard disk. */
  readonly drive: number;
  readonly front: Blkfront;
}

/** A frame the shim owns (not the guest program's), used to bounce unaligned buffers. */
export interface BounceFrame {
  readonly gfn: Gfn;
  readonly bytes: Uint8Array;
}

export interface Int13Options {
  drives: readonly Int13Drive[];
  bounce: readonly BounceFrame[];
  /** Flush after each write before returning (default true). */
  writeThrough?: boolean;
}

export interface Int13Counters {
  calls: number;
  sectorsRead: number;
  sectorsWritten: number;
  bounced: number;
  failures: number;
}

export class Int13Service {
  lastStatus = 0;
  readonly counters: Int13Counters = { calls: 0, sectorsRead: 0, sectorsWritten: 0, bounced: 0, failures: 0 };

  constructor(private readonly mem: GuestMemory, private readonly o: Int13Options) {
    if (o.bounce.length === 0) throw new RangeError('int13: at least one bounce frame is needed');
  }

  /** Serves one trapped INT 13h with the registers at the trap. */
  async handle(regs: RegisterFile): Promise<void> {
    this.counters.calls++;
    const ah = regs.getReg('ah');
    const dl = regs.getReg('dl');
    const d = this.o.drives.find((x) => x.drive === dl);
    const done = (status: number, keepLast = false) => {
      if (!keepLast) this.lastStatus = status;
      if (status !== 0) this.counters.failures++;
      regs.setReg('ah', status);
      regs.setCarry(status !== 0);
    };
    try {
      if (ah === 0x01) return done(this.lastStatus, true);
      if (ah === 0x15) {
        if (!d) {
          regs.setReg('ah', 0);
          regs.setCarry(false);
          return;
        }
        const n = Math.min(d.front.info.sectors, 0xffffffff);
        regs.setReg('cx', Math.floor(n / 0x10000));
        regs.setReg('dx', n & 0xffff);
        regs.setReg('ah', 0x03);
        regs.setCarry(false);
        this.lastStatus = 0;
        return;
      }
      if (!d) return done(DISK_STATUS.BAD_COMMAND);
      const geo = biosGeometry(d.front.info.sectors);
      switch (ah) {
        case 0x00: case 0x0c: case 0x0d: case 0x10: case 0x11: case 0x47:
          return done(0);
        case 0x02: case 0x03: case 0x04: {
          const count = regs.getReg('al');
          const cl = regs.getReg('cl');
          const c = regs.getReg('ch') | ((cl & 0xc0) << 2);
          const h = regs.getReg('dh');
          const s = cl & 0x3f;
          if (count === 0 || s === 0 || s > geo.spt || h >= geo.heads || c >= geo.cylinders) {
            regs.setReg('al', 0);
            return done(count === 0 ? DISK_STATUS.BAD_COMMAND : DISK_STATUS.SECTOR_NOT_FOUND);
          }
          const lba = (c * geo.heads + h) * geo.spt + (s - 1);
          if (ah === 0x04) {
            const ok = lba + count <= d.front.info.sectors;
            regs.setReg('al', ok ? count : 0);
            return done(ok ? 0 : DISK_STATUS.SECTOR_NOT_FOUND);
          }
          const r = await this.transfer(d.front, ah === 0x02 ? 'read' : 'write', lba, count, linear(regs.getReg('es'), regs.getReg('bx')));
          regs.setReg('al', r.sectors);
          return done(r.status);
        }
        case 0x08: {
          const maxCyl = geo.cylinders - 1;
          regs.setReg('ax', 0);
          regs.setReg('ch', maxCyl & 0xff);
          regs.setReg('cl', (geo.spt & 0x3f) | ((maxCyl >> 2) & 0xc0));
          regs.setReg('dh', geo.heads - 1);
          regs.setReg('dl', this.o.drives.filter((x) => x.drive >= 0x80).length);
          regs.setReg('bl', 0);
          return done(0);
        }
        case 0x41:
          if (regs.getReg('bx') !== 0x55aa) return done(DISK_STATUS.BAD_COMMAND);
          regs.setReg('bx', 0xaa55);
          regs.setReg('cx', EDD_SUBSET_FIXED_DISK);
          regs.setReg('ah', EDD_VERSION);
          regs.setCarry(false);
          this.lastStatus = 0;
          return;
        case 0x42: case 0x43: case 0x44: {
          const dap = linear(regs.getReg('ds'), regs.getReg('si'));
          const size = readU8(this.mem, dap);
          const count = readU16(this.mem, dap + 2);
          if (size < 0x10 || count > EDD_MAX_SECTORS) {
            writeU16(this.mem, dap + 2, 0);
            return done(DISK_STATUS.BAD_COMMAND);
          }
          const off = readU16(this.mem, dap + 4);
          const seg = readU16(this.mem, dap + 6);
          let addr = linear(seg, off);
          if (off === 0xffff && seg === 0xffff) {
            if (size < 0x18) return done(DISK_STATUS.BAD_COMMAND);
            const flat = readU32(this.mem, dap + 16) + readU32(this.mem, dap + 20) * 2 ** 32;
            if (flat > ADDRESS_MASK) return done(DISK_STATUS.BAD_DMA_ADDRESS);
            addr = flat;
          }
          const lba = readU32(this.mem, dap + 8) + readU32(this.mem, dap + 12) * 2 ** 32;
          if (count === 0) return done(0);
          if (ah === 0x44) {
            const ok = lba + count <= d.front.info.sectors;
            if (!ok) writeU16(this.mem, dap + 2, 0);
            return done(ok ? 0 : DISK_STATUS.SECTOR_NOT_FOUND);
          }
          const r = await this.transfer(d.front, ah === 0x42 ? 'read' : 'write', lba, count, addr);
          writeU16(this.mem, dap + 2, r.sectors);
          return done(r.status);
        }
        case 0x48: {
          const buf = linear(regs.getReg('ds'), regs.getReg('si'));
          const size = readU16(this.mem, buf);
          if (size < 0x1a) return done(DISK_STATUS.BAD_COMMAND);
          const sectors = d.front.info.sectors;
          const chsValid = geo.cylinders * geo.heads * geo.spt <= sectors && sectors <= 1024 * 255 * 63;
          writeU16(this.mem, buf, size >= 0x1e ? 0x1e : 0x1a);
          writeU16(this.mem, buf + 2, chsValid ? 0x0002 : 0);
          writeU32(this.mem, buf + 4, geo.cylinders);
          writeU32(this.mem, buf + 8, geo.heads);
          writeU32(this.mem, buf + 12, geo.spt);
          writeU32(this.mem, buf + 16, sectors % 2 ** 32);
          writeU32(this.mem, buf + 20, Math.floor(sectors / 2 ** 32));
          writeU16(this.mem, buf + 24, 512);
          if (size >= 0x1e) writeU32(this.mem, buf + 26, 0xffffffff);
          return done(0);
        }
        default:
          return done(DISK_STATUS.BAD_COMMAND);
      }
    } catch (e) {
      if (e instanceof GuestMemoryError) return done(DISK_STATUS.BAD_DMA_ADDRESS);
      throw e;
    }
  }

  /**
   * Moves `count` sectors between disk sector `lba` and guest linear address `addr`. All or
   * nothing on the range check; otherwise `sectors` counts the leading requests that succeeded.
   */
  async transfer(front: Blkfront, op: 'read' | 'write', lba: number, count: number, addr: number): Promise<{ status: number; sectors: number }> {
    const info = front.info;
    if (!Number.isSafeInteger(lba) || lba + count > info.sectors) return { status: DISK_STATUS.SECTOR_NOT_FOUND, sectors: 0 };
    if (op === 'write' && info.readOnly) return { status: DISK_STATUS.WRITE_PROTECTED, sectors: 0 };
    const r = addr % 512 === 0 ? await this.direct(front, op, lba, count, addr) : await this.bounced(front, op, lba, count, addr);
    if (op === 'write' && r.sectors > 0 && (this.o.writeThrough ?? true) && info.flush) {
      const st = await this.run(front, () => front.queueFlush());
      if (st !== BLKIF_RSP.OKAY) return { status: DISK_STATUS.WRITE_FAULT, sectors: r.sectors };
    }
    if (op === 'read') this.counters.sectorsRead += r.sectors;
    else this.counters.sectorsWritten += r.sectors;
    return r;
  }

  /** Grants the guest's own pages: one segment per page run, 11 segments per request, all pushed at once. */
  private async direct(front: Blkfront, op: 'read' | 'write', lba: number, count: number, addr: number): Promise<{ status: number; sectors: number }> {
    const requests: Array<{ sector: number; nr: number; segments: BlkfrontSegment[] }> = [];
    let cur: { sector: number; nr: number; segments: Array<{ gfn: Gfn; firstSect: number; lastSect: number }> } | null = null;
    for (let i = 0; i < count; i++) {
      const a = (addr + i * 512) & ADDRESS_MASK;
      const gfn = a >>> 12;
      if (!this.mem.pages[gfn]) return { status: DISK_STATUS.BAD_DMA_ADDRESS, sectors: 0 };
      const sect = (a & 0xfff) >>> 9;
      const last = cur?.segments[cur.segments.length - 1];
      if (cur && last && last.gfn === gfn && last.lastSect + 1 === sect) {
        last.lastSect = sect;
      } else {
        if (!cur || cur.segments.length === BLKIF_MAX_SEGMENTS_PER_REQUEST) {
          cur = { sector: lba + i, nr: 0, segments: [] };
          requests.push(cur);
        }
        cur.segments.push({ gfn: Gfn(gfn), firstSect: sect, lastSect: sect });
      }
      cur.nr++;
    }
    const promises = requests.map((r) => front.queueRw(op, r.sector, r.segments));
    front.push();
    const statuses = await Promise.all(promises);
    return this.outcome(op, statuses, requests.map((r) => r.nr));
  }

  /** Through the shim's bounce frames, in rounds of at most `bounce.length` pages. */
  private async bounced(front: Blkfront, op: 'read' | 'write', lba: number, count: number, addr: number): Promise<{ status: number; sectors: number }> {
    this.counters.bounced++;
    const frames = this.o.bounce;
    const perRound = frames.length * SECTORS_PER_PAGE;
    let moved = 0;
    while (moved < count) {
      const n = Math.min(perRound, count - moved);
      const guestAddr = (addr + moved * 512) & ADDRESS_MASK;
      const requests: Array<{ sector: number; nr: number; segments: BlkfrontSegment[] }> = [];
      for (let p = 0; p * SECTORS_PER_PAGE < n; p++) {
        const nr = Math.min(SECTORS_PER_PAGE, n - p * SECTORS_PER_PAGE);
        const seg = { gfn: frames[p]!.gfn, firstSect: 0, lastSect: nr - 1 };
        const last = requests[requests.length - 1];
        if (!last || last.segments.length === BLKIF_MAX_SEGMENTS_PER_REQUEST) requests.push({ sector: lba + moved + p * SECTORS_PER_PAGE, nr, segments: [seg] });
        else {
          last.segments.push(seg);
          last.nr += nr;
        }
      }
      if (op === 'write') {
        const data = readGuest(this.mem, guestAddr, n * 512);
        for (let p = 0; p * SECTORS_PER_PAGE < n; p++) frames[p]!.bytes.set(data.subarray(p * 4096, Math.min(n * 512, (p + 1) * 4096)));
      }
      const promises = requests.map((r) => front.queueRw(op, r.sector, r.segments));
      front.push();
      const r = this.outcome(op, await Promise.all(promises), requests.map((x) => x.nr));
      if (op === 'read' && r.sectors > 0) {
        const data = new Uint8Array(r.sectors * 512);
        for (let p = 0; p * 4096 < data.length; p++) data.set(frames[p]!.bytes.subarray(0, Math.min(4096, data.length - p * 4096)), p * 4096);
        writeGuest(this.mem, guestAddr, data);
      }
      moved += r.sectors;
      if (r.status !== 0) return { status: r.status, sectors: moved };
    }
    return { status: 0, sectors: moved };
  }

  private outcome(op: 'read' | 'write', statuses: readonly number[], sizes: readonly number[]): { status: number; sectors: number } {
    let sectors = 0;
    for (let i = 0; i < statuses.length; i++) {
      if (statuses[i] !== BLKIF_RSP.OKAY) {
        return { status: op === 'read' ? DISK_STATUS.SECTOR_NOT_FOUND : DISK_STATUS.WRITE_FAULT, sectors };
      }
      sectors += sizes[i]!;
    }
    return { status: 0, sectors };
  }

  private async run(front: Blkfront, queue: () => Promise<number>): Promise<number> {
    const p = queue();
    front.push();
    return p;
  }
}
