/**
 * The 8254 programmable interval timer, channel 0 (IRQ 0), emulated in the hypervisor as Xen
 * does (xen/arch/x86/emul/i8254.c): ports 40h-42h are the counters, 43h the control word. Modes 2
 * (rate generator) and 3 (square wave) give the periodic tick a PC BIOS programs (18.2 Hz for a
 * reload of 0); counter reads return the current count (latched on request).
 */
export const PIT_HZ = 1_193_182;

export interface PitChannelState {
  reload: number;
  mode: number;
  /** 1 lobyte, 2 hibyte, 3 lobyte then hibyte. */
  access: number;
  writeHi: boolean;
  /** The low byte written, waiting for the high byte (access mode 3). */
  pendingLo: number;
  readHi: boolean;
  latched: number | null;
  /** Clock (ns) when the count was last loaded. */
  loadedAt: number;
  running: boolean;
}

/** A channel's state at power-on. */
export const pitChannelInitial = (): PitChannelState => ({ reload: 0x10000, mode: 3, access: 3, writeHi: false, pendingLo: 0, readHi: false, latched: null, loadedAt: 0, running: false });

export class Pit8254 {
  /** Called when channel 0's period changes (ns, or 0 when stopped). */
  onPeriod: ((ns: number) => void) | undefined;

  static readonly PORTS = [0x40, 0x41, 0x42, 0x43];

  constructor(
    private readonly now: () => number,
    /** Plain data, or views of shared memory (platform-state.ts) when pCPU threads share the PIT. */
    readonly ch: PitChannelState[] = [0, 1, 2].map(pitChannelInitial),
  ) {}

  handles(port: number): boolean {
    return Pit8254.PORTS.includes(port);
  }

  /** Channel 0's period in ns (0 when not running). */
  get periodNs(): number {
    const c = this.ch[0]!;
    return c.running ? Math.round((c.reload * 1e9) / PIT_HZ) : 0;
  }

  private count(c: PitChannelState): number {
    if (!c.running) return c.reload & 0xffff;
    const ticks = Math.floor(((this.now() - c.loadedAt) * PIT_HZ) / 1e9);
    return (c.reload - (ticks % c.reload)) & 0xffff;
  }

  write(port: number, v: number): void {
    v &= 0xff;
    if (port === 0x43) {
      const sel = v >> 6;
      if (sel === 3) return; // read-back: not supported
      const c = this.ch[sel]!;
      const access = (v >> 4) & 3;
      if (access === 0) {
        c.latched = this.count(c); // counter latch
        c.readHi = false;
        return;
      }
      c.access = access;
      c.mode = (v >> 1) & 7;
      c.writeHi = false;
      c.readHi = false;
      return;
    }
    const idx = port - 0x40;
    const c = this.ch[idx]!;
    let reload = c.reload === 0x10000 ? 0 : c.reload;
    if (c.access === 1) reload = (reload & 0xff00) | v;
    else if (c.access === 2) reload = (reload & 0xff) | (v << 8);
    else if (!c.writeHi) {
      c.pendingLo = v;
      c.writeHi = true;
      return; // wait for the high byte
    } else {
      reload = c.pendingLo | (v << 8);
      c.writeHi = false;
    }
    c.reload = reload === 0 ? 0x10000 : reload;
    c.loadedAt = this.now();
    c.running = true;
    if (idx === 0) this.onPeriod?.(this.periodNs);
  }

  read(port: number): number {
    if (port === 0x43) return 0xff;
    const c = this.ch[port - 0x40]!;
    const value = c.latched ?? this.count(c);
    let out: number;
    if (c.access === 1) out = value & 0xff;
    else if (c.access === 2) out = value >> 8;
    else {
      out = c.readHi ? value >> 8 : value & 0xff;
      c.readHi = !c.readHi;
      if (!c.readHi) c.latched = null;
      return out & 0xff;
    }
    c.latched = null;
    return out & 0xff;
  }
}
