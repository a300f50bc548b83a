/**
 * The PV kernel shim process, one per PV guest (the Mini-OS role; ARCHITECTURE.md "Where guest
 * code runs"): `node domU-pv-kernel-shim/src/main.ts <start-info.json>` with the domain's
 * set-up token in XENLAB_DOMAIN_TOKEN. dom0's PV builder (dom0/src/toolstack/pv-builder.ts)
 * spawns it and unpauses the domain when it prints `ready`.
 *
 * Start-up, in order: connect to the hypervisor as the domain's owner (if this process dies, the
 * domain crashes); map its own frames through the start info's P2M; set up its grant table
 * (GNTTABOP_setup_table); talk to xenstored over the xenstore ring page (grant ref 1) and its
 * event channel; bring up the console front (grant ref 0) and blkfront for each `device/vbd`
 * with the full xenbus handshake; load the program (`kernel = "file"` at 0000:7C00, or the first
 * disk's boot sector read through blkfront, like pvgrub); register the trap table; watch
 * `control/shutdown`; print `ready`. Then it serves the program's trapped BIOS interrupts
 * (bios/services.ts) and resumes the vCPU with `iret`. APM power-off and `control/shutdown`
 * become SCHEDOP_shutdown. See docs/life-of-a-pv-guest.md.
 */
import { readFileSync } from 'node:fs';
import { AwakeWindow, BLKIF_ENTRY_BYTES, BLKIF_MAX_SEGMENTS_PER_REQUEST, Doorbell, FrontRing, SharedMemory, envMicros, lookEachTurn } from '@xenlab/ring-buffers';
import { ConsoleMarks, DOMID_SELF, DomId, Gfn, GrantFrame, HypercallClient, SHUTDOWN, WireConnection, TRAP_AWAKE, TRAP_SLOT_ANSWER_BELL_OFFSET, TRAP_SLOT_BELL_OFFSET, TRAP_SLOT_STATE, TrapSlot, VIRQ, type PvStartInfo, type TrapEvent, type TrapFrame } from '@xenlab/xen-public';
import { DomainEvents, XenstoreClient, XenstoreRing } from '@xenlab/xenstore-client';
import { Blkfront, type BlkDiskInfo, type BlkfrontFrame } from './blkfront/blkfront.ts';
import { FrontendXenbusDriver } from './blkfront/xenbus-driver.ts';
import { createFrontendMachine } from './blkfront/xenbus-frontend.ts';
import { initBiosDataArea, loadBootSector, loadFlatKernel } from './bios/boot.ts';
import { Int13Service } from './bios/int13.ts';
import { KeyboardService } from './bios/keyboard.ts';
import { Registers, type GuestMemory } from './bios/machine.ts';
import { BiosServices } from './bios/services.ts';
import { DEFAULT_EQUIPMENT, SystemService } from './bios/system.ts';
import { TimeService } from './bios/time.ts';
import { VideoService } from './bios/video.ts';
import { ConsoleFront } from './console/console-front.ts';
import { GuestGrantTable } from './grant-table.ts';

const PAGE = 4096;
const BOUNCE_FRAMES = 11;
/** Persistent-grant pool per vbd: a 127-sector INT 13h call into an aligned buffer is 16 pages. */
const POOL_FRAMES = 16;
/**
 * Guest frames that blkfront may grant in place, persistently (Blkfront `direct`), shared out
 * among the vbds: all of conventional memory (640 KiB), where a real-mode program's disk buffers
 * live. With the pools and the rings this stays inside the one grant frame (512 entries).
 */
const DIRECT_FRAMES = 160;
const log = (m: string): void => void process.stderr.write(`shim: ${m}\n`);

