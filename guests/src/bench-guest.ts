/**
 * The in-process guest harness behind the PV vs HVM benchmark (tools/src/bench/pv-vs-hvm): runs
 * one workload image (guests/workloads/) as a PV guest or as an HVM guest, times the phase the
 * workload marks with its `BEGIN` and `BENCH` lines, and reports the counters that changed in
 * that phase. One JSON job per line on stdin, one JSON result per line on stdout
 * (tools/src/bench/pv-vs-hvm/protocol.ts), so the runner can keep one warm process per path.
 *
 *   PV:  the x86 CPU runs the guest; its BIOS interrupts trap to the shim's BIOS services; INT 13h
 *        goes through blkfront, a blkif ring of 1-8 pages in a MAP_SHARED file, dom0's blkback
 *        (through its own mapping of that file) and a disk image file; INT 10h through the
 *        shim's console front and dom0's console backend. As in pv-guest-harness.ts, the
 *        hypervisor is a TEST DOUBLE: grant copies and maps go through dom0's in-memory grant
 *        table, event channels are queued microtasks (counted as sends), and the vbd is
 *        connected directly instead of through a xenbus handshake.
 *   HVM: qemu-dm's TestMachine: the virtual BIOS boots the disk's boot sector; every port and MMIO
 *        exit is completed by qemu-dm's device models, through a real ioreq_t slot when asked;
 *        PIC/PIT are the hypervisor stand-ins. The BIOS timer tick follows the host clock, as
 *        the shim's INT 1Ah does, so both paths' `ticks=` are wall-clock ticks.
 *
 * It lives in guests/ (outside the nx projects) because it wires cores of several processes and
 * the CPU together, which no project may import all of (npm run check:boundaries).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Cpu } from '@xenlab/x86-cpu';
import { BackRing, BLKIF_ENTRY_BYTES, FrontRing, SharedMemory } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame } from '@xenlab/xen-public';
import { BlkbackDevice, DiskImage } from '../../dom0/src/backends/blkback/index.ts';
import type { GrantCopyInterface, GrantCopyOp, GrantMapInterface, GrantMapOp } from '../../dom0/src/backends/blkback/grant-copy.ts';
import { InMemoryGrantCopy, InMemoryGrantMap, type GrantingDomain } from '../../dom0/src/backends/blkback/testing/in-memory-grant-table.ts';
import { Blkfront } from '../../domU-pv-kernel-shim/src/blkfront/blkfront.ts';
import { GuestGrantTable } from '../../domU-pv-kernel-shim/src/grant-table.ts';
import { Int13Service } from '../../domU-pv-kernel-shim/src/bios/int13.ts';
import { KeyboardService } from '../../domU-pv-kernel-shim/src/bios/keyboard.ts';
import { BiosServices } from '../../domU-pv-kernel-shim/src/bios/services.ts';
import { DEFAULT_EQUIPMENT, SystemService } from '../../domU-pv-kernel-shim/src/bios/system.ts';
import { TimeService, TICK_HZ } from '../../domU-pv-kernel-shim/src/bios/time.ts';
import { VideoService } from '../../domU-pv-kernel-shim/src/bios/video.ts';
import { initBiosDataArea, loadBootSector, setBootRegisters } from '../../domU-pv-kernel-shim/src/bios/boot.ts';
import { ConsoleFront } from '../../domU-pv-kernel-shim/src/console/console-front.ts';
import { ConsoleBackend } from '../../dom0/src/backends/console/index.ts';
import { FileBlockImage } from '../../qemu-dm/src/devices/memory.ts';
import { TestMachine } from '../../qemu-dm/src/testing/test-machine.ts';
import type { Counters, GuestJob, GuestRunResult } from '../../tools/src/bench/pv-vs-hvm/protocol.ts';

const GUEST = DomId(5);
const DOM0 = DomId(0);
const PAGE = 4096;
/** Guest RAM the CPU addresses (1 MiB); the ring pages sit above it, in guest frames 256-263. */
const RAM_PAGES = 256;
const MAX_RING_PAGES = 8;
const GUEST_KIB = 576;
const BOUNCE_GFNS = Array.from({ length: 11 }, (_, i) => 0x90 + i);
const CONSOLE_GFN = 0x9e;
const RING_GFN = RAM_PAGES;

