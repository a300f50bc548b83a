/**
 * The core of the qemu-dm process: the device model of ONE HVM domain, served over the
 * hypervisor's ioreq page (Xen's QEMU in `-M xenfv` mode: hw/xen/xen-hvm-common.c, with the
 * synchronous protocol of hvm/ioreq.h, fact sheet §9.1). `main.ts` parses argv and calls
 * `DeviceModel.start`; tests and benchmarks may call it in their own process too.
 *
 * Start-up, in order (the toolstack has already built the domain, paused, with its RAM, its
 * HVM_PARAM_IOREQ_PFN and HVM_PARAM_DM_DOMAIN = 0):
 *   1. connect to the hypervisor as a dom0 process (not the domain's owner);
 *   2. map the guest's RAM through machine memory (`GuestMemory`) and its ioreq page;
 *   3. copy the virtual BIOS into F0000-FFFFF (the guest starts at F000:FFF0);
 *   4. bind each vCPU's `vp_eport` (the hypervisor wrote it into the vCPU's slot) and claim the
 *      device models' port and MMIO ranges (`dm_op map_io_range_to_ioreq_server`);
 *   5. open COM1's console (a log file plus a unix socket for `xl console`);
 *   6. write `/local/domain/0/device-model/<domid>/state = running` (as QEMU does) — the
 *      toolstack waits for it before unpausing the domain.
 * Then it serves: wake on dom0's doorbell, take only its own ports (`SharedInfoPage.consume`),
 * answer each READY slot (`serveIoreqSlot`: copy once, validate, `IoBus.handle`, IORESP_READY)
 * and ring the answer doorbell named by the port's binding (`notify.doorbell_addr`): the pCPU
 * that took the exit is waiting on it, so no hypercall carries the answer (docs/ioreq-cycle.md). Device interrupts go to the hypervisor's PIC with
 * `dm_op set_isa_irq_level`; an ACPI/APM power-off is `sched_op remote_shutdown(poweroff)`.
 * It stops when the domain is gone (destroyed, or reaped after shutdown) or on `stop()`; its
 * xenstore node goes with it. If the process dies instead, its channel closes and the hypervisor
 * crashes the guest (and only the guest).
 *
 * See ../README.md ("The ioreq cycle") and docs/hvm-disk-request.md.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ConsoleMarks, HVM_PARAM, HypercallClient, IOREQ_DATA_IS_PTR, IOREQ_DIR_BIT, IOREQ_TYPE, SHUTDOWN, XEN_DMOP_IO_RANGE, SharedInfoPage, hostLayout, ioreq, type HostLayout } from '@xenlab/xen-public';
import { Doorbell, SharedMemory } from '@xenlab/ring-buffers';
import { XenstoreClient } from '@xenlab/xenstore-client';
import { BIOS_LOAD_ADDRESS, loadBiosImage } from './bios.ts';
import type { BootDevice } from './devices/cmos-rtc.ts';
import { XENLAB_BIOS_FLAG_DMA } from './devices/cmos-rtc.ts';
import { FileBlockImage } from './devices/memory.ts';
import { PcPlatform } from './devices/pc-platform.ts';
import { GuestMemory } from './guest-memory.ts';
import { serveIoreqSlot, type IoreqCounters } from './ioreq.ts';

/**
 * How long qemu-dm spins for the next ioreq before its futex sleep: longer than a pCPU thread's
 * wake-up on a loaded two-core machine (~40-100 µs), so one late wake-up on either side does not
 * leave both sides sleeping in turn for every request (docs/ioreq-cycle.md, measured).
 */
export const DM_SPIN_US = 200;

/** CMOS 70h bit 1 (README "CMOS map"): PIO with READ/WRITE MULTIPLE. */
const BIOS_FLAG_PIO_MULTIPLE = 0x02;

export interface DeviceModelOptions {
  runDir: string;
  domid: number;
  /** The primary master disk image (ATA, boot = "c"); none: the IDE ports float. */
  disk?: { path: string; readOnly?: boolean };
  /** `pty`: COM1 goes to the console (log + socket); `none`: COM1 output is dropped. */
  serial?: 'pty' | 'none';
  /** xl.cfg `boot` letters: a floppy, c disk, d cdrom, n network. Default "c". */
  boot?: string;
  /** How the BIOS's INT 13h drives the disk (CMOS 70h). Default `pio`. */
  diskMode?: 'pio' | 'pio-multiple' | 'dma';
  log?: (line: string) => void;
  /** Spin this long for the next ioreq before sleeping on the doorbell (0: sleep at once). */
  spinUs?: number;
}

