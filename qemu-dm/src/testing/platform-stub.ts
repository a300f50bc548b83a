/**
 * Test stand-ins for the platform devices the HYPERVISOR emulates itself (ARCHITECTURE.md,
 * "Where guest code runs"): the 8259A interrupt controller pair and 8254 timer channel 0. They
 * exist so the component tests can run the BIOS with interrupts; they are deliberately small
 * (no special mask mode, rotation, poll mode or timer modes other than the periodic tick) and are
 * not part of qemu-dm. The real ones live in the hypervisor.
 */

/** Two cascaded 8259As: IRQ 0-7 on the master, 8-15 on the slave (cascade on IRQ 2). */
export class PicPairStub {
  /** Vector bases from ICW2. */
  base = [0x08, 0x70];
  imr = [0xff, 0xff];
  irr = [0, 0];
  isr = [0, 0];
  private levels = 0;
  private icwStep = [0, 0];
  readonly counters = { eoi: 0, delivered: 0 };

  snapshot(): { base: number[]; imr: number[]; irr: number[]; isr: number[]; levels: number; icwStep: number[] } {
    return { base: [...this.base], imr: [...this.imr], irr: [...this.irr], isr: [...this.isr], levels: this.levels, icwStep: [...this.icwStep] };
  }

  restore(st: ReturnType<PicPairStub['snapshot']>): void {
    this.base = [...st.base];
    this.imr = [...st.imr];
    this.irr = [...st.irr];
    this.isr = [...st.isr];
    this.levels = st.levels;
    this.icwStep = [...st.icwStep];
  }

  /** A device's line changed level; the 8259 is edge triggered (AT default). */
  setLevel(line: number, level: boolean): void {
    const bit = 1 << line;
    const was = (this.levels & bit) !== 0;
    if (level) this.levels |= bit;
    else this.levels &= ~bit;
    const chip = line >> 3;
    if (level && !was) this.irr[chip] |= 1 << (line & 7);
    // An edge request that goes away before INTA is withdrawn (the real 8259A would answer
    // with a spurious IRQ 7; the stub simply forgets it).
    if (!level && was) this.irr[chip] &= ~(1 << (line & 7));
  }

  /** A timer edge: latched in IRR until acknowledged. */
  pulse(line: number): void {
    this.irr[line >> 3] |= 1 << (line & 7);
  }

  /** INTA: the highest-priority deliverable vector, moved from IRR to ISR; or -1. */
  acknowledge(): number {
    const slave = this.pending(1);
    if (slave >= 0) this.irr[0] |= 0x04; // the slave's INT drives master IRQ 2
    else this.irr[0] &= ~0x04;
    const m = this.pending(0);
    if (m < 0) return -1;
    this.irr[0] &= ~(1 << m);
    this.isr[0] |= 1 << m;
    this.counters.delivered++;
    if (m === 2) {
      this.irr[1] &= ~(1 << slave);
      this.isr[1] |= 1 << slave;
      return this.base[1] + slave;
    }
    return this.base[0] + m;
  }

  /** The highest-priority IRR bit not masked and above anything in service, or -1. */
  private pending(chip: number): number {
    const req = this.irr[chip] & ~this.imr[chip];
    for (let i = 0; i < 8; i++) {
      if (this.isr[chip] & (1 << i)) return -1;
      if (req & (1 << i)) return i;
    }
    return -1;
  }

  in(port: number): number {
    const chip = port >= 0xa0 ? 1 : 0;
    return port & 1 ? this.imr[chip] : this.irr[chip];
  }

  out(port: number, value: number): void {
    const chip = port >= 0xa0 ? 1 : 0;
    if (!(port & 1)) {
      if (value & 0x10) {
        // ICW1: start initialisation; ICW2-ICW4 follow on the data port.
        this.icwStep[chip] = 2;
        this.imr[chip] = 0;
        this.isr[chip] = 0;
        this.irr[chip] = 0;
        return;
      }
      if ((value & 0x18) === 0 && value & 0x20) {
        // OCW2 EOI: non-specific clears the highest-priority in-service bit.
        this.counters.eoi++;
        for (let i = 0; i < 8; i++) {
          if (this.isr[chip] & (1 << i)) {
            this.isr[chip] &= ~(1 << i);
            break;
          }
        }
      }
      return;
    }
    const step = this.icwStep[chip];
    if (step === 2) {
      this.base[chip] = value & 0xf8;
      this.icwStep[chip] = 3;
    } else if (step === 3) {
      this.icwStep[chip] = 4;
    } else if (step === 4) {
      this.icwStep[chip] = 0;
    } else {
      this.imr[chip] = value & 0xff;
    }
  }
}

/** 8254 channel 0 as a periodic tick source; the machine turns instructions into time. */
export class PitStub {
  reload = 0x10000;
  programmed = false;
  private lsbNext = true;
  private latch = 0;

  snapshot(): { reload: number; programmed: boolean; lsbNext: boolean; latch: number } {
    return { reload: this.reload, programmed: this.programmed, lsbNext: this.lsbNext, latch: this.latch };
  }

  restore(st: ReturnType<PitStub['snapshot']>): void {
    this.reload = st.reload;
    this.programmed = st.programmed;
    this.lsbNext = st.lsbNext;
    this.latch = st.latch;
  }

  out(port: number, value: number): void {
    if (port === 0x43) {
      if ((value & 0xc0) === 0) this.lsbNext = true; // channel 0 access mode
      return;
    }
    if (port === 0x40) {
      if (this.lsbNext) {
        this.latch = value & 0xff;
        this.lsbNext = false;
      } else {
        const v = this.latch | ((value & 0xff) << 8);
        this.reload = v === 0 ? 0x10000 : v;
        this.lsbNext = true;
        this.programmed = true;
      }
    }
  }

  in(_port: number): number {
    return 0;
  }
}
