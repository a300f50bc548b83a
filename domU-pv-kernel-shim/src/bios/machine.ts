/**
 * What a BIOS service sees of the guest: its registers at the trapped `int` and its memory.
 *
 * `RegisterFile` is the subset of `@xenlab/x86-cpu`'s `Cpu` a PV kernel needs to serve a trapped
 * software interrupt (getReg/setReg/setCarry/getFlags/setFlags, same names and register names),
 * declared here because guest-side code may not import the CPU: the hypervisor hands the shim the
 * trap frame, and a `Cpu` satisfies this interface structurally. `GuestMemory` is the same page
 * table shape the CPU uses (`pages[gfn]` = a 4 KiB view, null = not RAM): in the shim, views of the
 * guest's frames through its P2M.
 */

export type RegName =
  | 'ax' | 'cx' | 'dx' | 'bx' | 'sp' | 'bp' | 'si' | 'di'
  | 'al' | 'cl' | 'dl' | 'bl' | 'ah' | 'ch' | 'dh' | 'bh'
  | 'es' | 'cs' | 'ss' | 'ds' | 'ip';

export interface RegisterFile {
  getReg(name: RegName): number;
  setReg(name: RegName, value: number): void;
  setCarry(on: boolean): void;
  getFlags(): number;
  setFlags(value: number): void;
}

export const FLAG_CF = 0x0001;
export const FLAG_ZF = 0x0040;

/**
 * A trap frame as plain data: the register fields of `@xenlab/x86-cpu`'s `CpuState` (same names),
 * which is what a hypervisor can send the shim in a message and take back to resume the vCPU.
 */
export interface TrapFrame {
  ax: number; bx: number; cx: number; dx: number;
  sp: number; bp: number; si: number; di: number;
  cs: number; ds: number; es: number; ss: number;
  ip: number;
  flags: number;
}

const FRAME_REGS = ['ax', 'bx', 'cx', 'dx', 'sp', 'bp', 'si', 'di', 'cs', 'ds', 'es', 'ss', 'ip'] as const;

/** A plain register file (for tests and for a shim that keeps the trap frame itself). */
export class Registers implements RegisterFile {
  /** A register file over a trap frame received from the hypervisor. */
  static fromFrame(f: TrapFrame): Registers {
    const r = new Registers();
    for (const k of FRAME_REGS) r.setReg(k, f[k]);
    r.flags = f.flags & 0xffff;
    return r;
  }

  /** The frame to send back when the service is done (the vCPU resumes with these). */
  toFrame(): TrapFrame {
    const f = { flags: this.flags } as TrapFrame;
    for (const k of FRAME_REGS) f[k] = this.getReg(k);
    return f;
  }

  private readonly r: Record<RegName, number> = {
    ax: 0, cx: 0, dx: 0, bx: 0, sp: 0, bp: 0, si: 0, di: 0, al: 0, cl: 0, dl: 0, bl: 0, ah: 0, ch: 0, dh: 0, bh: 0, es: 0, cs: 0, ss: 0, ds: 0, ip: 0,
  };
  flags = 0x0002;

  constructor(init: Partial<Record<'ax' | 'bx' | 'cx' | 'dx' | 'si' | 'di' | 'bp' | 'sp' | 'es' | 'ds' | 'cs' | 'ss' | 'ip', number>> = {}) {
    for (const [k, v] of Object.entries(init)) this.setReg(k as RegName, v!);
  }

  getReg(name: RegName): number {
    const byte = BYTE_REGS[name];
    if (byte) return byte[1] ? (this.r[byte[0]] >>> 8) & 0xff : this.r[byte[0]] & 0xff;
    return this.r[name];
  }

  setReg(name: RegName, value: number): void {
    const byte = BYTE_REGS[name];
    if (byte) {
      const w = this.r[byte[0]];
      this.r[byte[0]] = byte[1] ? (w & 0x00ff) | ((value & 0xff) << 8) : (w & 0xff00) | (value & 0xff);
    } else {
      this.r[name] = value & 0xffff;
    }
  }

  setCarry(on: boolean): void {
    this.flags = on ? this.flags | FLAG_CF : this.flags & ~FLAG_CF;
  }

  getFlags(): number {
    return this.flags;
  }

  setFlags(value: number): void {
    this.flags = value & 0xffff;
  }

  get carry(): boolean {
    return (this.flags & FLAG_CF) !== 0;
  }
}

const BYTE_REGS: Partial<Record<RegName, [RegName, boolean]>> = {
  al: ['ax', false], ah: ['ax', true], bl: ['bx', false], bh: ['bx', true],
  cl: ['cx', false], ch: ['cx', true], dl: ['dx', false], dh: ['dx', true],
};

export function setZero(regs: RegisterFile, on: boolean): void {
  const f = regs.getFlags();
  regs.setFlags(on ? f | FLAG_ZF : f & ~FLAG_ZF);
}

/** The guest's memory as a page table: `pages[gfn]` is a 4 KiB view, or null where there is no RAM. */
export interface GuestMemory {
  readonly pages: ReadonlyArray<Uint8Array | null>;
}

export const PAGE_SIZE = 4096;
/** Real-mode addresses wrap at 1 MiB (no A20). */
export const ADDRESS_MASK = 0xfffff;

export const linear = (seg: number, off: number): number => ((seg << 4) + off) & ADDRESS_MASK;

export class GuestMemoryError extends Error {}

/** Copies `len` bytes at linear address `addr` out of guest memory. Throws GuestMemoryError on a hole. */
export function readGuest(mem: GuestMemory, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let done = 0; done < len; ) {
    const a = (addr + done) & ADDRESS_MASK;
    const page = mem.pages[a >>> 12];
    if (!page) throw new GuestMemoryError(`no RAM at ${a.toString(16)}h`);
    const off = a & 0xfff;
    const n = Math.min(len - done, PAGE_SIZE - off);
    out.set(page.subarray(off, off + n), done);
    done += n;
  }
  return out;
}

export function writeGuest(mem: GuestMemory, addr: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    const a = (addr + done) & ADDRESS_MASK;
    const page = mem.pages[a >>> 12];
    if (!page) throw new GuestMemoryError(`no RAM at ${a.toString(16)}h`);
    const off = a & 0xfff;
    const n = Math.min(bytes.length - done, PAGE_SIZE - off);
    page.set(bytes.subarray(done, done + n), off);
    done += n;
  }
}

export const readU8 = (mem: GuestMemory, addr: number): number => readGuest(mem, addr, 1)[0]!;
export const readU16 = (mem: GuestMemory, addr: number): number => {
  const b = readGuest(mem, addr, 2);
  return b[0]! | (b[1]! << 8);
};
export const readU32 = (mem: GuestMemory, addr: number): number => (readU16(mem, addr) + readU16(mem, addr + 2) * 0x10000);
export function writeU16(mem: GuestMemory, addr: number, v: number): void {
  writeGuest(mem, addr, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
}
export function writeU32(mem: GuestMemory, addr: number, v: number): void {
  writeU16(mem, addr, v & 0xffff);
  writeU16(mem, addr + 2, Math.floor(v / 0x10000) & 0xffff);
}