/** A point in the guest's run as qemu-dm saw it: host ms (this process's clock) and the exit counters. */
export interface DeviceModelMark {
  t: number;
  exits: DeviceModel['exits'];
  /** The byte written to port 80h, or the COM1 line just completed. */
  value?: number;
  line?: string;
  servingMs?: number;
  sendMs?: number;
  /** For a COM1 line: when its first byte came (the mark itself is its newline). */
  start?: { t: number; exits: DeviceModel['exits'] };
}
const MAX_MARKS = 256;
/** First byte from a console client asking for the log so far (as the PV console socket). */
const CONSOLE_REPLAY = 0x12;

export interface DeviceModelStats {
  domid: number;
  ioreq: IoreqCounters;
  /** Requests served, by reason: port I/O, `rep ins/outs` (data_is_ptr), MMIO. */
  exits: { pio: number; pioRep: number; mmio: number; total: number };
  ports: ReturnType<PcPlatform['bus']['portStats']>;
  devices: ReturnType<PcPlatform['bus']['deviceStats']>;
  ata: unknown;
  irqRaised: number;
  wakeups: number;
  /** Answers signalled through the answer doorbell (the rest went on the hypercall socket). */
  answersRung: number;
  /** Port-80h writes and COM1 lines, time-stamped (the first 256 of each). */
  marks: DeviceModelMark[];
  lines: DeviceModelMark[];
  /** Host ms qemu-dm spent serving requests (device models, answer, the send on the socket). */
  servingMs: number;
  /** Of which handing the answer's `event_channel_op send` to the hypercall socket. */
  sendMs: number;
}

/** Where one qemu-dm keeps its files inside the host's run directory. */
export function deviceModelPaths(L: HostLayout, domid: number) {
  const dir = join(L.runDir, 'qemu-dm', String(domid));
  return {
    dir,
    pid: join(dir, 'pid'),
    /** COM1 for `xl console`: a unix stream socket carrying raw bytes both ways. */
    serialSocket: join(dir, 'serial'),
    stats: join(dir, 'stats.json'),
    /** COM1's output from the first byte (xenconsoled's guest log). */
    consoleLog: join(L.logDir, `console-d${domid}.log`),
    processLog: join(L.logDir, `qemu-dm-d${domid}.log`),
  };
}

/** One vCPU's ioreq slot and how its answers reach the hypervisor. */
interface Slot {
  vcpu: number;
  /** The doorbell the hypervisor's pCPUs wait on (the binding's doorbell_addr); none: the socket. */
  answerBell: Doorbell | undefined;
}

/** The answer doorbell named by a binding, if it is a valid doorbell address in machine memory. */
function answerDoorbell(buffer: ArrayBuffer, addr: number | undefined): Doorbell | undefined {
  if (!addr) return undefined;
  try {
    return new Doorbell(buffer, addr);
  } catch {
    return undefined; // not 64-byte aligned or outside machine memory: answer on the socket
  }
}

export const dmStatePath = (domid: number) => `/local/domain/0/device-model/${domid}`;

const bootOrder = (letters: string): BootDevice[] =>
  [...letters].map((c) => ({ a: 'floppy', c: 'disk', d: 'cdrom', n: 'network' })[c] as BootDevice).filter((b) => b !== undefined);

