/**
 * The 8042 keyboard controller at 60h (data) and 64h (status/command), with a PS/2 keyboard
 * behind it (IBM PC AT Technical Reference, "Keyboard controller"; QEMU hw/input/pckbd.c and
 * ps2.c). Offsets: 0 = port 60h, 4 = port 64h.
 *
 * Keys arrive from the host as set-1 scancodes (what the 8042 hands the CPU with translation on,
 * the PC default) through `pressKeys`. The controller moves one byte at a time into its output
 * buffer; each byte raises IRQ 1 when the command byte enables it. A20 (output port bit 1, set
 * with command D1h) and the CPU reset line (output port bit 0, pulsed by FEh) are reported to
 * callbacks: the hypervisor owns the CPU, qemu-dm only tells it.
 */
import type { AccessSize, IoDevice, IrqLine } from './types.ts';

export const KBC_STATUS = { OBF: 0x01, IBF: 0x02, SYS: 0x04, CMD: 0x08, UNLOCKED: 0x10, AUX_OBF: 0x20 } as const;
export const KBC_CCB = { KBD_INT: 0x01, AUX_INT: 0x02, SYS: 0x04, KBD_DISABLE: 0x10, AUX_DISABLE: 0x20, XLATE: 0x40 } as const;
export const KBC_DATA_PORT = 0x60;
export const KBC_IRQ = 1;
const QUEUE_MAX = 256;

interface KbcState {
  status: number;
  ccb: number;
  outPort: number;
  /** Byte in the output buffer, valid when status.OBF. */
  out: number;
  /** Bytes waiting for the output buffer: controller and keyboard replies first (bit 8 = from the aux port), then keystrokes. */
  ctrlQueue: number[];
  kbdQueue: number[];
  /** A controller command waiting for its data byte on port 60h (60h, D1h, D2h, D3h, D4h). */
  pendingCmd: number;
  /** A keyboard command waiting for its argument (EDh LEDs, F3h typematic, F0h scancode set). */
  pendingKbdCmd: number;
  kbdEnabled: boolean;
  leds: number;
  scancodeSet: number;
}

export interface KbcOptions {
  irq: IrqLine;
  onA20?: (enabled: boolean) => void;
  onReset?: () => void;
}

export class I8042 implements IoDevice {
  readonly name = 'i8042';
  readonly counters = { keysQueued: 0, keysDropped: 0, resets: 0 };
  private s: KbcState;
  private irqLevel = false;

  constructor(private readonly opts: KbcOptions) {
    this.s = {
      status: KBC_STATUS.UNLOCKED, ccb: KBC_CCB.KBD_INT | KBC_CCB.XLATE, outPort: 0x03, out: 0,
      ctrlQueue: [], kbdQueue: [], pendingCmd: 0, pendingKbdCmd: 0, kbdEnabled: true, leds: 0, scancodeSet: 2,
    };
  }

  get a20(): boolean {
    return (this.s.outPort & 0x02) !== 0;
  }

  /** Host keyboard input: set-1 scancodes (make and break codes, E0 prefixes included). */
  pressKeys(scancodes: Iterable<number>): void {
    for (const c of scancodes) {
      if (this.s.kbdQueue.length >= QUEUE_MAX) this.counters.keysDropped++;
      else {
        this.s.kbdQueue.push(c & 0xff);
        this.counters.keysQueued++;
      }
    }
    this.pump();
  }

  read(offset: number, _size: AccessSize): number {
    const s = this.s;
    if (offset === 0) {
      // Port 60h: read the output buffer (the last byte again if nothing new, as the 8042 does).
      const v = s.out;
      s.status &= ~(KBC_STATUS.OBF | KBC_STATUS.AUX_OBF);
      this.update();
      this.pump();
      return v;
    }
    if (offset === 4) return s.status;
    return 0xff;
  }

  write(offset: number, _size: AccessSize, value: number): void {
    value &= 0xff;
    if (offset === 0) this.writeData(value);
    else if (offset === 4) this.writeCommand(value);
  }

  snapshot(): KbcState {
    return { ...this.s, ctrlQueue: [...this.s.ctrlQueue], kbdQueue: [...this.s.kbdQueue] };
  }

  restore(state: unknown): void {
    const st = state as KbcState;
    this.s = { ...st, ctrlQueue: [...st.ctrlQueue], kbdQueue: [...st.kbdQueue] };
    this.update();
  }

