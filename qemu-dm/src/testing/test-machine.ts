/**
 * A whole HVM guest in one process, for component tests and benchmarks: the x86 CPU
 * (@xenlab/x86-cpu) runs the virtual BIOS and a boot sector in a flat 1 MiB guest RAM, and every
 * port or MMIO exit it takes is completed here by qemu-dm's device models through the same
 * `IoBus.handle(ioreq)` the ioreq server will use. What the hypervisor itself would emulate
 * (PIC, PIT, port 61h) is served by small stubs (platform-stub.ts) and counted separately.
 *
 * Memory map: 0-9FFFF RAM, A0000-EFFFF not RAM (MMIO: VGA text at B8000), F0000-FFFFF RAM
 * holding the BIOS image (in Xen, hvmloader/qemu copy the BIOS into guest RAM the same way).
 */
import { Cpu, IF, type CpuExit, type CpuState, type Page } from '@xenlab/x86-cpu';
import { PcPlatform, type PcPlatformOptions, type PcPlatformSnapshot } from '../devices/pc-platform.ts';
import { b64ToBytes, bytesToB64 } from '../devices/memory.ts';
import type { IoRequest } from '../devices/io-bus.ts';
import type { AccessSize, BlockImage, DmaMemory } from '../devices/types.ts';
import { PicPairStub, PitStub } from './platform-stub.ts';
import { BIOS_LOAD_ADDRESS, loadBiosImage } from '../bios.ts';
import { readIoreq, serveIoreqSlot, writeIoreq, type IoreqCounters } from '../ioreq.ts';

const BIOS_BASE = BIOS_LOAD_ADDRESS;
const PAGE = 4096;

/** Guest memory through the page table: non-RAM pages refuse DMA like a master abort. */
export class PagedDmaMemory implements DmaMemory {
  constructor(private readonly pages: Page[]) {}
  read(gpa: number, length: number): Uint8Array | null {
    if (!this.check(gpa, length)) return null;
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      const a = gpa + i;
      const page = this.pages[a >>> 12]!;
      const off = a & (PAGE - 1);
      const n = Math.min(PAGE - off, length - i);
      out.set(page.subarray(off, off + n), i);
      i += n;
    }
    return out;
  }
  write(gpa: number, data: Uint8Array): boolean {
    if (!this.check(gpa, data.length)) return false;
    for (let i = 0; i < data.length; ) {
      const a = gpa + i;
      const page = this.pages[a >>> 12]!;
      const off = a & (PAGE - 1);
      const n = Math.min(PAGE - off, data.length - i);
      page.set(data.subarray(i, i + n), off);
      i += n;
    }
    return true;
  }
  private check(gpa: number, length: number): boolean {
    if (!Number.isInteger(gpa) || gpa < 0 || length < 0 || gpa + length > this.pages.length * PAGE) return false;
    for (let p = gpa >>> 12; p <= (gpa + Math.max(length, 1) - 1) >>> 12; p++) if (!this.pages[p]) return false;
    return true;
  }
}

export interface TestMachineOptions {
  /** The primary master disk, or null for a machine without one. */
  disk: BlockImage | null;
  /** INT 13h through bus-master DMA instead of PIO (CMOS 70h bit 0). */
  dma?: boolean;
  /** PIO with READ/WRITE MULTIPLE, 16 sectors per DRQ block (CMOS 70h bit 1). */
  pioMultiple?: boolean;
  /** A timer tick every this many instructions once the BIOS programs the PIT (0 = no timer). */
  instructionsPerTick?: number;
  bios?: Uint8Array;
  clock?: PcPlatformOptions['clock'];
  /**
   * Carry every request to qemu-dm through a 32-byte `ioreq_t` slot in a 4 KiB ioreq page
   * (write it READY, serve it with `serveIoreqSlot`, read the answer back) instead of calling
   * `IoBus.handle` directly: the same bytes the hypervisor and qemu-dm will exchange.
   */
  ioreqPage?: boolean;
}

export type StopReason = 'poweroff' | 'halted' | 'interrupt-exit' | 'budget' | 'reset' | 'until';

export interface RunResult {
  reason: StopReason;
  instructions: number;
  vector?: number;
}

/** A guest write to the diagnostic port 80h, with the exit counters at that moment. */
/** Everything needed to resume a TestMachine elsewhere: the save/restore path in miniature. */
export interface TestMachineSnapshot {
  cpu: CpuState;
  /** Guest RAM (base64). */
  ram: string;
  devices: PcPlatformSnapshot;
  pic: ReturnType<PicPairStub['snapshot']>;
  pit: ReturnType<PitStub['snapshot']>;
  serial: string;
  sinceTick: number;
}

export interface Marker {
  value: number;
  exits: number;
  ports: Record<string, number>;
}

