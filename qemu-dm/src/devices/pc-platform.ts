/**
 * The set of devices one qemu-dm serves for one HVM guest, wired onto one `IoBus` with the port
 * map in README.md. This is what the ioreq server dispatches to and what save/restore captures;
 * the PIC and PIT are not here because the hypervisor emulates them (ARCHITECTURE.md, "Where
 * guest code runs"): devices raise ISA IRQ numbers through the `irq` callback.
 */
import { AtaController, ATA_PRIMARY_BMIDE_BASE, ATA_PRIMARY_CMD_BASE, ATA_PRIMARY_CTL_PORT, ATA_PRIMARY_IRQ } from './ata.ts';
import { CmosRtc, CMOS_INDEX_PORT, type BootDevice } from './cmos-rtc.ts';
import { I8042, KBC_DATA_PORT, KBC_IRQ } from './i8042.ts';
import { IoBus } from './io-bus.ts';
import { DebugPort, DEBUG_PORT, PM1A_CNT_PORT, PowerControl } from './power.ts';
import type { BlockImage, DmaMemory } from './types.ts';
import { COM1_BASE, COM1_IRQ, Uart16550 } from './uart16550.ts';
import { VgaText, VGA_PORT_BASE, VGA_PORT_COUNT, VGA_TEXT_BASE, VGA_TEXT_SIZE } from './vga-text.ts';

export interface PcPlatformOptions {
  /** The primary master disk; without one the IDE ports are left unclaimed (they float high). */
  image?: BlockImage;
  dma: DmaMemory;
  /** Guest RAM size in bytes (reported through CMOS). */
  memoryBytes: number;
  /** An ISA interrupt line changed level (0-15). */
  irq: (line: number, level: boolean) => void;
  serialSink?: (byte: number) => void;
  debugSink?: (line: string) => void;
  onPowerOff?: () => void;
  onReset?: () => void;
  onA20?: (enabled: boolean) => void;
  bootOrder?: BootDevice[];
  biosFlags?: number;
  clock?: () => number;
}

/** The snapshot format: one entry per device, each the device's own plain-data state. */
export interface PcPlatformSnapshot {
  version: 1;
  devices: { ata0: unknown | null; com1: unknown; i8042: unknown; cmos: unknown; vga: unknown; pm1a: unknown; debug: unknown };
}

export class PcPlatform {
  readonly bus = new IoBus();
  readonly ata: AtaController | null;
  readonly com1: Uart16550;
  readonly kbc: I8042;
  readonly cmos: CmosRtc;
  readonly vga: VgaText;
  readonly power: PowerControl;
  readonly debug: DebugPort;

  constructor(opts: PcPlatformOptions) {
    const line = (n: number) => (level: boolean) => opts.irq(n, level);
    this.ata = opts.image ? new AtaController({ image: opts.image, dma: opts.dma, irq: line(ATA_PRIMARY_IRQ) }) : null;
    this.com1 = new Uart16550({ irq: line(COM1_IRQ), sink: opts.serialSink ?? (() => {}) });
    this.kbc = new I8042({ irq: line(KBC_IRQ), onA20: opts.onA20, onReset: opts.onReset });
    this.cmos = new CmosRtc({ memoryBytes: opts.memoryBytes, hardDisks: this.ata ? 1 : 0, bootOrder: opts.bootOrder, biosFlags: opts.biosFlags, clock: opts.clock });
    this.vga = new VgaText();
    this.power = new PowerControl(opts.onPowerOff ?? (() => {}));
    this.debug = new DebugPort(opts.debugSink);

    const b = this.bus;
    if (this.ata) {
      b.mapPorts(ATA_PRIMARY_CMD_BASE, 8, this.ata.commandBlock);
      b.mapPorts(ATA_PRIMARY_CTL_PORT, 1, this.ata.control);
      b.mapPorts(ATA_PRIMARY_BMIDE_BASE, 8, this.ata.busMaster);
    }
    b.mapPorts(COM1_BASE, 8, this.com1);
    // 60h and 64h: one device, offsets 0 and 4 (61h-63h stay unassigned here: the hypervisor owns 61h).
    b.mapPorts(KBC_DATA_PORT, 1, this.kbc);
    b.mapPorts(KBC_DATA_PORT + 4, 1, { name: 'i8042', read: (_o, s) => this.kbc.read(4, s), write: (_o, s, v) => this.kbc.write(4, s, v), snapshot: () => this.kbc.snapshot(), restore: (st) => this.kbc.restore(st) });
    b.mapPorts(CMOS_INDEX_PORT, 2, this.cmos);
    b.mapPorts(VGA_PORT_BASE, VGA_PORT_COUNT, this.vga.ports);
    b.mapMmio(VGA_TEXT_BASE, VGA_TEXT_SIZE, this.vga.text);
    b.mapPorts(PM1A_CNT_PORT, 2, this.power);
    b.mapPorts(DEBUG_PORT, 1, this.debug);
  }

  snapshot(): PcPlatformSnapshot {
    return {
      version: 1,
      devices: {
        ata0: this.ata ? this.ata.snapshot() : null,
        com1: this.com1.snapshot(),
        i8042: this.kbc.snapshot(),
        cmos: this.cmos.snapshot(),
        vga: this.vga.snapshot(),
        pm1a: this.power.snapshot(),
        debug: this.debug.snapshot(),
      },
    };
  }

  restore(snap: PcPlatformSnapshot): void {
    if (snap.version !== 1) throw new Error(`qemu-dm: device snapshot version ${String(snap.version)} is not supported (expected 1)`);
    const d = snap.devices;
    if ((d.ata0 === null) !== (this.ata === null)) throw new Error('qemu-dm: the snapshot and this machine disagree on whether there is a disk');
    if (this.ata) this.ata.restore(d.ata0);
    this.com1.restore(d.com1);
    this.kbc.restore(d.i8042);
    this.cmos.restore(d.cmos);
    this.vga.restore(d.vga);
    this.power.restore(d.pm1a);
    this.debug.restore(d.debug);
  }
}
