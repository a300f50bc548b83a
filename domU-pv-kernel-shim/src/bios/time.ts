/**
 * INT 1Ah, time of day: the BIOS tick count at 18.2065 Hz (1193182 / 65536 per second, the PIT's
 * rate), counted from midnight and rolling over at 1800B0h ticks with the midnight flag, plus
 * the RTC's time and date in BCD. The clock is injected (milliseconds), so tests can step it.
 * The count is mirrored to the BIOS data area (40:6C, 40:70) on every read.
 */
import { writeU32, type GuestMemory, type RegisterFile } from './machine.ts';

export const TICKS_PER_DAY = 0x1800b0;
export const TICK_HZ = 1193182 / 65536;

export interface Clock {
  /** Milliseconds since the Unix epoch (Date.now for the real shim). */
  now(): number;
}

const bcd = (n: number) => ((Math.floor(n / 10) % 10) << 4) | n % 10;

export class TimeService {
  /** Ticks at `baseMs`. */
  private baseTicks: number;
  private baseMs: number;
  private lastDay: number;
  private midnightPending = false;

  constructor(private readonly clock: Clock, private readonly mem?: GuestMemory) {
    this.baseMs = clock.now();
    const d = new Date(this.baseMs);
    const msToday = ((d.getHours() * 60 + d.getMinutes()) * 60 + d.getSeconds()) * 1000 + d.getMilliseconds();
    this.baseTicks = Math.floor((msToday / 1000) * TICK_HZ);
    this.lastDay = 0;
  }

  /** Ticks since midnight now, noting a rollover for the next AH=00h. */
  ticks(): number {
    const total = this.baseTicks + Math.floor(((this.clock.now() - this.baseMs) / 1000) * TICK_HZ);
    const day = Math.floor(total / TICKS_PER_DAY);
    if (day > this.lastDay) {
      this.midnightPending = true;
      this.lastDay = day;
    }
    return total % TICKS_PER_DAY;
  }

  handle(regs: RegisterFile): void {
    const ah = regs.getReg('ah');
    switch (ah) {
      case 0x00: {
        const t = this.ticks();
        regs.setReg('cx', Math.floor(t / 0x10000));
        regs.setReg('dx', t & 0xffff);
        regs.setReg('al', this.midnightPending ? 1 : 0);
        this.midnightPending = false;
        this.mirror(t);
        break;
      }
      case 0x01: {
        const t = (regs.getReg('cx') * 0x10000 + regs.getReg('dx')) % TICKS_PER_DAY;
        this.baseMs = this.clock.now();
        this.baseTicks = t;
        this.lastDay = 0;
        this.midnightPending = false;
        this.mirror(t);
        break;
      }
      case 0x02: {
        const d = new Date(this.clock.now());
        regs.setReg('ch', bcd(d.getHours()));
        regs.setReg('cl', bcd(d.getMinutes()));
        regs.setReg('dh', bcd(d.getSeconds()));
        regs.setReg('dl', 0);
        regs.setCarry(false);
        break;
      }
      case 0x04: {
        const d = new Date(this.clock.now());
        regs.setReg('ch', bcd(Math.floor(d.getFullYear() / 100)));
        regs.setReg('cl', bcd(d.getFullYear() % 100));
        regs.setReg('dh', bcd(d.getMonth() + 1));
        regs.setReg('dl', bcd(d.getDate()));
        regs.setCarry(false);
        break;
      }
      case 0x03:
      case 0x05:
        regs.setCarry(false);
        break;
      default:
        regs.setCarry(true);
    }
  }

  private mirror(t: number): void {
    if (!this.mem?.pages[0]) return;
    writeU32(this.mem, 0x46c, t);
    this.mem.pages[0][0x470] = 0;
  }
}
