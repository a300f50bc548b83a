/**
 * The 8259A programmable interrupt controller pair (master at 20h/21h, slave at A0h/A1h on the
 * master's IRQ 2), emulated in the hypervisor as Xen does (xen/arch/x86/hvm/vpic.c). Edge
 * triggered, fully nested: the highest-priority (lowest-numbered) unmasked request not blocked by
 * an in-service one is delivered. Enough of the command set for a PC BIOS and DOS-style guests:
 * ICW1-4 (vector base, cascade, auto-EOI), OCW1 (mask), OCW2 (EOI, specific EOI), OCW3 (read
 * IRR/ISR). State is plain data for save/restore.
 */
export interface PicChipState {
  irr: number;
  isr: number;
  imr: number;
  vectorBase: number;
  /** 0: operational; 2..4: expecting ICW2..ICW4. */
  initStep: number;
  needIcw4: boolean;
  autoEoi: boolean;
  readIsr: boolean;
  /** Line levels, for edge detection. */
  levels: number;
}

/** A chip's state at power-on. */
export const picChipInitial = (vectorBase: number): PicChipState => ({ irr: 0, isr: 0, imr: 0xff, vectorBase, initStep: 0, needIcw4: false, autoEoi: false, readIsr: false, levels: 0 });

class PicChip {
  /** Plain data, or a view of shared memory (platform-state.ts) when pCPU threads share the chip. */
  constructor(readonly s: PicChipState) {}

  setLevel(line: number, high: boolean): void {
    const bit = 1 << line;
    if (high && !(this.s.levels & bit)) this.s.irr |= bit; // rising edge
    if (high) this.s.levels |= bit;
    else this.s.levels &= ~bit;
  }

  /** The line that would be delivered now, or -1. */
  best(): number {
    const req = this.s.irr & ~this.s.imr;
    for (let l = 0; l < 8; l++) {
      if (this.s.isr & (1 << l)) return -1; // a higher-priority line is in service
      if (req & (1 << l)) return l;
    }
    return -1;
  }

  ack(line: number): number {
    const bit = 1 << line;
    this.s.irr &= ~bit;
    if (!this.s.autoEoi) this.s.isr |= bit;
    return this.s.vectorBase + line;
  }

  write(port: 0 | 1, v: number): void {
    const s = this.s;
    if (port === 0) {
      if (v & 0x10) {
        // ICW1
        s.initStep = 2;
        s.needIcw4 = (v & 1) !== 0;
        s.imr = 0;
        s.isr = 0;
        s.irr = 0;
        s.autoEoi = false;
        s.readIsr = false;
      } else if (v & 0x08) {
        // OCW3
        if (v & 0x02) s.readIsr = (v & 1) !== 0;
      } else {
        // OCW2: EOI (non-specific 20h, specific 60h+line)
        const cmd = v >> 5;
        if (cmd === 1) {
          for (let l = 0; l < 8; l++) {
            if (s.isr & (1 << l)) {
              s.isr &= ~(1 << l);
              break;
            }
          }
        } else if (cmd === 3) s.isr &= ~(1 << (v & 7));
      }
      return;
    }
    switch (s.initStep) {
      case 2:
        s.vectorBase = v & 0xf8;
        s.initStep = 3;
        return;
      case 3:
        s.initStep = s.needIcw4 ? 4 : 0;
        return;
      case 4:
        s.autoEoi = (v & 0x02) !== 0;
        s.initStep = 0;
        return;
      default:
        s.imr = v & 0xff; // OCW1
    }
  }

  read(port: 0 | 1): number {
    if (port === 1) return this.s.imr;
    return this.s.readIsr ? this.s.isr : this.s.irr;
  }
}

export class Pic8259 {
  readonly master: PicChip;
  readonly slave: PicChip;

  constructor(state: { master: PicChipState; slave: PicChipState } = { master: picChipInitial(0x08), slave: picChipInitial(0x70) }) {
    this.master = new PicChip(state.master);
    this.slave = new PicChip(state.slave);
  }

  static readonly PORTS = [0x20, 0x21, 0xa0, 0xa1];

  /** Drives ISA IRQ line 0..15 (edge triggered). */
  setIrq(irq: number, high: boolean): void {
    if (irq < 8) this.master.setLevel(irq, high);
    else {
      this.slave.setLevel(irq - 8, high);
      this.master.setLevel(2, this.slave.best() >= 0);
    }
  }

  /** Pulses a line (a timer tick). */
  pulse(irq: number): void {
    this.setIrq(irq, true);
    this.setIrq(irq, false);
  }

  /** INTA: the vector to deliver now (acknowledging it), or undefined. */
  acknowledge(): number | undefined {
    const l = this.master.best();
    if (l < 0) return undefined;
    if (l === 2) {
      const sl = this.slave.best();
      if (sl < 0) {
        this.master.s.irr &= ~4;
        return undefined;
      }
      this.master.ack(2);
      const v = this.slave.ack(sl);
      this.master.setLevel(2, false);
      return v;
    }
    return this.master.ack(l);
  }

  handles(port: number): boolean {
    return Pic8259.PORTS.includes(port);
  }

  write(port: number, v: number): void {
    (port < 0xa0 ? this.master : this.slave).write((port & 1) as 0 | 1, v & 0xff);
    if (port >= 0xa0) this.master.setLevel(2, this.slave.best() >= 0);
  }

  read(port: number): number {
    return (port < 0xa0 ? this.master : this.slave).read((port & 1) as 0 | 1);
  }

  snapshot(): { master: PicChipState; slave: PicChipState } {
    return { master: { ...this.master.s }, slave: { ...this.slave.s } };
  }
}