export class DeviceModel {
  readonly platform: PcPlatform;
  readonly counters: IoreqCounters = { served: 0, malformed: 0, ignoredTypes: 0 };
  readonly exits = { pio: 0, pioRep: 0, mmio: 0, total: 0 };
  private irqRaised = 0;
  /** `dm_op set_isa_irq_level` calls (raise and lower). */
  private irqCalls = 0;
  /** Host ms spent serving requests: the device model, the answer and handing the send to the socket. */
  private readonly timing = { servingMs: 0, sendMs: 0 };
  private readonly marks: DeviceModelMark[] = [];
  private readonly lines: DeviceModelMark[] = [];
  private lineBuf = '';
  /** The workload's BEGIN/BENCH lines on COM1: mark the domain's counters before answering that ioreq. */
  private readonly consoleMarks = new ConsoleMarks();
  private lineStart: DeviceModelMark['start'];
  private wakeups = 0;
  /** Answers signalled on the answer doorbell (shared memory) rather than the hypercall socket. */
  private answersRung = 0;
  private stopped = false;
  private readonly clients = new Set<Socket>();
  private server: Server | undefined;
  private readonly image: FileBlockImage | undefined;

  private constructor(
    private readonly o: DeviceModelOptions,
    private readonly L: HostLayout,
    private readonly hc: HypercallClient,
    private readonly xs: XenstoreClient,
    private readonly mm: SharedMemory,
    readonly memory: GuestMemory,
    memoryBytes: number,
    private readonly page: DataView,
    /** local port (in dom0) → ioreq slot (vCPU id) and its answer doorbell. */
    private readonly slots: Map<number, Slot>,
  ) {
    const paths = deviceModelPaths(L, o.domid);
    this.image = o.disk ? new FileBlockImage(o.disk.path, o.disk.readOnly === true) : undefined;
    const mode = o.diskMode ?? 'pio';
    this.platform = new PcPlatform({
      image: this.image,
      dma: memory,
      memoryBytes,
      irq: (line, level) => {
        if (level) this.irqRaised++;
        this.irqCalls++;
        // Ordered on the hypercall socket: the level reaches the PIC before our answer to the slot.
        void hc.call('dm_op', 'set_isa_irq_level', { domid: o.domid, isa_irq: line, level: level ? 1 : 0 }).catch(() => {});
      },
      serialSink: o.serial === 'none' ? undefined : (b) => this.serialOut(b, paths.consoleLog),
      debugSink: (line) => this.log(`debug port: ${line}`),
      onPowerOff: () => this.shutdown(SHUTDOWN.poweroff),
      onReset: () => this.shutdown(SHUTDOWN.reboot),
      bootOrder: bootOrder(o.boot ?? 'c'),
      biosFlags: mode === 'dma' ? XENLAB_BIOS_FLAG_DMA : mode === 'pio-multiple' ? BIOS_FLAG_PIO_MULTIPLE : 0,
    });
  }

  static async start(o: DeviceModelOptions): Promise<DeviceModel> {
    const L = hostLayout(o.runDir);
    const log = o.log ?? (() => {});
    const hc = await HypercallClient.connect(L.hypervisorSocket, readFileSync(L.dom0Token, 'utf8').trim());
    let mm: SharedMemory | undefined;
    let xs: XenstoreClient | undefined;
    try {
      const info = await hc.call('domctl', 'getdomaininfo', { domain: o.domid });
      if (info.domain !== o.domid) throw new Error(`qemu-dm: domain ${o.domid} does not exist`);
      mm = SharedMemory.open(hc.info.machine_memory);
      const { gfns, mfns } = await hc.call('domctl', 'getmemlist', { domain: o.domid, max_pfns: 1 << 20 });
      const memory = new GuestMemory(mm.buffer, gfns, mfns);
      // RAM size for CMOS: up to the highest guest frame below the special pages (ioreq, console, store at FEFF0h+).
      const ramTop = gfns.filter((g) => g < 0xfe000).reduce((a, g) => Math.max(a, g + 1), 0);
      const ioreqGfn = (await hc.call('hvm_op', 'get_param', { domid: o.domid, index: HVM_PARAM.IOREQ_PFN })).value;
      const at = gfns.indexOf(ioreqGfn);
      if (!ioreqGfn || at < 0) throw new Error(`qemu-dm: domain ${o.domid} has no ioreq page (HVM_PARAM_IOREQ_PFN)`);
      const page = new DataView(mm.buffer, mfns[at]! * 4096, 4096);
      // The BIOS goes to the top of the first megabyte; the vCPU starts at its reset vector.
      const bios = loadBiosImage();
      if (!memory.write(BIOS_LOAD_ADDRESS, bios)) throw new Error(`qemu-dm: domain ${o.domid} has no RAM at F0000-FFFFF for the BIOS`);
      const slots = new Map<number, Slot>();
      for (let vcpu = 0; vcpu <= info.max_vcpu_id; vcpu++) {
        const vpEport = page.getUint32(vcpu * ioreq.size + ioreq.fields.vp_eport.offset, true);
        const { local_port, notify } = await hc.call('event_channel_op', 'bind_interdomain', { remote_dom: o.domid, remote_port: vpEport });
        slots.set(local_port, { vcpu, answerBell: answerDoorbell(mm.buffer, notify?.doorbell_addr) });
      }
      xs = await XenstoreClient.connect(L.xenstoredSocket);
      const dm = new DeviceModel(o, L, hc, xs, mm, memory, ramTop * 4096, page, slots);
      await dm.claimRanges();
      await dm.openConsole();
      writeFileSync(deviceModelPaths(L, o.domid).pid, `${process.pid}\n`);
      await xs.write(`${dmStatePath(o.domid)}/state`, 'running');
      log(`d${o.domid}: serving ioreqs on ports ${[...slots.keys()].join(',')}, ${ramTop * 4} KiB RAM (${memory.ramFrames * 4} KiB below 1 MiB), disk ${o.disk?.path ?? 'none'}`);
      return dm;
    } catch (e) {
      xs?.close();
      mm?.close();
      hc.close();
      throw e;
    }
  }