export class TestMachine {
  readonly ram: Uint8Array;
  readonly pages: Page[];
  readonly cpu: Cpu;
  readonly platform: PcPlatform;
  readonly pic = new PicPairStub();
  readonly pit = new PitStub();
  readonly dmaMemory: PagedDmaMemory;
  /** Bytes the guest sent to COM1. */
  serial = '';
  /** Exits taken, by reason, and by "pio:port" / "mmio:addr" including hypervisor-handled ports. */
  readonly exits = { total: 0, io: 0, mmio: 0, hlt: 0, byPort: new Map<string, number>() };
  readonly markers: Marker[] = [];
  poweredOff = false;
  /** The ioreq page (slot 0 is vCPU 0's) when `ioreqPage` is set. */
  readonly ioreqPage: DataView | null;
  readonly ioreqCounters: IoreqCounters = { served: 0, malformed: 0, ignoredTypes: 0 };
  resetRequested = false;
  private readonly instructionsPerTick: number;
  private sinceTick = 0;
  instructions = 0;

  constructor(opts: TestMachineOptions) {
    this.ram = new Uint8Array(0x100000);
    this.pages = [];
    for (let i = 0; i < 256; i++) {
      const a = i * PAGE;
      const isRam = a < 0xa0000 || a >= BIOS_BASE;
      this.pages.push(isRam ? this.ram.subarray(a, a + PAGE) : null);
    }
    const bios = opts.bios ?? loadBiosImage();
    this.ram.set(bios, BIOS_BASE);
    this.dmaMemory = new PagedDmaMemory(this.pages);
    this.instructionsPerTick = opts.instructionsPerTick ?? 0;
    this.ioreqPage = opts.ioreqPage ? new DataView(new ArrayBuffer(4096)) : null;
    this.platform = new PcPlatform({
      image: opts.disk ?? undefined,
      dma: this.dmaMemory,
      memoryBytes: 640 * 1024,
      irq: (line, level) => this.pic.setLevel(line, level),
      serialSink: (b) => {
        this.serial += String.fromCharCode(b);
      },
      onPowerOff: () => {
        this.poweredOff = true;
      },
      onReset: () => {
        this.resetRequested = true;
      },
      biosFlags: (opts.dma ? 0x01 : 0) | (opts.pioMultiple ? 0x02 : 0),
      clock: opts.clock,
    });
    // No synchronous handlers: every port and MMIO access is an exit, as for an HVM guest.
    this.cpu = new Cpu({ model: '80186', memory: { pages: this.pages }, ports: {} });
  }

  /** The text on the emulated screen. */
  screen(): string[] {
    return this.platform.vga.screen();
  }

  /** The BIOS's debug-port output. */
  get debugLog(): string {
    return this.platform.debug.text;
  }

  /**
   * Run until the guest powers off, halts for good (HLT with interrupts off, or nothing that
   * could wake it), exits on a vector marked with `cpu.setInterruptExit`, asks for a reset, or
   * the instruction budget runs out. `until` is checked after every exit.
   */
  run(maxInstructions: number, until?: (m: TestMachine) => boolean): RunResult {
    const start = this.instructions;
    while (this.instructions - start < maxInstructions) {
      this.deliverInterrupts();
      const slice = Math.min(20_000, maxInstructions - (this.instructions - start));
      const exit = this.cpu.run(this.instructionsPerTick > 0 ? Math.min(slice, this.instructionsPerTick - this.sinceTick) : slice);
      this.account(exit.executed);
      if (exit.reason !== 'budget') {
        this.exits.total++;
        const stop = this.serve(exit);
        if (stop) return { ...stop, instructions: this.instructions - start };
      }
      if (this.poweredOff) return { reason: 'poweroff', instructions: this.instructions - start };
      if (this.resetRequested) return { reason: 'reset', instructions: this.instructions - start };
      if (until?.(this)) return { reason: 'until', instructions: this.instructions - start };
    }
    return { reason: 'budget', instructions: this.instructions - start };
  }

  /** Snapshot between `run` calls (no exit is half-completed then). Plain JSON data. */
  snapshot(): TestMachineSnapshot {
    return {
      cpu: this.cpu.getState(),
      ram: bytesToB64(this.ram),
      devices: this.platform.snapshot(),
      pic: this.pic.snapshot(),
      pit: this.pit.snapshot(),
      serial: this.serial,
      sinceTick: this.sinceTick,
    };
  }

  restore(snap: TestMachineSnapshot): void {
    this.ram.set(b64ToBytes(snap.ram));
    this.cpu.setState(snap.cpu);
    this.platform.restore(snap.devices);
    this.pic.restore(snap.pic);
    this.pit.restore(snap.pit);
    this.serial = snap.serial;
    this.sinceTick = snap.sinceTick;
  }

