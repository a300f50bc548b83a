/**
 * A 16550A UART (National Semiconductor PC16550D datasheet; QEMU hw/char/serial.c), as COM1 at
 * 3F8-3FF with IRQ 4. Offsets: 0 RBR/THR (DLL when DLAB), 1 IER (DLM when DLAB), 2 IIR/FCR,
 * 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR.
 *
 * The transmitter is infinitely fast: a byte written to THR goes straight to the sink (the
 * guest's serial console) and THRE/TEMT stay set. Received bytes wait in a host-side input queue
 * and enter the receive FIFO (16 bytes, or a 1-byte holding register with FIFOs off) as room
 * appears, so host input never overruns; a guest that lets the FIFO fill in loopback does get
 * an overrun (LSR.OE), as on hardware. The interrupt line reaches the PIC only when MCR.OUT2 is
 * set, as on every PC since the IBM AT.
 */
import type { AccessSize, IoDevice, IrqLine } from './types.ts';

export const UART_LSR = { DR: 0x01, OE: 0x02, PE: 0x04, FE: 0x08, BI: 0x10, THRE: 0x20, TEMT: 0x40, FIFOERR: 0x80 } as const;
export const UART_IER = { RDA: 0x01, THRE: 0x02, RLS: 0x04, MSI: 0x08 } as const;
export const UART_MCR = { DTR: 0x01, RTS: 0x02, OUT1: 0x04, OUT2: 0x08, LOOP: 0x10 } as const;
/** IIR interrupt identification codes (bits 3-1), highest priority first. */
export const UART_IIR = { NONE: 0x01, RLS: 0x06, RDA: 0x04, TIMEOUT: 0x0c, THRE: 0x02, MSI: 0x00 } as const;

export const COM1_BASE = 0x3f8;
export const COM1_IRQ = 4;
const FIFO_SIZE = 16;
const TRIGGER = [1, 4, 8, 14];
/** Host input waiting to enter the FIFO is capped; beyond it bytes are dropped and counted. */
const INPUT_QUEUE_MAX = 64 * 1024;

interface UartState {
  dll: number; dlm: number; ier: number; lcr: number; mcr: number; lsr: number; msr: number; scr: number;
  fcr: number;
  rx: number[];
  input: number[];
  thrInterrupt: boolean;
}

export interface UartOptions {
  irq: IrqLine;
  /** Bytes the guest transmits. */
  sink: (byte: number) => void;
  name?: string;
}

export class Uart16550 implements IoDevice {
  readonly name: string;
  readonly counters = { txBytes: 0, rxBytes: 0, overruns: 0, droppedInput: 0 };
  private readonly irq: IrqLine;
  private readonly sink: (byte: number) => void;
  private s: UartState;
  private irqLevel = false;

  constructor(opts: UartOptions) {
    this.name = opts.name ?? 'com1';
    this.irq = opts.irq;
    this.sink = opts.sink;
    this.s = {
      dll: 0x0c, dlm: 0, ier: 0, lcr: 0, mcr: 0, lsr: UART_LSR.THRE | UART_LSR.TEMT, msr: 0xb0, scr: 0,
      fcr: 0, rx: [], input: [], thrInterrupt: false,
    };
  }

  /** Host → guest: queue bytes typed on the console. */
  receive(bytes: Iterable<number>): void {
    for (const b of bytes) {
      if (this.s.input.length >= INPUT_QUEUE_MAX) this.counters.droppedInput++;
      else this.s.input.push(b & 0xff);
    }
    this.fillFifo();
    this.update();
  }

  /** Divisor latch value (115200 / divisor = baud). */
  get divisor(): number {
    return (this.s.dlm << 8) | this.s.dll;
  }

  read(offset: number, _size: AccessSize): number {
    const s = this.s;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (offset & 7) {
      case 0: {
        if (dlab) return s.dll;
        const v = s.rx.length ? s.rx.shift()! : 0;
        this.fillFifo();
        this.update();
        return v;
      }
      case 1: return dlab ? s.dlm : s.ier;
      case 2: {
        const id = this.interruptId();
        // Reading IIR when it reports THRE clears that source (PC16550D table III).
        if (id === UART_IIR.THRE) {
          s.thrInterrupt = false;
          this.update();
        }
        return id | (s.fcr & 1 ? 0xc0 : 0);
      }
      case 3: return s.lcr;
      case 4: return s.mcr;
      case 5: {
        const v = this.lsr();
        s.lsr &= ~(UART_LSR.OE | UART_LSR.PE | UART_LSR.FE | UART_LSR.BI); // cleared by reading
        this.update();
        return v;
      }
      case 6: {
        const v = this.msr();
        s.msr &= 0xf0; // delta bits clear on read
        return v;
      }
      default: return s.scr;
    }
  }

