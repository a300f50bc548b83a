/**
 * The shim's block benchmark mode (used by `npm run bench -- pv-blk`): a process that acts as a
 * PV domain's kernel with one vbd and drives blkfront directly with many requests in flight,
 * so the numbers are the PV block path itself (grants, ring, event channels, dom0's blkback and
 * the image) without a guest program's one-request-at-a-time INT 13h in front.
 *
 *   XENLAB_DOMAIN_TOKEN=... tsx bench-blk.ts '<BenchBlkConfig as JSON>'
 *
 * Real: the hypervisor (populate_physmap, grant table, event channels, grant copies done by
 * blkback), dom0's blkback, the xenbus handshake. Not the product path: xenstore is reached
 * over xenstored's socket rather than a ring (the domain is not introduced). Prints one JSON
 * line per workload, then `done`.
 */
import { BLKIF_ENTRY_BYTES, FrontRing, SharedMemory } from '@xenlab/ring-buffers';
import { DOMID_SELF, DomId, Gfn, GrantFrame, HypercallClient } from '@xenlab/xen-public';
import { DomainEvents, XenstoreClient } from '@xenlab/xenstore-client';
import { Blkfront, type BlkDiskInfo, type BlkfrontSegment } from './blkfront/blkfront.ts';
import { FrontendXenbusDriver } from './blkfront/xenbus-driver.ts';
import { createFrontendMachine } from './blkfront/xenbus-frontend.ts';
import { GuestGrantTable } from './grant-table.ts';

export interface BenchBlkWorkload {
  name: string;
  op: 'read' | 'write';
  pattern: 'seq' | 'rand';
  /** Bytes per I/O (a multiple of 4096; above 44 KiB an I/O is several ring requests). */
  bytes: number;
  /** I/Os to do (seq: wraps around the disk). */
  count: number;
  /** I/Os in flight. */
  depth: number;
}

export interface BenchBlkConfig {
  hypervisorSocket: string;
  xenstoredSocket: string;
  domid: number;
  devid: number;
  pages: number;
  /** Frames (after `pages`) for blkfront's persistent-grant pool; 0: do not offer feature-persistent. */
  poolPages?: number;
  /** With persistent grants: how many of the workload's own frames blkfront may grant in place (no copy); 0: every segment through the pool. */
  direct?: number;
  workloads: BenchBlkWorkload[];
  /** Warm-up before each workload's measured rounds, at least this long (default 300 ms). */
  warmupMs?: number;
  /** Measured rounds per workload, reported by the median (default 5). */
  rounds?: number;
}