/**
 * The start info path and token: from argv and XENLAB_DOMAIN_TOKEN, or, with `--wait` (a shim
 * the toolstack started ahead of time, already loaded), one JSON line on stdin. `xenstore` says
 * when the domain's xenstore tree is ready: at once from argv; with `--wait`, when a second line
 * (`go`) comes, so the toolstack can hand over the start info first and write the tree while the
 * shim connects to the hypervisor. A waiting shim whose stdin closes early (dom0 went away, or
 * the create was rolled back) exits. Given the host's `--hypervisor <socket>` and
 * `--machine-memory <file>`, it connects and maps while it waits (`earlyConnection`).
 */
async function startArgs(): Promise<{ si: PvStartInfo; token: string; xenstore: Promise<void>; early?: EarlyConnection }> {
  if (process.argv[2] !== '--wait') {
    const token = process.env.XENLAB_DOMAIN_TOKEN;
    if (!token) throw new Error('XENLAB_DOMAIN_TOKEN is not set (the toolstack passes the domain token)');
    delete process.env.XENLAB_DOMAIN_TOKEN;
    return { si: JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as PvStartInfo, token, xenstore: Promise.resolve() };
  }
  const early = earlyConnection(process.argv.slice(3));
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let buf = '';
  let received = 0;
  const onData = (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0 && received < 2; nl = buf.indexOf('\n')) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      received++;
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
    if (received === 2) {
      process.stdin.off('data', onData);
      process.stdin.pause();
    }
  };
  process.stdin.on('data', onData);
  process.stdin.once('end', () => {
    // Stdin closed before both lines: nothing to run for.
    if (received < 2) process.exit(0);
  });
  const next = (): Promise<string> => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r)));
  const m = JSON.parse(await next()) as { startInfo: string; token: string };
  const xenstore = next().then((l) => {
    if (l.trim() !== 'go') throw new Error(`expected "go" from the toolstack, got ${JSON.stringify(l)}`);
  });
  return { si: JSON.parse(readFileSync(m.startInfo, 'utf8')) as PvStartInfo, token: m.token, xenstore, early };
}

/**
 * What a waiting shim does before it has a domain: connect to the hypervisor (`--hypervisor`)
 * and map machine memory (`--machine-memory`), the host's paths from the toolstack. Both cost a
 * few milliseconds (mapping 96 MiB as an ArrayBuffer makes V8 collect garbage), which a create
 * would otherwise wait for. Anything that fails here is simply done again the usual way.
 */
interface EarlyConnection {
  hypervisor: string;
  conn: Promise<WireConnection | undefined>;
  machineMemory: string;
  mm: SharedMemory | undefined;
}
function earlyConnection(args: string[]): EarlyConnection | undefined {
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const hypervisor = arg('--hypervisor');
  const machineMemory = arg('--machine-memory');
  if (!hypervisor || !machineMemory) return undefined;
  let mm: SharedMemory | undefined;
  try {
    mm = SharedMemory.open(machineMemory);
  } catch {
    mm = undefined;
  }
  return { hypervisor, conn: WireConnection.connect(hypervisor).catch(() => undefined), machineMemory, mm };
}

