/**
 * The MC146818 CMOS RAM and real-time clock at 70h (index; bit 7 = NMI disable) and 71h (data),
 * as on the IBM PC AT (Motorola MC146818A datasheet; IBM AT Technical Reference "CMOS RAM
 * address map"; QEMU hw/rtc/mc146818rtc.c). Offsets: 0 = port 70h, 1 = port 71h.
 *
 * The time registers are not stored: every read computes them from the host clock plus the
 * offset the guest set by writing them, in BCD or binary and 12- or 24-hour form as register B
 * says (B.DM bit 2, B.24/12 bit 1). Register A reads UIP=0 (the update is instantaneous),
 * register C reads and clears the interrupt flags, register D reports a good battery.
 *
 * Configuration bytes qemu-dm fills for the BIOS (README.md, "CMOS map"): base and extended
 * memory sizes, hard disk type, equipment byte, boot order (QEMU's 3Dh/38h nibbles), the AT
 * checksum over 10h-2Dh, and xenlab's BIOS option byte at 70h.
 */
import type { AccessSize, IoDevice } from './types.ts';

export const CMOS = {
  SECONDS: 0x00, SECONDS_ALARM: 0x01, MINUTES: 0x02, MINUTES_ALARM: 0x03, HOURS: 0x04, HOURS_ALARM: 0x05,
  DAY_OF_WEEK: 0x06, DAY_OF_MONTH: 0x07, MONTH: 0x08, YEAR: 0x09,
  REG_A: 0x0a, REG_B: 0x0b, REG_C: 0x0c, REG_D: 0x0d,
  DIAGNOSTIC: 0x0e, SHUTDOWN: 0x0f, FLOPPY_TYPES: 0x10, DISK_TYPES: 0x12, EQUIPMENT: 0x14,
  BASE_MEM_LO: 0x15, BASE_MEM_HI: 0x16, EXT_MEM_LO: 0x17, EXT_MEM_HI: 0x18, DISK0_EXT_TYPE: 0x19,
  CHECKSUM_HI: 0x2e, CHECKSUM_LO: 0x2f, EXT_MEM2_LO: 0x30, EXT_MEM2_HI: 0x31, CENTURY: 0x32,
  MEM_ABOVE_16M_LO: 0x34, MEM_ABOVE_16M_HI: 0x35, BOOT_ORDER_3: 0x38, BOOT_ORDER_12: 0x3d,
  /** xenlab: virtual BIOS options (bit 0 = INT 13h uses bus-master DMA instead of PIO, bit 1 = PIO uses READ/WRITE MULTIPLE). */
  XENLAB_BIOS_FLAGS: 0x70,
} as const;
export const XENLAB_BIOS_FLAG_DMA = 0x01;
export const XENLAB_BIOS_FLAG_PIO_MULTIPLE = 0x02;
export const CMOS_REG_B = { SET: 0x80, PIE: 0x40, AIE: 0x20, UIE: 0x10, DM_BINARY: 0x04, HOUR_24: 0x02, DSE: 0x01 } as const;
export const CMOS_INDEX_PORT = 0x70;

/** Boot device codes, as QEMU writes them into CMOS 3Dh/38h. */
export const BOOT_DEVICE = { floppy: 1, disk: 2, cdrom: 3, network: 4 } as const;
export type BootDevice = keyof typeof BOOT_DEVICE;

export interface CmosOptions {
  /** Guest RAM in bytes (conventional + extended). */
  memoryBytes: number;
  hardDisks?: number;
  bootOrder?: BootDevice[];
  /** xenlab BIOS option byte (CMOS 70h). */
  biosFlags?: number;
  /** Host clock in milliseconds since the epoch (the RTC keeps UTC, like `rtc_timeoffset=0`). */
  clock?: () => number;
}

interface CmosState {
  index: number;
  nmiDisabled: boolean;
  ram: number[];
  /** Guest time minus host time, in milliseconds. */
  offsetMs: number;
}