  write(offset: number, _size: AccessSize, value: number): void {
    const s = this.s;
    value &= 0xff;
    const dlab = (s.lcr & 0x80) !== 0;
    switch (offset & 7) {
      case 0:
        if (dlab) {
          s.dll = value;
          return;
        }
        this.transmit(value);
        return;
      case 1:
        if (dlab) {
          s.dlm = value;
          return;
        }
        // Enabling THRE interrupts with the transmitter empty raises one at once.
        if (value & UART_IER.THRE && !(s.ier & UART_IER.THRE)) s.thrInterrupt = true;
        s.ier = value & 0x0f;
        this.update();
        return;
      case 2:
        if (value & 0x02) s.rx.length = 0; // clear receive FIFO
        s.fcr = value & 0xc9;
        if (!(value & 1)) s.fcr = 0;
        this.fillFifo();
        this.update();
        return;
      case 3: s.lcr = value; return;
      case 4: {
        const old = s.mcr;
        s.mcr = value & 0x1f;
        if ((old ^ s.mcr) & UART_MCR.LOOP) s.msr &= 0xf0;
        this.update();
        return;
      }
      case 5: return; // LSR is read-only (factory test only)
      case 6: return; // MSR is read-only
      default: s.scr = value;
    }
  }

  snapshot(): UartState {
    return { ...this.s, rx: [...this.s.rx], input: [...this.s.input] };
  }

  restore(state: unknown): void {
    const st = state as UartState;
    this.s = { ...st, rx: [...st.rx], input: [...st.input] };
    this.update();
  }

  private transmit(b: number): void {
    const s = this.s;
    if (s.mcr & UART_MCR.LOOP) {
      // Loopback: the byte comes straight back into the receiver.
      if (s.rx.length >= this.capacity()) {
        s.lsr |= UART_LSR.OE;
        this.counters.overruns++;
      } else s.rx.push(b);
    } else {
      this.counters.txBytes++;
      this.sink(b);
    }
    s.thrInterrupt = true; // THR is empty again immediately
    this.update();
  }

  private capacity(): number {
    return this.s.fcr & 1 ? FIFO_SIZE : 1;
  }

  private fillFifo(): void {
    const s = this.s;
    if (s.mcr & UART_MCR.LOOP) return;
    while (s.input.length && s.rx.length < this.capacity()) {
      s.rx.push(s.input.shift()!);
      this.counters.rxBytes++;
    }
  }

  private lsr(): number {
    const s = this.s;
    return (s.lsr & (UART_LSR.OE | UART_LSR.PE | UART_LSR.FE | UART_LSR.BI)) | UART_LSR.THRE | UART_LSR.TEMT | (s.rx.length ? UART_LSR.DR : 0);
  }

  private msr(): number {
    const s = this.s;
    if (s.mcr & UART_MCR.LOOP) {
      // Loopback wires DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
      const m = s.mcr;
      return (s.msr & 0x0f) | (m & 2 ? 0x10 : 0) | (m & 1 ? 0x20 : 0) | (m & 4 ? 0x40 : 0) | (m & 8 ? 0x80 : 0);
    }
    return (s.msr & 0x0f) | 0xb0; // CTS, DSR, DCD: a terminal is connected
  }

  private interruptId(): number {
    const s = this.s;
    if (s.ier & UART_IER.RLS && s.lsr & UART_LSR.OE) return UART_IIR.RLS;
    if (s.ier & UART_IER.RDA && s.rx.length) {
      // With FIFOs on, below the trigger level the character-timeout source reports the data.
      if (!(s.fcr & 1) || s.rx.length >= TRIGGER[(s.fcr >> 6) & 3]) return UART_IIR.RDA;
      return UART_IIR.TIMEOUT;
    }
    if (s.ier & UART_IER.THRE && s.thrInterrupt) return UART_IIR.THRE;
    if (s.ier & UART_IER.MSI && s.msr & 0x0f) return UART_IIR.MSI;
    return UART_IIR.NONE;
  }

  private update(): void {
    const level = this.interruptId() !== UART_IIR.NONE && (this.s.mcr & UART_MCR.OUT2) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }
}