  /** Exit counts between two diagnostic-port markers (values written to port 80h). */
  exitsBetween(from: number, to: number): { exits: number; ports: Record<string, number> } {
    const a = this.markers.find((m) => m.value === from);
    const b = this.markers.find((m) => m.value === to);
    if (!a || !b) throw new Error(`test-machine: markers ${from} and ${to} were not both written (saw ${this.markers.map((m) => m.value).join(', ')})`);
    const ports: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.ports)) {
      const d = v - (a.ports[k] ?? 0);
      if (d > 0) ports[k] = d;
    }
    return { exits: b.exits - a.exits, ports };
  }

  private account(executed: number): void {
    this.instructions += executed;
    if (this.instructionsPerTick > 0 && this.pit.programmed) {
      this.sinceTick += executed;
      if (this.sinceTick >= this.instructionsPerTick) {
        this.sinceTick = 0;
        this.pic.pulse(0);
      }
    }
  }

  private deliverInterrupts(): void {
    if (this.cpu.pendingIrqCount > 0 || !(this.cpu.getFlags() & IF)) return;
    const v = this.pic.acknowledge();
    if (v >= 0) this.cpu.raiseIrq(v);
  }

  private count(key: string): void {
    this.exits.byPort.set(key, (this.exits.byPort.get(key) ?? 0) + 1);
  }

  /** Complete one exit. Returns a stop result, or null to keep running. */
  private serve(exit: CpuExit): Omit<RunResult, 'instructions'> | null {
    switch (exit.reason) {
      case 'io': {
        this.exits.io++;
        this.count(`pio:${exit.port.toString(16)}`);
        const local = this.hypervisorPort(exit.port, exit.dir, exit.value, exit.string);
        if (local !== undefined) {
          if (exit.dir === 'in') this.cpu.completeIo(local);
          else this.cpu.completeIo();
          return null;
        }
        const req: IoRequest = exit.string
          ? { space: 'pio', dir: exit.dir === 'in' ? 'read' : 'write', addr: exit.port, size: exit.size as AccessSize, count: exit.count, dataIsPtr: true, df: exit.step < 0, data: exit.addr }
          : { space: 'pio', dir: exit.dir === 'in' ? 'read' : 'write', addr: exit.port, size: exit.size as AccessSize, count: 1, dataIsPtr: false, df: false, data: exit.value };
        const r = this.toQemuDm(req);
        if (exit.string) this.cpu.completeIo(r);
        else if (exit.dir === 'in') this.cpu.completeIo(r);
        else this.cpu.completeIo();
        return null;
      }
      case 'mmio': {
        this.exits.mmio++;
        this.count(`mmio:${(exit.addr & ~0xfff).toString(16)}`);
        const req: IoRequest = { space: 'mmio', dir: exit.dir, addr: exit.addr, size: exit.size as AccessSize, count: 1, dataIsPtr: false, df: false, data: exit.value };
        const r = this.toQemuDm(req);
        if (exit.dir === 'read') this.cpu.completeMmioRead(r);
        return null;
      }
      case 'hlt': {
        this.exits.hlt++;
        if (!(this.cpu.getFlags() & IF)) return { reason: 'halted' };
        // Interrupts are on: wake on a pending interrupt, or let time pass to the next tick.
        if (this.pic.irr[0] & ~this.pic.imr[0] || this.pic.irr[1] & ~this.pic.imr[1]) return null;
        if (this.instructionsPerTick > 0 && this.pit.programmed) {
          this.sinceTick = 0;
          this.pic.pulse(0);
          return null;
        }
        return { reason: 'halted' };
      }
      case 'interrupt-exit':
        return { reason: 'interrupt-exit', vector: exit.vector };
      default:
        return null;
    }
  }

  /** One request to qemu-dm: directly, or through an ioreq slot. Returns the data or count. */
  private toQemuDm(req: IoRequest): number {
    const page = this.ioreqPage;
    if (!page) return this.platform.bus.handle(req, this.dmaMemory);
    writeIoreq(page, 0, req);
    if (!serveIoreqSlot(page, 0, this.platform.bus, this.dmaMemory, this.ioreqCounters)) {
      throw new Error('test-machine: qemu-dm did not answer a READY ioreq');
    }
    const answer = readIoreq(page, 0);
    if (answer.state !== 3) throw new Error(`test-machine: ioreq state ${answer.state} after serving, expected IORESP_READY (3)`);
    page.setUint8(30, page.getUint8(30) & ~0x0f); // the hypervisor consumes it: STATE_IOREQ_NONE
    return req.dataIsPtr ? req.count : answer.data;
  }

  /**
   * Ports the hypervisor emulates itself (PIC 20h/21h/A0h/A1h, PIT 40h-43h, system control 61h)
   * and the diagnostic port 80h. Returns the value read (or 0 for a write), or undefined if the
   * port belongs to qemu-dm.
   */
  private hypervisorPort(port: number, dir: 'in' | 'out', value: number, string: boolean): number | undefined {
    if (string) return undefined;
    if (port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1) {
      if (dir === 'in') return this.pic.in(port);
      this.pic.out(port, value);
      return 0;
    }
    if (port >= 0x40 && port <= 0x43) {
      if (dir === 'in') return this.pit.in(port);
      this.pit.out(port, value);
      return 0;
    }
    if (port === 0x61) return dir === 'in' ? 0x20 : 0;
    if (port === 0x80) {
      if (dir === 'out') {
        this.markers.push({ value: value & 0xff, exits: this.exits.total, ports: Object.fromEntries(this.exits.byPort) });
        return 0;
      }
      return 0xff;
    }
    return undefined;
  }
}