const PAGE = 4096;
const SEGS = 11;

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as BenchBlkConfig;
  const hc = await HypercallClient.connect(cfg.hypervisorSocket, process.env.XENLAB_DOMAIN_TOKEN ?? '', { owner: true });
  const mm = SharedMemory.open(hc.info.machine_memory);
  const poolPages = cfg.poolPages ?? 0;
  const total = cfg.pages + poolPages;
  const pop = await hc.call('memory_op', 'populate_physmap', { domid: DOMID_SELF, extent_start: Array.from({ length: total }, (_, i) => i) });
  const mfns = pop.extent_start;
  const page = (gfn: number): Uint8Array | undefined => (Number.isInteger(gfn) && gfn >= 0 && gfn < total ? new Uint8Array(mm.buffer, mfns[gfn]! * PAGE, PAGE) : undefined);
  const pool = Array.from({ length: poolPages }, (_, i) => ({ gfn: Gfn(cfg.pages + i), bytes: page(cfg.pages + i)! }));
  const gt = await hc.call('grant_table_op', 'setup_table', { dom: DOMID_SELF, nr_frames: 4 });
  const gnttab = new GuestGrantTable(gt.frame_list.map((m) => new GrantFrame(mm.buffer, m * PAGE)));
  const events = new DomainEvents(hc, mm.buffer, 50);
  const xs = await XenstoreClient.connect(cfg.xenstoredSocket);
  const fe = `/local/domain/${cfg.domid}/device/vbd/${cfg.devid}`;
  const be = await xs.readString(`${fe}/backend`);

  let ring: FrontRing | undefined;
  let front: Blkfront | undefined;
  let port = 0;
  let send: () => void = () => {};
  let ready!: (f: Blkfront) => void;
  const connected = new Promise<Blkfront>((r) => (ready = r));
  const driver = new FrontendXenbusDriver({
    store: xs,
    frontendPath: fe,
    backendPath: be,
    machine: createFrontendMachine({ persistent: poolPages >= 11 }),
    setupRing: async () => {
      ring = FrontRing.init(mm.buffer as ArrayBuffer, mfns[0]! * PAGE, PAGE, BLKIF_ENTRY_BYTES);
      const ref = gnttab.grantAccess(DomId(0), Gfn(0), false)!;
      port = (await hc.call('event_channel_op', 'alloc_unbound', { dom: DOMID_SELF, remote_dom: 0 })).port;
      send = events.sender(port);
      events.on(port, () => front?.handleResponses());
      return { ringRef: ref, eventChannel: port };
    },
    connected: (info: BlkDiskInfo) => {
      front = new Blkfront({ ring: ring!, backendDomid: DomId(0), grants: gnttab, notify: () => send(), info, handle: cfg.devid, persistent: { frames: pool, page: (g) => page(g), direct: cfg.direct ?? 0 } });
      void hc.call('event_channel_op', 'status', { dom: DOMID_SELF, port }).then((s) => {
        if (s.notify) send = events.sender(port, s.notify);
        ready(front!);
      });
    },
    teardown: async () => front?.failAll(),
  });
  const w = await xs.watch(`${be}/state`);
  void (async () => {
    for await (const _ of w) await driver.changed();
  })();
  await driver.start();
  const f = await connected;
  const sectors = f.info.sectors;

  for (const wl of cfg.workloads) {
    const pagesPerIo = wl.bytes / PAGE;
    // Each in-flight slot owns its own pages (GFN 1.. ), so concurrent I/Os never share a buffer.
    const slotGfn = (slot: number) => 1 + slot * pagesPerIo;
    if (slotGfn(wl.depth) > cfg.pages) throw new Error(`workload ${wl.name}: ${wl.depth} x ${pagesPerIo} pages do not fit in ${cfg.pages - 1}`);
    const ioSectors = wl.bytes / 512;
    const ios = Math.floor(sectors / ioSectors);
    let next = 0;
    let count = 0;
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed);
    let errors = 0;
    // The I/Os that completions start in one turn are published together (one req_prod update,
    // at most one kick), as a kernel's block layer plugs and unplugs a batch.
    let pushing = false;
    const pushSoon = (): void => {
      if (pushing) return;
      pushing = true;
      queueMicrotask(() => {
        pushing = false;
        f.push();
      });
    };
    // Each slot's requests (up to 11 pages each) over its own pages, built once: an I/O is then
    // just its ring requests, as a kernel's block layer reuses its request structures.
    const slotParts: BlkfrontSegment[][][] = Array.from({ length: wl.depth }, (_, slot) => {
      const parts: BlkfrontSegment[][] = [];
      for (let p = 0; p < pagesPerIo; p += SEGS) {
        const segs: BlkfrontSegment[] = [];
        for (let i = p; i < Math.min(pagesPerIo, p + SEGS); i++) segs.push({ gfn: Gfn(slotGfn(slot) + i), firstSect: 0, lastSect: 7 });
        parts.push(segs);
      }
      return parts;
    });
    const doIo = async (slot: number, io: number): Promise<void> => {
      const lba = io * ioSectors;
      const parts = slotParts[slot]!;
      if (parts.length === 1) {
        const r = f.queueRw(wl.op, lba, parts[0]!);
        pushSoon();
        if ((await r) !== 0) errors++;
        return;
      }
      const pending: Promise<number>[] = [];
      for (let k = 0; k < parts.length; k++) pending.push(f.queueRw(wl.op, lba + k * SEGS * 8, parts[k]!));
      pushSoon();
      for (const st of await Promise.all(pending)) if (st !== 0) errors++;
    };
    const worker = async (slot: number): Promise<void> => {
      for (;;) {
        const n = next++;
        if (n >= count) return;
        await doIo(slot, wl.pattern === 'seq' ? n % ios : rand() % ios);
      }
    };
    const pass = async (ios_: number): Promise<void> => {
      next = 0;
      count = ios_;
      await Promise.all(Array.from({ length: wl.depth }, (_, s) => worker(s)));
    };
    // Warm-up (not measured) until both ends are in their steady state: passes of an eighth of
    // the I/Os (at least 256) for at least `warmupMs`. Measured over a fixed count alone, the
    // first ~10,000 I/Os ran at a third of the steady rate while the JIT compiled both ends' hot
    // paths (and its compiler threads took cores), so the figure depended on the run's length.
    const warmStart = performance.now();
    do await pass(Math.min(wl.count, Math.max(256, Math.floor(wl.count / 8))));
    while (performance.now() - warmStart < (cfg.warmupMs ?? 300));
    const warmupMs = performance.now() - warmStart;
    const warmErrors = errors;
    errors = 0;
    // Then `rounds` rounds of the workload, reported by the median round (as the host's baseline:
    // one preemption on this shared machine can halve a round of a few tens of milliseconds).
    const rounds: { ms: number; cpuMs: number; c: typeof f.counters; e: typeof events.counters }[] = [];
    for (let k = 0; k < (cfg.rounds ?? 5); k++) {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const e0 = { ...events.counters };
      const c0 = { ...f.counters };
      await pass(wl.count);
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const c1 = f.counters;
      const e1 = events.counters;
      rounds.push({
        ms,
        cpuMs: (cpu.user + cpu.system) / 1000,
        c: Object.fromEntries(Object.entries(c1).map(([k, v]) => [k, typeof v === 'number' ? v - (c0[k as keyof typeof c0] as number) : v])) as typeof c1,
        e: Object.fromEntries(Object.entries(e1).map(([k, v]) => [k, v - e0[k as keyof typeof e0]])) as typeof e1,
      });
    }
    errors += warmErrors;
    const median = [...rounds].sort((a, b) => a.ms - b.ms)[rounds.length >> 1]!;
    const { ms, c } = median;
    process.stdout.write(
      JSON.stringify({
        name: wl.name,
        ms,
        ios: wl.count,
        bytes: wl.count * wl.bytes,
        mbPerS: (wl.count * wl.bytes) / 1e6 / (ms / 1000),
        iops: wl.count / (ms / 1000),
        errors,
        /** Every round's time, ms (the figures above are the median round's). */
        rounds: rounds.map((r) => r.ms),
        warmupMs,
        requests: c.requests,
        notificationsSent: c.notificationsSent,
        notificationsSuppressed: c.notificationsSuppressed,
        persistent: f.isPersistent,
        persistentGrants: f.counters.persistentGrants,
        /** This process's CPU time during the median round (user + system), ms. */
        cpuMs: median.cpuMs,
        evtchn: median.e,
      }) + '\n',
    );
  }
  process.stdout.write('done\n');
  await xs.unwatch(w).catch(() => {});
  xs.close();
  await events.stop();
  hc.close();
  mm.close();
}

main().catch((e) => {
  process.stderr.write(`bench-blk: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