/** A point in the run: host time, guest instructions, and every counter. */
interface Mark {
  ms: number;
  /** This process's CPU time (user + system), ms. */
  cpuMs: number;
  instructions: number;
  counters: Counters;
}

/**
 * Watches the guest's console output byte by byte and keeps the mark taken at the start of the
 * current line, so a `BENCH` line's phase ends where the line starts (printing the result is
 * not part of the measured work).
 */
class LineClock {
  begin: Mark | null = null;
  end: Mark | null = null;
  bench: Record<string, string> | null = null;
  /** The last lines printed (for error messages), kept cheaply: the console workload prints a lot. */
  private lastLines: string[] = [];
  private line = '';
  private lineStart: Mark | null = null;

  constructor(private readonly mark: () => Mark) {}

  byte(b: number): void {
    if (this.line.length === 0 && this.lineStart === null) this.lineStart = this.mark();
    const c = String.fromCharCode(b);
    if (c === '\n') {
      this.lastLines.push(this.line);
      if (this.lastLines.length > 40) this.lastLines.splice(0, this.lastLines.length - 20);
      const text = this.line.replace(/\r$/, '');
      if (text.startsWith('BEGIN ') && !this.begin) this.begin = this.mark();
      else if (text.startsWith('BENCH ') && !this.bench) {
        this.end = this.lineStart;
        this.bench = parseFields(text);
      }
      this.line = '';
      this.lineStart = null;
    } else if (this.line.length < 400) this.line += c;
  }

  get tail(): string {
    return [...this.lastLines, this.line].join('\n').slice(-2000);
  }
}

/** `BENCH name=x key=v ...` → { name: 'x', key: 'v' }. */
export function parseFields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.trim().split(/\s+/).slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function flatten(prefix: string, obj: object, into: Counters): void {
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'number') into[`${prefix}.${k}`] = v;
  }
}

