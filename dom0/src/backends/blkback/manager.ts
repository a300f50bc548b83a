/**
 * blkback wired into dom0 (the xenbus half of Linux's xen-blkback): watches
 * `/local/domain/0/backend/vbd`, and for each device the toolstack creates there opens the image
 * named by `params`, runs the backend xenbus driver (features, InitWait; on the frontend's
 * Initialised: map the ring through the grant table, bind the event channel, publish the disk's
 * keys, Connected), and serves the ring with a BlkbackDevice over real grant copies. `detach`
 * tears a domain's devices down: stop serving, unmap the ring, close the port and the image.
 * See docs/pv-disk-request.md and docs/xenbus-handshake.md.
 */
import { BLKIF_ENTRY_BYTES, BackRing, envMicros } from '@xenlab/ring-buffers';
import { DomId, GNTMAP, GNTST } from '@xenlab/xen-public';
import type { WatchStream } from '@xenlab/xenstore-client';
import type { Dom0Host } from '../../toolstack/dom0-host.ts';
import { BlkbackDevice } from './blkback.ts';
import { DiskImage } from './disk-image.ts';
import { HypervisorGrantCopy, HypervisorGrantMap } from './hypervisor-grants.ts';
import { DEFAULT_PERSISTENT_GRANTS, PersistentGrants } from './persistent-grants.ts';
import { createBackendMachine } from './xenbus-backend.ts';
import { BackendXenbusDriver } from './xenbus-driver.ts';
import { connectKeys, featureKeys } from './xenstore-keys.ts';

const PAGE = 4096;
/** Default bounded poll of a busy ring before blkback sleeps (see BlkbackOptions.pollUs; docs/pv-disk-request.md). */
const DEFAULT_POLL_US = 200;
/** ... but only after passes of at most this many requests (BlkbackOptions.pollMaxBatch). */
const DEFAULT_POLL_MAX_BATCH = 4;
const pollUs = (): number => envMicros('XENLAB_BLKBACK_POLL_US', DEFAULT_POLL_US);
const ROOT = '/local/domain/0/backend/vbd';

interface Vbd {
  domid: number;
  devid: number;
  path: string;
  driver: BackendXenbusDriver;
  disk: DiskImage | undefined;
  device: BlkbackDevice | undefined;
  grants: HypervisorGrantCopy | undefined;
  ring: { handle: number; port: number; unbind: () => void } | undefined;
  watch: WatchStream | undefined;
  /** Torn down: the driver's late steps must not write (they would re-create removed nodes). */
  dead: boolean;
  /** The counters when the ring last disconnected (`counters()` answers them once the device is gone). */
  final?: Record<string, number>;
}

/** Devices whose last counters `counters()` keeps after teardown. */
const RETIRED_VBDS = 32;

