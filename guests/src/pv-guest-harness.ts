/**
 * A one-process PV guest harness for component tests: the x86 CPU runs a guest program, its
 * trapped BIOS interrupts are served by the shim's BIOS layer, INT 13h goes through blkfront, a
 * real shared ring page, and dom0's blkback to a disk image file — the path of ARCHITECTURE.md's
 * "A PV disk read, end to end", minus the processes.
 *
 * What is real: guest memory, the grant frame and the ring page live in one MAP_SHARED file
 * (`SharedMemory`), and blkback reaches the ring through its own second mapping of that file;
 * the guest's grant entries are written by the shim's GuestGrantTable; both xenbus halves run
 * their handshake through their xenbus drivers over an in-memory key-value map; INT 10h output goes through the shim's
 * console front and a `xencons_interface` page to dom0's console backend, which logs it to a file.
 *
 * What is a TEST DOUBLE, not the product: the hypervisor. Grant copies go through
 * `InMemoryGrantCopy` (dom0/src/backends/blkback/testing), which checks v1 entries the way
 * GNTTABOP_copy does, and event channels are queued microtasks. The xenstore map has no
 * permissions or watches; actions are delivered to the other half directly.
 *
 * It lives outside the nx projects because it wires two processes' cores (shim and dom0) and the
 * CPU together, which no project may import all of (npm run check:boundaries).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cpu } from '@xenlab/x86-cpu';
import { BackRing, BLKIF_ENTRY_BYTES, FrontRing, SharedMemory } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame, XenbusState } from '@xenlab/xen-public';
import { BackendXenbusDriver, BlkbackDevice, connectKeys, createBackendMachine, DiskImage, featureKeys } from '../../dom0/src/backends/blkback/index.ts';
import { InMemoryGrantCopy } from '../../dom0/src/backends/blkback/testing/in-memory-grant-table.ts';
import { Blkfront, type BlkDiskInfo } from '../../domU-pv-kernel-shim/src/blkfront/blkfront.ts';
import { createFrontendMachine } from '../../domU-pv-kernel-shim/src/blkfront/xenbus-frontend.ts';
import { FrontendXenbusDriver } from '../../domU-pv-kernel-shim/src/blkfront/xenbus-driver.ts';
import { GuestGrantTable } from '../../domU-pv-kernel-shim/src/grant-table.ts';
import { Int13Service } from '../../domU-pv-kernel-shim/src/bios/int13.ts';
import { KeyboardService } from '../../domU-pv-kernel-shim/src/bios/keyboard.ts';
import { BiosServices } from '../../domU-pv-kernel-shim/src/bios/services.ts';
import { SystemService } from '../../domU-pv-kernel-shim/src/bios/system.ts';
import { TimeService } from '../../domU-pv-kernel-shim/src/bios/time.ts';
import { VideoService } from '../../domU-pv-kernel-shim/src/bios/video.ts';
import { initBiosDataArea, loadBootSector, loadFlatKernel, setBootRegisters } from '../../domU-pv-kernel-shim/src/bios/boot.ts';
import { DEFAULT_EQUIPMENT } from '../../domU-pv-kernel-shim/src/bios/system.ts';
import { ConsoleFront } from '../../domU-pv-kernel-shim/src/console/console-front.ts';
import { ConsoleBackend } from '../../dom0/src/backends/console/index.ts';

export const GUEST = DomId(5);
export const DOM0 = DomId(0);
const PAGE = 4096;
/** File layout: page 0 = the guest's grant frame; page 1 + gfn = guest frame gfn (1 MiB of RAM). */
const RAM_PAGES = 256;
/** The guest program may use memory below this (INT 12h); the shim keeps the rest. */
export const GUEST_KIB = 576;
const BOUNCE_GFNS = Array.from({ length: 11 }, (_, i) => 0x90 + i);
const RING_GFN = 0x9f;
const CONSOLE_GFN = 0x9e;
const EVTCHN = 3;

export interface GuestRun {
  /** What the guest wrote through INT 10h. */
  console: string;
  /** The console backend's log file for the domain, as it was when the guest stopped. */
  consoleLog: string;
  consoleLogPath: string;
  outcome: 'poweroff' | 'hlt' | 'budget';
  instructions: number;
  traps: Record<string, number>;
  blkfront: Blkfront['counters'] | undefined;
  blkback: BlkbackDevice['counters'] | undefined;
  grants: GuestGrantTable['counters'];
  handshake: string[];
}

export interface RunOptions {
  image: Uint8Array;
  /** 'kernel': loaded whole at 0000:7C00 (xl.cfg `kernel =`); 'disk': boot sector read from the disk, like pvgrub. */
  boot: 'kernel' | 'disk';
  /** Disk image file; none = a guest without a vbd. */
  disk?: string;
  maxInstructions?: number;
  /** Typed on the domain's console (dom0's console backend delivers it to the guest). */
  input?: string;
}