function delta(a: Counters, b: Counters): Counters {
  const out: Counters = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

function finish(job: GuestJob, start: number, startCpu: number, clock: LineClock, outcome: GuestRunResult['outcome'], totalInstructions: number, last: Mark): GuestRunResult {
  const from = clock.bench?.name === 'boot' ? { ms: start, cpuMs: startCpu, instructions: 0, counters: {} } : clock.begin;
  const to = clock.end;
  let error: string | undefined;
  if (outcome !== 'poweroff') error = `the guest did not power off (${outcome})`;
  else if (!clock.bench) error = 'the guest printed no BENCH line';
  else if (clock.bench.error) error = `the guest reported INT 13h error ${clock.bench.error}h`;
  else if (!from || !to) error = 'the guest printed no BEGIN line before its BENCH line';
  return {
    id: job.id,
    path: job.path,
    ok: error === undefined,
    error,
    outcome,
    bench: clock.bench,
    phaseMs: from && to ? to.ms - from.ms : NaN,
    phaseCpuMs: from && to ? to.cpuMs - from.cpuMs : NaN,
    phaseInstructions: from && to ? to.instructions - from.instructions : 0,
    counters: from && to ? delta(from.counters, to.counters) : {},
    totalMs: last.ms - start,
    totalInstructions,
    consoleTail: clock.tail,
  };
}

/** GNTTABOP_copy double with call/op/byte counts. */
class CountingGrantCopy implements GrantCopyInterface {
  readonly counters = { calls: 0, ops: 0, bytes: 0 };
  constructor(private readonly inner: InMemoryGrantCopy) {}
  scratch(pages: number): Uint8Array {
    return this.inner.scratch(pages);
  }
  copy(ops: readonly GrantCopyOp[]): readonly number[] {
    this.counters.calls++;
    this.counters.ops += ops.length;
    for (const op of ops) this.counters.bytes += op.len;
    const r = this.inner.copy(ops);
    this.inner.log.length = 0;
    return r;
  }
}

/** GNTTABOP_map_grant_ref / unmap double with call and op counts. */
class CountingGrantMap implements GrantMapInterface {
  readonly counters = { mapCalls: 0, maps: 0, unmapCalls: 0, unmaps: 0 };
  constructor(private readonly inner: InMemoryGrantMap) {}
  map(ops: readonly GrantMapOp[]) {
    this.counters.mapCalls++;
    this.counters.maps += ops.length;
    return this.inner.map(ops);
  }
  unmap(handles: readonly number[]) {
    this.counters.unmapCalls++;
    this.counters.unmaps += handles.length;
    return this.inner.unmap(handles);
  }
}

export async function runPv(job: GuestJob): Promise<GuestRunResult> {
  const start = performance.now();
  const startCpu = cpuMs();
  const s = job.settings;
  if (!(Number.isInteger(s.ringPages) && s.ringPages >= 1 && s.ringPages <= MAX_RING_PAGES && (s.ringPages & (s.ringPages - 1)) === 0)) {
    throw new Error(`ring pages must be 1, 2, 4 or 8 (got ${s.ringPages})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-pv-'));
  const memFile = join(dir, 'machine-memory');
  const shm = SharedMemory.create(memFile, (1 + RAM_PAGES + MAX_RING_PAGES) * PAGE);
  const maps: SharedMemory[] = [];
  const disk = DiskImage.open(job.disk);
  try {
    const pages = Array.from({ length: RAM_PAGES + MAX_RING_PAGES }, (_, gfn) => new Uint8Array(shm.buffer, (1 + gfn) * PAGE, PAGE));
    const grantFrame = new GrantFrame(shm.buffer, 0);
    const gnttab = new GuestGrantTable([grantFrame]);

    // dom0's side: its own mapping of machine memory, the hypervisor's grant operations (double).
    const dom0View = SharedMemory.open(memFile);
    maps.push(dom0View);
    const domains = new Map<number, GrantingDomain>([[GUEST, {
      domid: GUEST,
      frames: [new GrantFrame(dom0View.buffer, 0)],
      page: (gfn: number) => (Number.isInteger(gfn) && gfn >= 0 && gfn < RAM_PAGES + MAX_RING_PAGES ? new Uint8Array(dom0View.buffer, (1 + gfn) * PAGE, PAGE) : undefined),
    }]]);
    const grantCopy = new CountingGrantCopy(new InMemoryGrantCopy(DOM0, domains));
    const grantMap = s.grantMode === 'map' ? new CountingGrantMap(new InMemoryGrantMap(DOM0, domains)) : undefined;
    const evtchn = { frontToBack: 0, backToFront: 0, consoleSends: 0 };

    // The vbd, connected as the xenbus handshake would leave it (ring granted, event channel bound).
    const ringBytes = s.ringPages * PAGE;
    const frontRing = FrontRing.init(shm.buffer, (1 + RING_GFN) * PAGE, ringBytes, BLKIF_ENTRY_BYTES);
    for (let i = 0; i < s.ringPages; i++) gnttab.grantAccess(DOM0, Gfn(RING_GFN + i), false);
    const backRing = BackRing.attach(dom0View.buffer, (1 + RING_GFN) * PAGE, ringBytes, BLKIF_ENTRY_BYTES);
    if (!s.notifyHoldoff) {
      // Without hold-off every publish notifies, whatever req_event/rsp_event say.
      const pushReq = frontRing.pushRequests.bind(frontRing);
      frontRing.pushRequests = () => (pushReq(), true);
      const pushRsp = backRing.pushResponses.bind(backRing);
      backRing.pushResponses = () => (pushRsp(), true);
    }
    let front: Blkfront | undefined;
    const back = new BlkbackDevice({
      ring: backRing,
      frontendDomid: GUEST,
      disk,
      grants: grantCopy,
      grantMap,
      notify: () => {
        evtchn.backToFront++;
        queueMicrotask(() => front?.handleResponses());
      },
    });
    front = new Blkfront({
      ring: frontRing,
      backendDomid: DOM0,
      grants: gnttab,
      notify: () => {
        evtchn.frontToBack++;
        queueMicrotask(() => void back.kick());
      },
      info: { sectors: disk.sectors, sectorSize: 512, readOnly: false, cdrom: false, removable: false, flush: true, discard: false },
      handle: 51712,
    });

    // The console: the shim's front over a guest page, dom0's backend logging to a file.
    const consoleMap = SharedMemory.open(memFile, { offset: (1 + CONSOLE_GFN) * PAGE, length: PAGE });
    maps.push(consoleMap);
    let consoleFront: ConsoleFront | undefined;
    const consoleBack = new ConsoleBackend({
      buffer: consoleMap.buffer, offset: 0, domid: GUEST, logPath: join(dir, 'guest-5.log'),
      notify: () => queueMicrotask(() => consoleFront?.kick()),
    });
    const keyboard = new KeyboardService();
    consoleFront = new ConsoleFront(shm.buffer, (1 + CONSOLE_GFN) * PAGE, () => {
      evtchn.consoleSends++;
      queueMicrotask(() => consoleBack.kick());
    }, (b) => keyboard.feed(b));

    let instructions = 0;
    const mem = { pages };
    const int13 = new Int13Service(mem, { writeThrough: s.pvWriteThrough, drives: [{ drive: 0x80, front }], bounce: BOUNCE_GFNS.map((g) => ({ gfn: Gfn(g), bytes: pages[g]! })) });
    let bios: BiosServices | undefined;
    const mark = (): Mark => {
      const c: Counters = {};
      flatten('trap', bios?.counters ?? {}, c);
      flatten('int13', int13.counters, c);
      flatten('blkfront', front!.counters, c);
      flatten('blkback', back.counters, c);
      flatten('grant', gnttab.counters, c);
      flatten('gntcopy', grantCopy.counters, c);
      if (grantMap) flatten('gntmap', grantMap.counters, c);
      flatten('evtchn', evtchn, c);
      flatten('console', consoleFront!.counters, c);
      return { ms: performance.now(), cpuMs: cpuMs(), instructions, counters: c };
    };
    const clock = new LineClock(mark);
    const sink = {
      write: (b: Uint8Array) => {
        for (const x of b) clock.byte(x);
        consoleFront!.write(b);
      },
    };
    bios = new BiosServices({
      video: new VideoService(sink, mem),
      disk: int13,
      keyboard,
      time: new TimeService({ now: () => Date.now() }, mem),
      system: new SystemService({ memoryKib: GUEST_KIB }),
    });
    initBiosDataArea(mem, { memoryKib: GUEST_KIB, equipment: DEFAULT_EQUIPMENT, hardDisks: 1 });
    await loadBootSector(int13, front, mem);

    const cpu = new Cpu({ model: '80186', memory: { pages: pages.slice(0, RAM_PAGES) } });
    for (const v of bios.vectors) cpu.setInterruptExit(v, true);
    setBootRegisters(cpu);
    let outcome: GuestRunResult['outcome'] = 'budget';
    while (instructions < job.maxInstructions) {
      const exit = cpu.run(Math.min(1_000_000, job.maxInstructions - instructions));
      instructions += exit.executed;
      if (exit.reason === 'interrupt-exit') {
        const r = await bios.serve(exit.vector, cpu);
        if (r === 'poweroff') {
          outcome = 'poweroff';
          break;
        }
        if (r === 'unhandled') throw new Error(`the guest trapped vector ${exit.vector.toString(16)}h, which the shim does not serve`);
      } else if (exit.reason === 'hlt') {
        outcome = 'halted';
        break;
      } else if (exit.reason !== 'budget') {
        throw new Error(`unexpected CPU exit ${exit.reason}`);
      }
    }
    const last = mark();
    for (let i = 0; i < 1000 && consoleFront.backlog > 0; i++) {
      consoleBack.kick();
      consoleFront.kick();
    }
    consoleBack.close();
    return finish(job, start, startCpu, clock, outcome, instructions, last);
  } finally {
    disk.close();
    for (const m of maps) m.close();
    shm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Ports the hypervisor itself serves (PIC, PIT, 61h) and the diagnostic port: not ioreqs. */
const HYPERVISOR_PORTS = new Set(['pio:20', 'pio:21', 'pio:a0', 'pio:a1', 'pio:40', 'pio:41', 'pio:42', 'pio:43', 'pio:61', 'pio:80']);

export function runHvm(job: GuestJob): GuestRunResult {
  const start = performance.now();
  const startCpu = cpuMs();
  const s = job.settings;
  const disk = new FileBlockImage(job.disk);
  try {
    const m = new TestMachine({ disk, dma: s.hvmDiskMode === 'dma', pioMultiple: s.hvmDiskMode === 'pio-multiple', ioreqPage: s.ioreqPage });
    const mark = (): Mark => {
      const c: Counters = {};
      c['exits.total'] = m.exits.total;
      c['exits.io'] = m.exits.io;
      c['exits.mmio'] = m.exits.mmio;
      c['exits.hlt'] = m.exits.hlt;
      let local = 0;
      for (const [k, v] of m.exits.byPort) {
        c[`exit.${k}`] = v;
        if (HYPERVISOR_PORTS.has(k)) local += v;
      }
      c['exits.hypervisor'] = local;
      c['exits.ioreq'] = m.exits.io + m.exits.mmio - local;
      for (const [dev, st] of Object.entries(m.platform.bus.deviceStats())) flatten(`dev.${dev}`, st, c);
      if (m.platform.ata) flatten('ata', m.platform.ata.counters, c);
      c['ioreq.served'] = m.ioreqCounters.served;
      return { ms: performance.now(), cpuMs: cpuMs(), instructions: m.instructions, counters: c };
    };
    const clock = new LineClock(mark);
    const tickMs = 1000 / TICK_HZ;
    let nextTick = performance.now() + tickMs;
    let seen = 0;
    let outcome: GuestRunResult['outcome'] = 'budget';
    const r = m.run(job.maxInstructions, (t) => {
      while (seen < t.serial.length) clock.byte(t.serial.charCodeAt(seen++));
      // The BIOS timer tick follows the host clock (18.2 Hz), like the shim's INT 1Ah.
      const now = performance.now();
      if (now >= nextTick) {
        if (t.pit.programmed) t.pic.pulse(0);
        nextTick = Math.max(nextTick + tickMs, now);
      }
      return false;
    });
    while (seen < m.serial.length) clock.byte(m.serial.charCodeAt(seen++));
    if (r.reason === 'poweroff') outcome = 'poweroff';
    else if (r.reason === 'halted') outcome = 'halted';
    else if (r.reason !== 'budget') outcome = 'error';
    return finish(job, start, startCpu, clock, outcome, m.instructions, mark());
  } finally {
    disk.close();
  }
}

export async function runJob(job: GuestJob): Promise<GuestRunResult> {
  try {
    return job.path === 'pv' ? await runPv(job) : runHvm(job);
  } catch (e) {
    return {
      id: job.id, path: job.path, ok: false, error: (e as Error).message ?? String(e), outcome: 'error', bench: null,
      phaseMs: NaN, phaseCpuMs: NaN, phaseInstructions: 0, counters: {}, totalMs: 0, totalInstructions: 0, consoleTail: '',
    };
  }
}

async function main(): Promise<void> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const job = JSON.parse(line) as GuestJob;
    const result = await runJob(job);
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