export class BlkbackManager {
  private readonly vbds = new Map<string, Vbd>();
  private rootWatch: WatchStream | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly h: Dom0Host) {}

  async start(): Promise<void> {
    await this.h.xs.mkdir(ROOT).catch(() => {});
    this.rootWatch = await this.h.xs.watch(ROOT);
    void (async () => {
      for await (const ev of this.rootWatch!) {
        const m = /^\/local\/domain\/0\/backend\/vbd\/(\d+)\/(\d+)(?:\/|$)/.exec(ev.path);
        if (m) this.serial(() => this.maybeAttach(Number(m[1]), Number(m[2])));
        // A removed backend directory (by the toolstack or by hand) ends its device.
        for (const v of this.vbds.values()) {
          if (v.path === ev.path || v.path.startsWith(`${ev.path}/`)) this.serial(() => this.removeIfGone(v));
        }
      }
    })();
  }

  /** The devices of one domain, for `xl block-list` and tests. */
  devices(domid: number): { devid: number; path: string; counters: BlkbackDevice['counters'] | undefined; persistent: BlkbackDevice['persistentCounters'] }[] {
    return [...this.vbds.values()].filter((v) => v.domid === domid).map((v) => ({ devid: v.devid, path: v.path, counters: v.device?.counters, persistent: v.device?.persistentCounters }));
  }

  /**
   * Counters of `domid`'s vbds, flat (`blkback.*`, `gntcopy.*`, `gntmap.*`, `persistent.*`): live
   * for a connected device, else the values at its last disconnect (kept for the last few
   * torn-down devices too).
   */
  counters(domid: number): { devid: number; live: boolean; counters: Record<string, number> }[] {
    const out = [...this.vbds.values()].filter((v) => v.domid === domid).map((v) => {
      const live = v.device !== undefined;
      return { devid: v.devid, live, counters: (live ? vbdCounters(v) : v.final) ?? {} };
    });
    for (const r of this.retired) if (r.domid === domid && !out.some((o) => o.devid === r.devid)) out.push({ devid: r.devid, live: false, counters: r.counters });
    return out;
  }

  private readonly retired: { domid: number; devid: number; counters: Record<string, number> }[] = [];

  /** Tears down every device of `domid` (the domain is being destroyed). */
  detach(domid: number): Promise<void> {
    return this.serial(async () => {
      for (const v of [...this.vbds.values()]) if (v.domid === domid) await this.teardown(v);
    });
  }

  async stop(): Promise<void> {
    if (this.rootWatch) await this.h.xs.unwatch(this.rootWatch).catch(() => {});
    for (const v of [...this.vbds.values()]) await this.teardown(v);
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f).catch((e) => this.h.log(`blkback: ${(e as Error).message}`));
    this.chain = next;
    return next;
  }

  private async removeIfGone(v: Vbd): Promise<void> {
    if (this.vbds.get(v.path) !== v || (await this.h.xs.exists(v.path))) return;
    this.h.log(`blkback d${v.domid}/${v.devid}: backend directory removed; device torn down`);
    await this.teardown(v);
  }

  private async maybeAttach(domid: number, devid: number): Promise<void> {
    const path = `${ROOT}/${domid}/${devid}`;
    if (this.vbds.has(path)) return;
    const xs = this.h.xs;
    const params = await xs.tryRead(`${path}/params`);
    const frontend = await xs.tryRead(`${path}/frontend`);
    if (params === undefined || frontend === undefined) return; // not complete yet: a later event
    const readOnly = (await xs.tryRead(`${path}/mode`)) === 'r';
    const v: Vbd = { domid, devid, path, driver: undefined as unknown as BackendXenbusDriver, disk: undefined, device: undefined, grants: undefined, ring: undefined, watch: undefined, dead: false };
    let disk: DiskImage | undefined;
    let openError: string | undefined;
    try {
      disk = DiskImage.open(params, { readOnly });
    } catch (e) {
      openError = `cannot open ${params}: ${(e as Error).message}`;
    }
    v.disk = disk;
    v.driver = new BackendXenbusDriver({
      store: { tryRead: (p) => xs.tryRead(p), write: async (p, val) => (v.dead ? undefined : xs.write(p, val)) },
      backendPath: path,
      frontendPath: frontend,
      // XENLAB_BLKBACK_PERSISTENT=0 in the host's environment withholds feature-persistent (bench pv-blk compares).
      machine: createBackendMachine(featureKeys({ persistent: process.env.XENLAB_BLKBACK_PERSISTENT !== '0' }), connectKeys({ sizeBytes: disk?.sizeBytes ?? 0, readOnly })),
      connect: (ring) => this.connectRing(v, ring.ringRef, ring.eventChannel, ring.persistent),
      disconnect: () => this.disconnectRing(v),
      remove: async () => {},
      log: (l) => this.h.log(`blkback d${domid}/${devid}: ${l}`),
    });
    this.vbds.set(path, v);
    v.watch = await xs.watch(`${frontend}/state`);
    void (async () => {
      for await (const _ of v.watch!) await v.driver.changed();
    })();
    if (openError) {
      this.h.log(`blkback d${domid}/${devid}: ${openError}`);
      await v.driver.probeFailed(openError);
    } else await v.driver.probe();
  }

  private async connectRing(v: Vbd, ringRef: number, port: number, persistent: boolean): Promise<void> {
    const hc = this.h.hc;
    const [m] = await hc.call('grant_table_op', 'map_grant_ref', [{ flags: GNTMAP.host_map, ref: ringRef, dom: v.domid }]);
    if (!m || m.status !== GNTST.okay) throw new Error(`mapping ring-ref ${ringRef} of d${v.domid} failed (GNTST ${m?.status})`);
    let bound: { local_port: number; notify: Parameters<Dom0Host['events']['sender']>[1] };
    try {
      bound = await hc.call('event_channel_op', 'bind_interdomain', { remote_dom: v.domid, remote_port: port });
    } catch (e) {
      await hc.call('grant_table_op', 'unmap_grant_ref', [{ handle: m.handle }]).catch(() => {});
      throw new Error(`binding event channel ${port} of d${v.domid} failed: ${(e as Error).message}`);
    }
    v.grants = new HypervisorGrantCopy(hc, this.h.frames);
    const send = this.h.events.sender(bound.local_port, bound.notify);
    const limit = Number(process.env.XENLAB_BLKBACK_MAX_PERSISTENT ?? DEFAULT_PERSISTENT_GRANTS);
    v.device = new BlkbackDevice({
      ring: BackRing.attach(this.h.mm.buffer, m.dev_bus_addr, PAGE, BLKIF_ENTRY_BYTES),
      frontendDomid: DomId(v.domid),
      disk: v.disk!,
      grants: v.grants,
      // Grant copy by default; XENLAB_BLKBACK_GRANTS=map maps each segment instead (bench pv-blk measures both).
      ...(process.env.XENLAB_BLKBACK_GRANTS === 'map' ? { grantMap: new HypervisorGrantMap(hc, this.h.mm.buffer) } : {}),
      ...(persistent
        ? { persistent: new PersistentGrants(new HypervisorGrantMap(hc, this.h.mm.buffer), DomId(v.domid), Number.isInteger(limit) && limit >= 0 ? limit : DEFAULT_PERSISTENT_GRANTS) }
        : {}),
      notify: send,
      // Overlap the grant-copy round trips of consecutive requests (bench pv-blk).
      inFlight: 8,
      // A busy ring is polled this long before blkback sleeps (XENLAB_BLKBACK_POLL_US; 0: never).
      pollUs: pollUs(),
      pollMaxBatch: Number(process.env.XENLAB_BLKBACK_POLL_BATCH ?? DEFAULT_POLL_MAX_BATCH) || DEFAULT_POLL_MAX_BATCH,
      log: (l) => this.h.log(`blkback d${v.domid}/${v.devid}: ${l}`),
    });
    const dev = v.device;
    let reported = false;
    const unbind = this.h.events.on(bound.local_port, () =>
      void dev.kick().then(() => {
        // The device's own log is rate-limited; a stopped ring is always worth one line here.
        if (dev.stopped && dev.stopped !== 'closed' && !reported) {
          reported = true;
          this.h.log(`blkback d${v.domid}/${v.devid}: ring stopped (${dev.stopped}); the frontend must reconnect`);
        }
      }),
    );
    v.ring = { handle: m.handle, port: bound.local_port, unbind };
  }

  private async disconnectRing(v: Vbd): Promise<void> {
    const r = v.ring;
    const dev = v.device;
    if (dev) v.final = vbdCounters(v);
    v.ring = undefined;
    v.device = undefined;
    if (!r) return;
    r.unbind();
    // Requests under way finish first; then the persistent mappings go, before the ring page.
    await dev?.close().catch((e) => this.h.log(`blkback d${v.domid}/${v.devid}: releasing grants: ${(e as Error).message}`));
    await this.h.hc.call('event_channel_op', 'close', { port: r.port }).catch(() => {});
    await this.h.hc.call('grant_table_op', 'unmap_grant_ref', [{ handle: r.handle }]).catch(() => {});
    v.grants?.release();
    v.grants = undefined;
  }

  private async teardown(v: Vbd): Promise<void> {
    v.dead = true;
    this.vbds.delete(v.path);
    const last = v.device ? vbdCounters(v) : v.final;
    if (last) {
      this.retired.push({ domid: v.domid, devid: v.devid, counters: last });
      if (this.retired.length > RETIRED_VBDS) this.retired.shift();
    }
    if (v.watch) await this.h.xs.unwatch(v.watch).catch(() => {});
    await this.disconnectRing(v);
    v.disk?.close();
  }
}

/** One vbd's counters, flat: blkback's, its grant copy/map hypercalls, its persistent grants. */
function vbdCounters(v: Vbd): Record<string, number> {
  const c: Record<string, number> = {};
  const put = (prefix: string, o: object | undefined) => {
    for (const [k, x] of Object.entries(o ?? {})) if (typeof x === 'number') c[`${prefix}.${k}`] = x;
  };
  put('blkback', v.device?.counters);
  put('gntcopy', v.grants?.counters);
  put('persistent', v.device?.persistentCounters);
  return c;
}