async function main(): Promise<void> {
  const { si, token, xenstore, early } = await startArgs();
  const conn = early?.hypervisor === si.hypervisor_socket ? await early.conn : undefined;
  const hc = conn
    ? await HypercallClient.setUp(conn, token, { owner: true }).catch(() => HypercallClient.connect(si.hypervisor_socket, token, { owner: true }))
    : await HypercallClient.connect(si.hypervisor_socket, token, { owner: true });
  if (early?.conn && !conn) void early.conn.then((c) => c?.close());
  let mm: SharedMemory;
  if (early?.mm && early.machineMemory === hc.info.machine_memory) mm = early.mm;
  else {
    early?.mm?.close();
    mm = SharedMemory.open(hc.info.machine_memory);
  }
  const frame = (gfn: number): Uint8Array => {
    const mfn = si.mfn_list[gfn];
    if (mfn === undefined) throw new RangeError(`gfn ${gfn} is not RAM of d${si.domid}`);
    return new Uint8Array(mm.buffer, mfn * PAGE, PAGE);
  };
  const mem: GuestMemory = { pages: Array.from({ length: 256 }, (_, g) => (g < si.nr_pages ? frame(g) : null)) };
  let nextGfn = si.kernel_gfn_start;
  const allocGfn = (): number => {
    if (nextGfn >= si.nr_pages || nextGfn === si.console_gfn || nextGfn === si.store_gfn) throw new Error('the shim ran out of its own frames');
    return nextGfn++;
  };

  const gt = await hc.call('grant_table_op', 'setup_table', { dom: DOMID_SELF, nr_frames: 1 });
  const gnttab = new GuestGrantTable(gt.frame_list.map((mfn) => new GrantFrame(mm.buffer, mfn * PAGE)));
  const events = new DomainEvents(hc, mm.buffer, 200, { scan: true });
  await startTicks(hc, events, mm.buffer);

  // xenstore over the ring page the builder set up (the backend end is bound by xenstored), once
  // the toolstack says the tree is written and the domain introduced.
  await xenstore;
  const xs = XenstoreClient.overRing(new XenstoreRing(mm.buffer, si.mfn_list[si.store_gfn]! * PAGE), events.eventChannel(si.store_evtchn));
  const home = `/local/domain/${si.domid}`;
  // Requests whose answers are needed only later go out at once, side by side on the ring:
  // control/shutdown's features and watch (awaited before `ready`), the list of vbds.
  const control = Promise.all([xs.write(`${home}/control/feature-poweroff`, '1'), xs.write(`${home}/control/feature-reboot`, '1')]).then(() => xs.watch(`${home}/control/shutdown`));
  control.catch(() => {});
  const vbds = xs.directory(`${home}/device/vbd`).catch(() => [] as string[]);

  // The console front, input going to the INT 16h queue.
  const keyboard = new KeyboardService();
  const consoleSend = events.sender(si.console_evtchn);
  // Input also wakes a vCPU halted in HLT: an event sent through the hypervisor (to our own IPI
  // port) is what ends a PV vCPU's block; the console's fast path only rings our doorbell.
  const { port: ipi } = await hc.call('event_channel_op', 'bind_ipi', { vcpu: 0 });
  events.on(ipi, () => {});
  const cons = new ConsoleFront(mm.buffer, si.mfn_list[si.console_gfn]! * PAGE, consoleSend, (b) => {
    keyboard.feed(b);
    void hc.call('event_channel_op', 'send', { port: ipi }).catch(() => {});
  });
  events.on(si.console_evtchn, () => cons.kick());

  const framesLeft = (): number => {
    let n = 0;
    for (let g = nextGfn; g < si.nr_pages; g++) if (g !== si.console_gfn && g !== si.store_gfn) n++;
    return n;
  };
  // A frame for the trap slot (below), taken before the bounce frames and the vbds' pools claim the rest.
  const slotGfn = process.env.XENLAB_TRAP_SLOT !== '0' && framesLeft() > BOUNCE_FRAMES + 1 ? allocGfn() : undefined;

  const bounce = Array.from({ length: BOUNCE_FRAMES }, () => {
    const g = allocGfn();
    return { gfn: Gfn(g), bytes: frame(g) };
  });

  // blkfront for each vbd, in devid order; the first is BIOS drive 80h.
  const devids = (await vbds).map(Number).sort((a, b) => a - b);
  const drives: { drive: number; front: Blkfront }[] = [];
  for (const [i, devid] of devids.entries()) {
    // A persistent-grant pool of up to POOL_FRAMES own frames (one BIOS call's 127 sectors), if
    // there is room for at least one full request after this and the remaining vbds' rings.
    const spare = framesLeft() - (devids.length - i);
    const pool: BlkfrontFrame[] = [];
    if (spare >= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      for (let k = 0; k < Math.min(POOL_FRAMES, spare); k++) {
        const g = allocGfn();
        pool.push({ gfn: Gfn(g), bytes: frame(g) });
      }
    }
    const front = await connectVbd(xs, hc, events, gnttab, home, devid, allocGfn, frame, pool, Math.floor(DIRECT_FRAMES / devids.length));
    drives.push({ drive: 0x80 + i, front });
  }
  // The workload's BEGIN/BENCH lines: mark the domain's counters, with ours, before the iret.
  const marks = new ConsoleMarks();
  const bios = new BiosServices({
    video: new VideoService({ write: (b) => (cons.write(b), marks.write(b)) }, mem),
    disk: new Int13Service(mem, { drives, bounce, writeThrough: si.write_through ?? true }),
    keyboard,
    time: new TimeService({ now: () => Date.now() }, mem),
    system: new SystemService({ memoryKib: si.program_kib }),
  });

  initBiosDataArea(mem, { memoryKib: si.program_kib, equipment: DEFAULT_EQUIPMENT, hardDisks: drives.length });
  if (si.kernel) loadFlatKernel(mem, readFileSync(si.kernel), si.program_kib);
  else {
    const first = drives[0];
    if (!first) throw new Error('no kernel and no disk: nothing to boot (give the domain kernel = "..." or a disk)');
    await loadBootSector(bios.parts.disk, first.front, mem);
  }

  let down = false;
  const shutdown = async (reason: number, why: string): Promise<void> => {
    if (down) return;
    down = true;
    log(`d${si.domid}: ${why}`);
    // Let the console backend see the last bytes before the domain goes.
    for (let i = 0; i < 100 && cons.backlog > 0; i++) await new Promise((r) => setTimeout(r, 5));
    await hc.call('sched_op', 'shutdown', { reason }).catch((e) => log(`SCHEDOP_shutdown: ${(e as Error).message}`));
  };

  // After an iret the guest usually traps again soon (the next INT 10h character, the next
  // INT 13h call): stay awake for it rather than sleep (TRAP_AWAKE, XENLAB_TRAP_AWAKE_US; 0: sleep at once).
  const awakeUs = envMicros(TRAP_AWAKE.env, TRAP_AWAKE.defaultUs);
  const awake = new AwakeWindow(awakeUs);
  /** Serves one bounced call; the registers to resume with, or null when the domain is going down. */
  const serveCall = async (vector: number, frame: TrapFrame): Promise<TrapFrame | null> => {
    const regs = Registers.fromFrame(frame);
    let outcome;
    try {
      outcome = await bios.serve(vector, regs);
    } catch (e) {
      log(`INT ${vector.toString(16)}h failed: ${(e as Error).message}`);
      await shutdown(SHUTDOWN.crash, `INT ${vector.toString(16)}h could not be served`);
      return null;
    }
    if (outcome === 'poweroff') return (await shutdown(SHUTDOWN.poweroff, 'APM power-off'), null);
    if (outcome === 'unhandled') return (await shutdown(SHUTDOWN.crash, `INT ${vector.toString(16)}h is not served`), null);
    for (const label of marks.take()) {
      const extra = shimCounters(bios, drives, gnttab, cons);
      await hc.call('domctl', 'xenlab_counters_mark', { domain: DOMID_SELF, label, extra }).catch((e) => log(`counter mark: ${(e as Error).message}`));
    }
    return regs.toFrame();
  };
  const iret = async (vcpu: number, frame: TrapFrame): Promise<void> => {
    const resumed = hc.call('iret', 'iret', { vcpu, frame });
    awake.extend();
    await resumed.catch((e) => log(`iret: ${(e as Error).message}`));
  };
  // Traps the hypervisor pushes on the socket (no trap slot, or a pCPU that cannot use it).
  hc.onTrap((ev: TrapEvent) => {
    void serveCall(ev.vector, ev.frame).then((f) => f && iret(ev.vcpu, f));
  });
  await hc.call('set_trap_table', 'set_trap_table', bios.vectors.map((vector) => ({ vector })));
  // The trap slot (xen-public trap-slot.ts): the pCPU worker posts traps in a page of ours and
  // waits in the slice for the answer, so a bounce crosses no socket and no main thread.
  // XENLAB_TRAP_SLOT=0 keeps every bounce on the socket.
  if (slotGfn !== undefined) {
    const g = slotGfn;
    frame(g).fill(0);
    const base = si.mfn_list[g]! * PAGE;
    const slot = new TrapSlot(new Uint32Array(mm.buffer, base, PAGE / 4), 0);
    const bell = new Doorbell(mm.buffer, base + TRAP_SLOT_BELL_OFFSET);
    const answered = new Doorbell(mm.buffer, base + TRAP_SLOT_ANSWER_BELL_OFFSET);
    await hc.call('set_trap_table', 'xenlab_trap_slot', { gfn: g });
    let awakeUntil = 0;
    // PENDING: the worker waits for us; PARKED: it stopped waiting (we were asleep) and the vCPU
    // is blocked in the trap until our iret. Either way a trap we have not served yet.
    const trapWaiting = (): boolean => {
      const st = slot.state;
      return st === TRAP_SLOT_STATE.PENDING || st === TRAP_SLOT_STATE.PARKED;
    };
    void (async () => {
      for (;;) {
        const seen = bell.seq;
        if (trapWaiting()) {
          const f = await serveCall(slot.vector, slot.frame());
          if (!f) return;
          if (slot.complete(f)) {
            answered.ring(); // a worker asleep on the answer wakes (no system call if it spins)
          } else {
            // The worker stopped waiting (parked the vCPU): resume it the slow way.
            slot.reset();
            await iret(0, f);
          }
          awakeUntil = performance.now() + awakeUs / 1000;
          continue;
        }
        if (performance.now() < awakeUntil) {
          // The next trap is likely soon: look each turn until it comes or the window closes.
          await lookEachTurn(trapWaiting, () => performance.now() < awakeUntil);
          continue;
        }
        await bell.waitAsync(seen, 1000);
      }
    })();
  }

  // control/shutdown: the toolstack writes poweroff/reboot; we acknowledge with "" and go.
  const ctl = await control;
  void (async () => {
    for await (const _ of ctl) {
      const req = await xs.tryRead(`${home}/control/shutdown`).catch(() => undefined);
      if (!req) continue;
      await xs.write(`${home}/control/shutdown`, '').catch(() => {});
      if (req === 'poweroff' || req === 'halt') await shutdown(SHUTDOWN.poweroff, `control/shutdown=${req}`);
      else if (req === 'reboot') await shutdown(SHUTDOWN.reboot, 'control/shutdown=reboot');
      else log(`control/shutdown=${req}: not supported`);
    }
  })();

  hc.conn.socket.on('close', () => process.exit(0));
  process.stdout.write(`ready d${si.domid} ${drives.length} disk(s)\n`);
}