const TIME_REGS = new Set<number>([CMOS.SECONDS, CMOS.MINUTES, CMOS.HOURS, CMOS.DAY_OF_WEEK, CMOS.DAY_OF_MONTH, CMOS.MONTH, CMOS.YEAR, CMOS.CENTURY]);

export class CmosRtc implements IoDevice {
  readonly name = 'cmos';
  private s: CmosState;
  private readonly clock: () => number;

  constructor(opts: CmosOptions) {
    this.clock = opts.clock ?? Date.now;
    const ram = new Array<number>(128).fill(0);
    ram[CMOS.REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    ram[CMOS.REG_B] = CMOS_REG_B.HOUR_24; // BCD, 24-hour
    ram[CMOS.REG_D] = 0x80; // valid RAM and time (battery good)
    const kb = Math.floor(opts.memoryBytes / 1024);
    const base = Math.min(640, kb);
    const ext = Math.max(0, Math.min(0xffff, kb - 1024));
    const above16 = Math.max(0, Math.min(0xffff, Math.floor((opts.memoryBytes - 16 * 1024 * 1024) / 65536)));
    ram[CMOS.BASE_MEM_LO] = base & 0xff;
    ram[CMOS.BASE_MEM_HI] = base >> 8;
    ram[CMOS.EXT_MEM_LO] = ram[CMOS.EXT_MEM2_LO] = ext & 0xff;
    ram[CMOS.EXT_MEM_HI] = ram[CMOS.EXT_MEM2_HI] = ext >> 8;
    ram[CMOS.MEM_ABOVE_16M_LO] = above16 & 0xff;
    ram[CMOS.MEM_ABOVE_16M_HI] = above16 >> 8;
    const disks = opts.hardDisks ?? 1;
    ram[CMOS.DISK_TYPES] = disks > 0 ? 0xf0 : 0; // type in 19h
    ram[CMOS.DISK0_EXT_TYPE] = disks > 0 ? 47 : 0; // 47 = user-defined
    ram[CMOS.EQUIPMENT] = 0x00; // no floppy, no FPU, EGA/VGA display
    const order = (opts.bootOrder ?? ['disk']).map((d) => BOOT_DEVICE[d]);
    ram[CMOS.BOOT_ORDER_12] = (order[0] ?? 0) | ((order[1] ?? 0) << 4);
    ram[CMOS.BOOT_ORDER_3] = (order[2] ?? 0) << 4;
    ram[CMOS.XENLAB_BIOS_FLAGS] = opts.biosFlags ?? 0;
    this.s = { index: 0, nmiDisabled: true, ram, offsetMs: 0 };
    this.updateChecksum();
  }

  /** Direct access for qemu-dm's configuration and tests (no side effects). */
  peek(index: number): number {
    return TIME_REGS.has(index) ? this.timeRegister(index) : this.s.ram[index & 0x7f];
  }

  poke(index: number, value: number): void {
    this.s.ram[index & 0x7f] = value & 0xff;
    if (index >= 0x10 && index <= 0x2d) this.updateChecksum();
  }

  get nmiDisabled(): boolean {
    return this.s.nmiDisabled;
  }

  read(offset: number, _size: AccessSize): number {
    if (offset === 0) return 0xff; // the index port is write-only
    const i = this.s.index;
    if (TIME_REGS.has(i)) return this.timeRegister(i);
    switch (i) {
      case CMOS.REG_A: return this.s.ram[i] & 0x7f; // UIP never set: updates are instantaneous
      case CMOS.REG_C: {
        const v = this.s.ram[i];
        this.s.ram[i] = 0; // reading C clears the interrupt flags
        return v;
      }
      case CMOS.REG_D: return 0x80;
      default: return this.s.ram[i];
    }
  }

  write(offset: number, _size: AccessSize, value: number): void {
    value &= 0xff;
    if (offset === 0) {
      this.s.index = value & 0x7f;
      this.s.nmiDisabled = (value & 0x80) !== 0;
      return;
    }
    const i = this.s.index;
    if (TIME_REGS.has(i)) return this.setTimeRegister(i, value);
    switch (i) {
      case CMOS.REG_C:
      case CMOS.REG_D:
        return; // read-only
      case CMOS.REG_A:
        this.s.ram[i] = value & 0x7f;
        return;
      default:
        this.s.ram[i] = value;
    }
  }

  snapshot(): CmosState {
    return { ...this.s, ram: [...this.s.ram] };
  }

  restore(state: unknown): void {
    const st = state as CmosState;
    this.s = { ...st, ram: [...st.ram] };
  }

  private updateChecksum(): void {
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += this.s.ram[i];
    this.s.ram[CMOS.CHECKSUM_HI] = (sum >> 8) & 0xff;
    this.s.ram[CMOS.CHECKSUM_LO] = sum & 0xff;
  }

  private guestDate(): Date {
    return new Date(this.clock() + this.s.offsetMs);
  }

  private get binary(): boolean {
    return (this.s.ram[CMOS.REG_B] & CMOS_REG_B.DM_BINARY) !== 0;
  }

  private encode(v: number): number {
    return this.binary ? v : ((Math.floor(v / 10) << 4) | (v % 10)) & 0xff;
  }

  private decode(v: number): number {
    return this.binary ? v : (v >> 4) * 10 + (v & 0x0f);
  }

  private timeRegister(i: number): number {
    const d = this.guestDate();
    switch (i) {
      case CMOS.SECONDS: return this.encode(d.getUTCSeconds());
      case CMOS.MINUTES: return this.encode(d.getUTCMinutes());
      case CMOS.HOURS: {
        const h = d.getUTCHours();
        if (this.s.ram[CMOS.REG_B] & CMOS_REG_B.HOUR_24) return this.encode(h);
        // 12-hour mode: 1..12 with bit 7 = PM.
        return this.encode(h % 12 === 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0);
      }
      case CMOS.DAY_OF_WEEK: return this.encode(d.getUTCDay() + 1); // 1 = Sunday
      case CMOS.DAY_OF_MONTH: return this.encode(d.getUTCDate());
      case CMOS.MONTH: return this.encode(d.getUTCMonth() + 1);
      case CMOS.YEAR: return this.encode(d.getUTCFullYear() % 100);
      default: return this.encode(Math.floor(d.getUTCFullYear() / 100)); // century
    }
  }

  /** The guest sets the clock: keep the other fields, replace one, remember the offset. */
  private setTimeRegister(i: number, value: number): void {
    const d = this.guestDate();
    const f = {
      year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(),
      h: d.getUTCHours(), m: d.getUTCMinutes(), sec: d.getUTCSeconds(),
    };
    let v: number;
    switch (i) {
      case CMOS.SECONDS: v = this.decode(value); if (v > 59) return; f.sec = v; break;
      case CMOS.MINUTES: v = this.decode(value); if (v > 59) return; f.m = v; break;
      case CMOS.HOURS: {
        if (this.s.ram[CMOS.REG_B] & CMOS_REG_B.HOUR_24) v = this.decode(value);
        else v = (this.decode(value & 0x7f) % 12) + (value & 0x80 ? 12 : 0);
        if (v > 23) return;
        f.h = v;
        break;
      }
      case CMOS.DAY_OF_WEEK: return; // derived from the date
      case CMOS.DAY_OF_MONTH: v = this.decode(value); if (v < 1 || v > 31) return; f.day = v; break;
      case CMOS.MONTH: v = this.decode(value); if (v < 1 || v > 12) return; f.month = v - 1; break;
      case CMOS.YEAR: v = this.decode(value); if (v > 99) return; f.year = Math.floor(f.year / 100) * 100 + v; break;
      default: v = this.decode(value); if (v > 99) return; f.year = v * 100 + (f.year % 100); break;
    }
    const t = Date.UTC(f.year, f.month, f.day, f.h, f.m, f.sec, d.getUTCMilliseconds());
    this.s.offsetMs = t - this.clock();
  }
}