  /**
   * Register as the domain's ioreq server for the ports and MMIO ranges the devices occupy (Xen's
   * XEN_DMOP_map_io_range_to_ioreq_server), plus port 80h, the POST-code port whose writes are
   * time-stamped as marks. Anything else the guest touches is answered by the hypervisor (reads
   * all-ones) without a round trip to this process.
   */
  private async claimRanges(): Promise<void> {
    const ranges = [...this.platform.bus.claimedRanges(), { space: 'pio' as const, start: 0x80, end: 0x80, device: 'post-code' }];
    for (const r of ranges) {
      await this.hc.call('dm_op', 'map_io_range_to_ioreq_server', { domid: this.o.domid, id: 0, type: r.space === 'pio' ? XEN_DMOP_IO_RANGE.PORT : XEN_DMOP_IO_RANGE.MEMORY, start: r.start, end: r.end });
    }
    this.log(`d${this.o.domid}: claimed ${ranges.map((r) => `${r.device} ${r.start.toString(16)}-${r.end.toString(16)}`).join(', ')}`);
  }

  private log(line: string): void {
    this.o.log?.(line);
  }

  /** COM1 → the console: a log from the first byte, and every attached client. */
  private async openConsole(): Promise<void> {
    const p = deviceModelPaths(this.L, this.o.domid);
    mkdirSync(p.dir, { recursive: true });
    if (this.o.serial === 'none') return;
    mkdirSync(dirname(p.consoleLog), { recursive: true });
    writeFileSync(p.consoleLog, '');
    rmSync(p.serialSocket, { force: true });
    this.server = createServer((sock) => {
      this.clients.add(sock);
      let first = true;
      sock.on('data', (b: Buffer) => {
        // The PV console's socket protocol (dom0/src/backends/console/manager.ts): a first byte
        // 12h asks for the log so far before live output. Everything else is COM1 input.
        if (first && b[0] === CONSOLE_REPLAY) {
          try {
            sock.write(readFileSync(p.consoleLog));
          } catch {
            // no log yet
          }
          b = b.subarray(1);
        }
        first = false;
        if (b.length) this.platform.com1.receive(b);
      });
      sock.on('close', () => this.clients.delete(sock));
      sock.on('error', () => this.clients.delete(sock));
    });
    await new Promise<void>((res, rej) => {
      this.server!.once('error', rej);
      this.server!.listen(p.serialSocket, () => res());
    });
    // Where `xl console` finds COM1 (libxl reads serial/0/tty for HVM guests; type "ioemu" = served by the DM).
    const dom = `/local/domain/${this.o.domid}`;
    await this.xs.write(`${dom}/serial/0/tty`, p.serialSocket);
    await this.xs.write(`${dom}/console/tty`, p.serialSocket);
    await this.xs.write(`${dom}/console/type`, 'ioemu');
  }