export async function runPvGuest(o: RunOptions): Promise<GuestRun> {
  const dir = mkdtempSync(join(tmpdir(), 'pv-guest-'));
  const memFile = join(dir, 'machine-memory');
  const shm = SharedMemory.create(memFile, (1 + RAM_PAGES) * PAGE);
  const backendMaps: SharedMemory[] = [];
  try {
    const pages = Array.from({ length: RAM_PAGES }, (_, gfn) => new Uint8Array(shm.buffer, (1 + gfn) * PAGE, PAGE));
    const grantFrame = new GrantFrame(shm.buffer, 0);
    const gnttab = new GuestGrantTable([grantFrame]);
    const handshake: string[] = [];

    // ---- dom0 side: its own mapping of machine memory, the grant-copy double, blkback.
    const dom0View = SharedMemory.open(memFile);
    backendMaps.push(dom0View);
    const grantCopy = new InMemoryGrantCopy(DOM0, new Map([[GUEST, {
      domid: GUEST,
      frames: [new GrantFrame(dom0View.buffer, 0)],
      page: (gfn: number) => (Number.isInteger(gfn) && gfn >= 0 && gfn < RAM_PAGES ? new Uint8Array(dom0View.buffer, (1 + gfn) * PAGE, PAGE) : undefined),
    }]]));

    const store = new Map<string, string>();
    const fe = '/local/domain/5/device/vbd/51712';
    const be = '/local/domain/0/backend/vbd/5/51712';
    let front: Blkfront | undefined;
    let back: BlkbackDevice | undefined;
    let frontRing: FrontRing | undefined;
    let markConnected: (() => void) | undefined;
    const connected = new Promise<void>((r) => (markConnected = r));

    if (o.disk) {
      const disk = DiskImage.open(o.disk);
      // xenstore stand-in: a map; a write fires the watches each half would have set
      // (backend: the frontend's state and its own online node; frontend: the backend's state).
      let backDriver: BackendXenbusDriver | undefined;
      let frontDriver: FrontendXenbusDriver | undefined;
      const xs = {
        tryRead: async (p: string) => store.get(p),
        write: async (p: string, v: string) => {
          store.set(p, v);
          handshake.push(`${p.startsWith(be) ? 'back' : 'front'} ${p.slice(p.lastIndexOf('/') + 1)}=${v}`);
          if (p === `${fe}/state` || p === `${be}/online`) void backDriver?.changed();
          if (p === `${be}/state`) void frontDriver?.changed();
        },
      };
      backDriver = new BackendXenbusDriver({
        store: xs,
        backendPath: be,
        frontendPath: fe,
        machine: createBackendMachine(featureKeys(), connectKeys({ sizeBytes: disk.sizeBytes, readOnly: false })),
        connect: async (ring) => {
          // Map the ring: the grant entry names the guest frame; dom0 maps that frame of machine memory.
          const entry = grantFrame.frame(ring.ringRef);
          const ringMap = SharedMemory.open(memFile, { offset: (1 + entry) * PAGE, length: PAGE });
          backendMaps.push(ringMap);
          back = new BlkbackDevice({
            ring: BackRing.attach(ringMap.buffer, 0, PAGE, BLKIF_ENTRY_BYTES),
            frontendDomid: GUEST,
            disk,
            grants: grantCopy,
            notify: () => queueMicrotask(() => front?.handleResponses()),
          });
        },
        disconnect: async () => {},
        remove: async () => disk.close(),
        log: (l) => handshake.push(`back log ${l}`),
      });
      frontDriver = new FrontendXenbusDriver({
        store: xs,
        frontendPath: fe,
        machine: createFrontendMachine(),
        setupRing: async () => {
          frontRing = FrontRing.init(shm.buffer, (1 + RING_GFN) * PAGE, PAGE, BLKIF_ENTRY_BYTES);
          return { ringRef: gnttab.grantAccess(DOM0, Gfn(RING_GFN), false)!, eventChannel: EVTCHN };
        },
        connected: (info: BlkDiskInfo) => {
          front = new Blkfront({
            ring: frontRing!,
            backendDomid: DOM0,
            grants: gnttab,
            notify: () => queueMicrotask(() => void back?.kick()),
            info,
            handle: 51712,
          });
          markConnected!();
        },
        teardown: async () => front?.failAll(),
        log: (l) => handshake.push(`front log ${l}`),
      });
      // The toolstack created and linked both directories in Initialising; dom0 probes, the shim starts.
      store.set(`${be}/state`, String(XenbusState.Initialising));
      store.set(`${be}/online`, '1');
      store.set(`${fe}/state`, String(XenbusState.Initialising));
      store.set(`${fe}/backend`, be);
      await frontDriver.start();
      await backDriver.probe();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        connected,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`vbd handshake did not complete: ${handshake.join('; ')}`)), 5000))),
      ]).finally(() => clearTimeout(timer));
    }

    // ---- the console: the shim's front over a page of guest memory, dom0's backend logging it.
    const consoleLogPath = join(dir, 'guest-5.log');
    const consoleMap = SharedMemory.open(memFile, { offset: (1 + CONSOLE_GFN) * PAGE, length: PAGE });
    backendMaps.push(consoleMap);
    let consoleFront: ConsoleFront | undefined;
    const consoleBack = new ConsoleBackend({
      buffer: consoleMap.buffer, offset: 0, domid: GUEST, logPath: consoleLogPath,
      notify: () => queueMicrotask(() => consoleFront?.kick()),
    });
    const keyboard = new KeyboardService();
    consoleFront = new ConsoleFront(shm.buffer, (1 + CONSOLE_GFN) * PAGE, () => queueMicrotask(() => consoleBack.kick()), (b) => keyboard.feed(b));
    if (o.input) consoleBack.input(Buffer.from(o.input, 'latin1'));

    // ---- the guest: BIOS services over the frontends, the CPU.
    let text = '';
    const sink = {
      write: (b: Uint8Array) => {
        text += Buffer.from(b).toString('latin1');
        consoleFront!.write(b);
      },
    };
    const mem = { pages };
    const bios = new BiosServices({
      video: new VideoService(sink, mem),
      disk: new Int13Service(mem, {
        drives: front ? [{ drive: 0x80, front }] : [],
        bounce: BOUNCE_GFNS.map((g) => ({ gfn: Gfn(g), bytes: pages[g]! })),
      }),
      keyboard,
      time: new TimeService({ now: () => 0 }, mem),
      system: new SystemService({ memoryKib: GUEST_KIB }),
    });

    initBiosDataArea(mem, { memoryKib: GUEST_KIB, equipment: DEFAULT_EQUIPMENT, hardDisks: front ? 1 : 0 });
    if (o.boot === 'kernel') loadFlatKernel(mem, o.image, GUEST_KIB);
    else {
      if (!front) throw new Error('booting from disk needs a disk');
      await loadBootSector(bios.parts.disk, front, mem);
    }

    const cpu = new Cpu({ model: '80186', memory: mem });
    for (const v of bios.vectors) cpu.setInterruptExit(v, true);
    setBootRegisters(cpu);
    let instructions = 0;
    const max = o.maxInstructions ?? 20_000_000;
    let outcome: GuestRun['outcome'] = 'budget';
    while (instructions < max) {
      const exit = cpu.run(Math.min(1_000_000, max - instructions));
      instructions += exit.executed;
      if (exit.reason === 'interrupt-exit') {
        const r = await bios.serve(exit.vector, cpu);
        if (r === 'poweroff') {
          outcome = 'poweroff';
          break;
        }
        if (r === 'unhandled') throw new Error(`guest trapped vector ${exit.vector.toString(16)}h, which the shim does not serve`);
      } else if (exit.reason === 'hlt') {
        outcome = 'hlt';
        break;
      } else if (exit.reason !== 'budget') {
        throw new Error(`unexpected exit ${exit.reason}`);
      }
    }
    // Let the console's queued kicks land (each round moves up to one ring's worth), then read the log.
    await Promise.resolve();
    for (let i = 0; i < 1000 && consoleFront.backlog > 0; i++) {
      consoleBack.kick();
      consoleFront.kick();
    }
    consoleBack.kick();
    consoleBack.close();
    return {
      console: text,
      consoleLog: readFileSync(consoleLogPath, 'latin1'),
      consoleLogPath,
      outcome,
      instructions,
      traps: bios.counters,
      blkfront: front?.counters,
      blkback: back?.counters,
      grants: gnttab.counters,
      handshake,
    };
  } finally {
    for (const m of backendMaps) m.close();
    shm.close();
  }
}

/** diskex's checksum: sum = rol(sum, 1) + word, over little-endian 16-bit words. */
export function diskexSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) s = ((((s << 1) | (s >>> 15)) & 0xffff) + (bytes[i]! | (bytes[i + 1]! << 8))) & 0xffff;
  return s;
}

/** diskex's write pattern for `sectors` sectors from `seed`. */
export function diskexPattern(sectors: number, seed: number): Uint8Array {
  const out = new Uint8Array(sectors * 512);
  let v = seed;
  for (let s = 0; s < sectors; s++) {
    for (let i = 0; i < 512; i++) {
      out[s * 512 + i] = v;
      v = (v + 13) & 0xff;
    }
    v = (v + 81) & 0xff;
  }
  return out;
}

/** Parses diskex's `NAME key=HEX ...` lines. */
export function parseDiskexOutput(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const line of text.split(/\r?\n/)) {
    const [name, ...rest] = line.trim().split(/\s+/);
    if (!name) continue;
    const fields: Record<string, string> = {};
    for (const r of rest) {
      const eq = r.indexOf('=');
      if (eq > 0) fields[r.slice(0, eq)] = r.slice(eq + 1);
      else fields[r] = 'true';
    }
    out.set(name, fields);
  }
  return out;
}