  private writeCommand(cmd: number): void {
    const s = this.s;
    s.status |= KBC_STATUS.CMD;
    s.pendingCmd = 0;
    if (cmd >= 0x20 && cmd <= 0x3f) {
      // Read controller RAM: byte 0 is the command byte; the rest read as 0 here.
      this.reply(cmd === 0x20 ? s.ccb : 0);
      return;
    }
    if ((cmd >= 0x60 && cmd <= 0x7f) || cmd === 0xd1 || cmd === 0xd2 || cmd === 0xd3 || cmd === 0xd4) {
      s.pendingCmd = cmd;
      return;
    }
    if (cmd >= 0xf0) {
      // Pulse output-port lines: a 0 in bit 0 pulses CPU reset (FEh is the classic reboot).
      if (!(cmd & 1)) this.reset();
      return;
    }
    switch (cmd) {
      case 0xa7: s.ccb |= KBC_CCB.AUX_DISABLE; break;
      case 0xa8: s.ccb &= ~KBC_CCB.AUX_DISABLE; break;
      case 0xa9: this.reply(0x00); break; // aux interface test: OK
      case 0xaa:
        // Self test passes: 55h, and the system flag is set.
        s.status |= KBC_STATUS.SYS;
        s.ccb |= KBC_CCB.SYS;
        this.reply(0x55);
        break;
      case 0xab: this.reply(0x00); break; // keyboard interface test: OK
      case 0xad: s.ccb |= KBC_CCB.KBD_DISABLE; break;
      case 0xae: s.ccb &= ~KBC_CCB.KBD_DISABLE; this.pump(); break;
      case 0xc0: this.reply(0xbf); break; // input port: keyboard not inhibited, colour display
      case 0xd0: this.reply(s.outPort | (s.status & KBC_STATUS.OBF ? 0x10 : 0)); break;
      case 0xdd: this.setOutPort(s.outPort & ~0x02); break; // A20 off (HP extension)
      case 0xdf: this.setOutPort(s.outPort | 0x02); break; // A20 on
      default: break; // unknown: the 8042 ignores it
    }
  }

  private writeData(v: number): void {
    const s = this.s;
    s.status &= ~KBC_STATUS.CMD;
    const cmd = s.pendingCmd;
    s.pendingCmd = 0;
    if (cmd >= 0x60 && cmd <= 0x7f) {
      if (cmd === 0x60) {
        s.ccb = v;
        s.status = (s.status & ~KBC_STATUS.SYS) | (v & KBC_CCB.SYS);
        this.update();
        this.pump();
      }
      return;
    }
    switch (cmd) {
      case 0xd1: this.setOutPort(v); return;
      case 0xd2: this.reply(v); return; // echo as if from the keyboard
      case 0xd3: this.reply(v, true); return; // as if from the mouse
      case 0xd4: this.reply(0xfe, true); return; // no mouse: "resend"
      default: break;
    }
    this.keyboardCommand(v);
  }

  /** A byte for the keyboard itself (PS/2 keyboard command set). */
  private keyboardCommand(v: number): void {
    const s = this.s;
    const arg = s.pendingKbdCmd;
    if (arg) {
      s.pendingKbdCmd = 0;
      if (arg === 0xed) s.leds = v & 7;
      if (arg === 0xf0) {
        if (v === 0) {
          this.kbdReply(0xfa, s.scancodeSet);
          return;
        }
        if (v >= 1 && v <= 3) s.scancodeSet = v;
      }
      this.kbdReply(0xfa);
      return;
    }
    switch (v) {
      case 0xed: case 0xf3: case 0xf0:
        s.pendingKbdCmd = v;
        this.kbdReply(0xfa);
        return;
      case 0xee: this.kbdReply(0xee); return; // echo
      case 0xf2: this.kbdReply(0xfa, 0xab, 0x83); return; // identify: MF2 keyboard
      case 0xf4: s.kbdEnabled = true; this.kbdReply(0xfa); return;
      case 0xf5: s.kbdEnabled = false; this.kbdReply(0xfa); return;
      case 0xf6: s.kbdEnabled = true; this.kbdReply(0xfa); return;
      case 0xff:
        s.kbdQueue.length = 0;
        s.kbdEnabled = true;
        this.kbdReply(0xfa, 0xaa); // ACK, then BAT passed
        return;
      default:
        this.kbdReply(0xfe); // resend: not a command the keyboard knows
    }
  }

  private setOutPort(v: number): void {
    const old = this.s.outPort;
    this.s.outPort = v;
    if ((old ^ v) & 0x02) this.opts.onA20?.((v & 0x02) !== 0);
    if (!(v & 0x01)) this.reset();
  }

  private reset(): void {
    this.counters.resets++;
    this.opts.onReset?.();
  }

  private reply(b: number, aux = false): void {
    this.s.ctrlQueue.push(aux ? b | 0x100 : b);
    this.pump();
  }

  /** Keyboard replies (ACK, ids) go ahead of queued keystrokes, even while scanning is disabled. */
  private kbdReply(...bytes: number[]): void {
    this.s.ctrlQueue.push(...bytes);
    this.pump();
  }

  /** Move the next byte into the output buffer if it is free. */
  private pump(): void {
    const s = this.s;
    if (s.status & KBC_STATUS.OBF) return;
    let b: number | undefined;
    if (s.ctrlQueue.length) b = s.ctrlQueue.shift()!;
    else if (s.kbdQueue.length && !(s.ccb & KBC_CCB.KBD_DISABLE) && s.kbdEnabled) b = s.kbdQueue.shift()!;
    if (b === undefined) return;
    s.out = b & 0xff;
    s.status |= KBC_STATUS.OBF | (b & 0x100 ? KBC_STATUS.AUX_OBF : 0);
    this.update();
  }

  private update(): void {
    const s = this.s;
    const level = (s.status & KBC_STATUS.OBF) !== 0 && !(s.status & KBC_STATUS.AUX_OBF) && (s.ccb & KBC_CCB.KBD_INT) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.opts.irq(level);
    }
  }
}