  private pendingOut: number[] = [];
  private serialOut(b: number, logPath: string): void {
    this.consoleMarks.write([b]);
    if (b === 0x0a) {
      if (this.lines.length < MAX_MARKS) this.lines.push({ t: performance.now(), exits: { ...this.exits }, line: this.lineBuf.replace(/\r$/, ''), start: this.lineStart });
      this.lineBuf = '';
      this.lineStart = undefined;
    } else {
      this.lineStart ??= { t: performance.now(), exits: { ...this.exits } };
      if (this.lineBuf.length < 200) this.lineBuf += String.fromCharCode(b);
    }
    this.pendingOut.push(b);
    if (this.pendingOut.length === 1) {
      queueMicrotask(() => {
        const bytes = Buffer.from(this.pendingOut);
        this.pendingOut = [];
        try {
          appendFileSync(logPath, bytes);
        } catch {
          // the console log is best effort; the clients still get the bytes
        }
        for (const c of this.clients) c.write(bytes);
      });
    }
  }

  private shutdown(reason: number): void {
    this.log(`d${this.o.domid}: guest asked for ${reason === SHUTDOWN.poweroff ? 'power-off' : 'reset'}`);
    void this.hc.call('sched_op', 'remote_shutdown', { domain_id: this.o.domid, reason }).catch(() => {});
  }

  private bell: Doorbell | undefined;
  private stopReason = 'stopped';

  /** Serve until the domain is gone or `stop()`; resolves with the reason once cleaned up. */
  async run(): Promise<string> {
    const bell = (this.bell = new Doorbell(this.mm.buffer, this.hc.info.doorbell_addr));
    const si = new SharedInfoPage(this.mm.buffer, this.hc.info.shared_info_frame * 4096);
    const mine = [...this.slots.keys()];
    const spinUs = this.o.spinUs ?? DM_SPIN_US;
    let lastCheck = Date.now();
    try {
      while (!this.stopped) {
        const seen = bell.seq;
        const ports = si.consume(mine);
        if (ports.length) {
          this.wakeups++;
          for (const port of ports) {
            const marking = this.serve(port);
            if (marking) await marking;
          }
          continue;
        }
        // Stay awake a little for the next exit (a BIOS disk read is a burst of them), then sleep.
        if (spinUs > 0 && bell.wait(seen, 0, spinUs) !== seen) continue;
        await bell.waitAsync(seen, 500);
        if (Date.now() - lastCheck > 500) {
          lastCheck = Date.now();
          if (!(await this.domainAlive())) this.stop('domain gone');
        }
      }
    } catch (e) {
      this.stopReason = `error: ${(e as Error).message}`;
    }
    await this.cleanup();
    return this.stopReason;
  }