/**
 * The shim's own counters, flat, for a counter mark: trapped BIOS calls by vector (`trap.int13`),
 * INT 13h, blkfront (summed over the drives), grants and the console front.
 */
function shimCounters(bios: BiosServices, drives: readonly { front: Blkfront }[], gnttab: GuestGrantTable, cons: ConsoleFront): Record<string, number> {
  const c: Record<string, number> = {};
  const put = (prefix: string, o: object) => {
    for (const [k, v] of Object.entries(o)) if (typeof v === 'number') c[`${prefix}.${k}`] = (c[`${prefix}.${k}`] ?? 0) + v;
  };
  put('trap', bios.counters);
  put('int13', bios.parts.disk.counters);
  for (const d of drives) put('blkfront', d.front.counters);
  put('grant', gnttab.counters);
  put('console', cons.counters);
  return c;
}

/**
 * The BIOS timer tick: VIRQ_TIMER re-armed every 1/18.2 s with set_timer_op (a one-shot at a
 * system time), so a program halted in HLT wakes at each tick, as on a PC (INT 1Ah's count comes
 * from the clock, time.ts). System time is the hypervisor's, from vcpu_time_info in shared_info.
 */
async function startTicks(hc: HypercallClient, events: DomainEvents, memory: ArrayBuffer): Promise<void> {
  const TICK_NS = Math.round(1e9 / 18.2065);
  // shared_info.vcpu_info[0].time.system_time: vcpu_info at 0, time at 32, system_time at 16.
  const clock = new DataView(memory, hc.info.shared_info_frame * PAGE + 32 + 16, 8);
  const arm = () => hc.call('set_timer_op', 'set_timer_op', { timeout_ns: Number(clock.getBigUint64(0, true)) + TICK_NS }).catch(() => {});
  const { port } = await hc.call('event_channel_op', 'bind_virq', { virq: VIRQ.TIMER, vcpu: 0 });
  events.on(port, () => void arm());
  await arm();
}