  /** Ask the serving loop to end (it cleans up and `run()` resolves). */
  stop(why = 'stopped'): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopReason = why;
    this.bell?.ring(); // wake our own loop; dom0's other processes see a spurious wake-up, which is legal
  }

  /** Answers one READY slot; a promise when the answer waits for a counter mark (a BEGIN/BENCH line). */
  private serve(port: number): Promise<void> | void {
    const slot = this.slots.get(port)!;
    const base = slot.vcpu * ioreq.size;
    const bits = this.page.getUint8(base + ioreq.fields.state_bits.offset);
    const type = this.page.getUint8(base + ioreq.fields.type.offset);
    const addr = Number(this.page.getBigUint64(base + ioreq.fields.addr.offset, true));
    const data = Number(this.page.getBigUint64(base + ioreq.fields.data.offset, true) & 0xffffn);
    const t0 = performance.now();
    if (!serveIoreqSlot(this.page, base, this.platform.bus, this.memory, this.counters)) return;
    this.exits.total++;
    if (type === IOREQ_TYPE.COPY) this.exits.mmio++;
    else if (bits & IOREQ_DATA_IS_PTR) this.exits.pioRep++;
    else this.exits.pio++;
    // Port 80h (POST diagnostic, unassigned): a guest's marker, time-stamped for the benchmarks.
    if (type === IOREQ_TYPE.PIO && addr === 0x80 && !(bits & IOREQ_DIR_BIT) && this.marks.length < MAX_MARKS) {
      this.marks.push({ t: performance.now(), value: data & 0xff, exits: { ...this.exits }, servingMs: this.timing.servingMs, sendMs: this.timing.sendMs });
    }
    const labels = this.consoleMarks.take();
    if (labels.length) return this.markThenAnswer(labels, port, slot, t0);
    this.answer(port, slot, t0);
  }

  /**
   * The guest's vCPU is still waiting on this ioreq: snapshot its counters with ours
   * (`domctl xenlab_counters_mark`), then answer, so the mark is exactly at the line's edge.
   */
  private async markThenAnswer(labels: string[], port: number, slot: Slot, t0: number): Promise<void> {
    for (const label of labels) {
      await this.hc.call('domctl', 'xenlab_counters_mark', { domain: this.o.domid, label, extra: this.flatCounters() }).catch((e: Error) => this.log(`counter mark: ${e.message}`));
    }
    this.answer(port, slot, t0);
  }

  /** Our counters, flat, for a counter mark: ioreqs served, requests by kind, devices, the ATA disk. */
  flatCounters(): Record<string, number> {
    const c: Record<string, number> = { 'ioreq.served': this.counters.served, 'dm.pio': this.exits.pio, 'dm.pioRep': this.exits.pioRep, 'dm.mmio': this.exits.mmio, 'dm.total': this.exits.total, 'dm.irqRaised': this.irqRaised, 'dm.irqCalls': this.irqCalls };
    for (const [dev, st] of Object.entries(this.platform.bus.deviceStats())) {
      for (const [k, v] of Object.entries(st)) if (typeof v === 'number') c[`dev.${dev}.${k}`] = v;
    }
    for (const [k, v] of Object.entries(this.platform.ata?.counters ?? {})) if (typeof v === 'number') c[`ata.${k}`] = v;
    return c;
  }

  private answer(port: number, slot: Slot, t0: number): void {
    // The answer: IORESP_READY is already in the slot (serveIoreqSlot); ring the doorbell the
    // hypervisor's pCPUs wait on. Only without one (an older binding) does it go on the socket.
    const tSend = performance.now();
    if (slot.answerBell) {
      slot.answerBell.ring();
      this.answersRung++;
    } else void this.hc.call('event_channel_op', 'send', { port }).catch(() => {});
    const t1 = performance.now();
    this.timing.servingMs += t1 - t0;
    this.timing.sendMs += t1 - tSend;
  }

  private async domainAlive(): Promise<boolean> {
    try {
      const info = await this.hc.call('domctl', 'getdomaininfo', { domain: this.o.domid });
      return info.domain === this.o.domid;
    } catch {
      return false;
    }
  }

  stats(): DeviceModelStats {
    return {
      domid: this.o.domid,
      ioreq: { ...this.counters },
      exits: { ...this.exits },
      ports: this.platform.bus.portStats(),
      devices: this.platform.bus.deviceStats(),
      ata: this.platform.ata ? { ...this.platform.ata.counters } : null,
      irqRaised: this.irqRaised,
      wakeups: this.wakeups,
      answersRung: this.answersRung,
      marks: this.marks,
      lines: this.lines,
      servingMs: this.timing.servingMs,
      sendMs: this.timing.sendMs,
    };
  }

  /** Writes `stats()` to `<run>/qemu-dm/<domid>/stats.json` (the benchmark reads it). */
  writeStats(): void {
    try {
      writeFileSync(deviceModelPaths(this.L, this.o.domid).stats, JSON.stringify(this.stats()));
    } catch {
      // the run directory may already be gone
    }
  }

  /** Remove our xenstore node, socket and pid file, and disconnect (after the loop ended). */
  private async cleanup(): Promise<void> {
    this.log(`d${this.o.domid}: stopping (${this.stopReason}); ${this.counters.served} ioreqs served`);
    this.writeStats();
    for (const c of this.clients) c.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    const p = deviceModelPaths(this.L, this.o.domid);
    await this.xs.rm(dmStatePath(this.o.domid)).catch(() => {});
    this.xs.close();
    rmSync(p.pid, { force: true });
    rmSync(p.serialSocket, { force: true });
    this.image?.close();
    this.hc.close();
    this.mm.close();
  }
}