/** One vbd's frontend: the xenbus handshake (docs/xenbus-handshake.md) and the Blkfront. */
async function connectVbd(
  xs: XenstoreClient,
  hc: HypercallClient,
  events: DomainEvents,
  gnttab: GuestGrantTable,
  home: string,
  devid: number,
  allocGfn: () => number,
  frame: (gfn: number) => Uint8Array,
  pool: readonly BlkfrontFrame[],
  direct: number,
): Promise<Blkfront> {
  const fe = `${home}/device/vbd/${devid}`;
  const be = await xs.readString(`${fe}/backend`);
  const backendId = DomId(Number(await xs.readString(`${fe}/backend-id`)));
  let ring: FrontRing | undefined;
  let port = 0;
  let front: Blkfront | undefined;
  let send: () => void = () => {};
  let done!: (f: Blkfront) => void;
  let failed!: (e: Error) => void;
  const connected = new Promise<Blkfront>((res, rej) => ((done = res), (failed = rej)));
  const driver = new FrontendXenbusDriver({
    store: xs,
    frontendPath: fe,
    backendPath: be,
    // Persistent grants when the backend offers them and we have a pool (feature-persistent).
    machine: createFrontendMachine({ persistent: pool.length >= BLKIF_MAX_SEGMENTS_PER_REQUEST }),
    setupRing: async () => {
      const gfn = allocGfn();
      const page = frame(gfn);
      ring = FrontRing.init(page.buffer as ArrayBuffer, page.byteOffset, PAGE, BLKIF_ENTRY_BYTES);
      const ref = gnttab.grantAccess(backendId, Gfn(gfn), false);
      if (ref === null) throw new Error('no free grant reference for the ring');
      port = (await hc.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: backendId })).port;
      send = events.sender(port);
      events.on(port, () => front?.handleResponses());
      return { ringRef: ref, eventChannel: port };
    },
    connected: (info: BlkDiskInfo) => {
      front = new Blkfront({
        ring: ring!,
        backendDomid: backendId,
        grants: gnttab,
        notify: () => send(),
        info,
        handle: devid,
        persistent: {
          frames: pool,
          // The guest's own buffers (INT 13h ES:BX, page- and sector-aligned) are granted in place
          // once, so a read lands in them with no copy; the pool carries the rest.
          direct,
          page: (g) => {
            try {
              return frame(g);
            } catch {
              return undefined;
            }
          },
        },
      });
      // The backend has bound by now: switch to the fast path.
      void hc.call('event_channel_op', 'status', { dom: DOMID_SELF, port }).then((s) => {
        if (s.notify) send = events.sender(port, s.notify);
      }, () => {});
      done(front);
    },
    teardown: async () => {
      front?.failAll();
      front?.releasePersistent();
    },
    log: (l) => log(`vbd ${devid}: ${l}`),
  });
  const w = await xs.watch(`${be}/state`);
  void (async () => {
    for await (const _ of w) await driver.changed();
  })();
  await driver.start();
  const t = setTimeout(() => failed(new Error(`vbd ${devid}: the backend did not connect within 15 s`)), 15_000);
  try {
    return await connected;
  } finally {
    clearTimeout(t);
  }
}

main().catch((e) => {
  log(`${(e as Error).stack ?? e}`);
  process.exit(1);
});
