/**
 * I/O requests to a domain's device model (xen/arch/x86/hvm/ioreq.c, the synchronous protocol of
 * hvm/ioreq.h; fact sheet §9.1). The toolstack gives an HVM domain an ioreq page
 * (HVM_PARAM_IOREQ_PFN, a GFN of the domain) and names the device model's domain
 * (HVM_PARAM_DM_DOMAIN, default 0). The hypervisor then offers one event channel per vCPU to the
 * device model (its number is the slot's `vp_eport`; the device model binds to it).
 *
 * The hot path runs on the pCPU worker that took the exit (ioreq-fast.ts, docs/ioreq-cycle.md):
 * it fills slot[vcpu], sets READY, marks the device model's port pending and rings its doorbell,
 * and waits a bounded time for IORESP_READY. The device model answers in the slot and rings the
 * host's answer doorbell (`answerBellAddr`, the `doorbell_addr` of its binding) — no socket.
 * This file is the main thread's half: the worker's binding (`binding`), vCPUs handed back
 * blocked on an ioreq when the wait ran out (`sentByWorker`, completed when the answer doorbell
 * rings: `watch`), the slow path of the in-process runner (`send`), the claimed ranges, and the
 * legacy `event_channel_op send` answer (`xenEvent`).
 *
 * Without a device model every port reads all-ones and writes are dropped.
 */
import { XenError, Gfn, HVM_PARAM, DOMID_XEN, DomId, ioreq, type Mfn } from '@xenlab/xen-public';
import { Doorbell, envMicros } from '@xenlab/ring-buffers';
import type { Domain, Vcpu } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { FrameKind } from '../mm/frame-table.ts';
import type { IoExit } from '../sched/pcpu.ts';
import { allOnes, claims, ioCompletion, takeIoreqAnswer, writeIoreqSlot, type FastIoCounters, type IoreqBinding } from './ioreq-fast.ts';

interface Server {
  dm: DomId;
  pageMfn: Mfn;
  /** vp_eport per vCPU (Xen-consumed ports of the HVM domain). */
  ports: number[];
  /** The I/O each vCPU is waiting on. */
  inflight: (IoExit | undefined)[];
  /** Claimed ranges (inclusive), by kind; none claimed of a kind = the server takes all of it. */
  ranges: { port: [number, number][]; mmio: [number, number][] };
}

const F = ioreq.fields;

/**
 * Worker wait for an answer before the vCPU goes back blocked (docs/ioreq-cycle.md: measured):
 * spin, then (within the sleep) look with the core yielded before each look for
 * XENLAB_IOREQ_YIELD_US, then sleep on the answer doorbell — the trap slot's policy, so PV and
 * HVM wait alike (xenlab-bench, three alternating runs: HVM console +15%, randread +5-30%).
 */
export const IOREQ_SPIN_US = 50;
export const IOREQ_SLEEP_US = 300;
export const IOREQ_YIELD_US = 250;

export class IoreqServers {
  private readonly servers = new Map<Domain, Server>();
  readonly stats = { sent: 0, completed: 0, unclaimed: 0, badResponses: 0, fast: 0, parked: 0 };
  /** The host-wide doorbell device models ring after IORESP_READY (a Xen frame, made on first use). */
  private bellMfn: Mfn | undefined;
  private bell: Doorbell | undefined;
  /** vCPUs blocked on an outstanding ioreq, watched through the answer doorbell. */
  private readonly parked = new Set<Vcpu>();
  private watchActive = false;
  private watching: Promise<void> | undefined;
  /** Sleep on the answer doorbell (futex, off the event loop) while vCPUs are parked; main.ts turns it on. */
  watchAnswers = false;
  spinUs = IOREQ_SPIN_US;
  yieldUs = envMicros('XENLAB_IOREQ_YIELD_US', IOREQ_YIELD_US);
  sleepUs = IOREQ_SLEEP_US;

  constructor(private readonly hv: Hypervisor) {}

  has(d: Domain): boolean {
    return this.servers.has(d);
  }

  /**
   * Byte address of the answer doorbell in machine memory: the `doorbell_addr` a device model
   * gets for its end of an ioreq channel (event-channel.ts notifyInfo).
   */
  answerBellAddr(): number {
    if (this.bellMfn === undefined) {
      const mfn = this.hv.frames.alloc(DOMID_XEN, FrameKind.xen);
      if (mfn === undefined) throw new XenError('ENOMEM', 'no machine memory for the ioreq doorbell');
      this.hv.mem.scrub(mfn);
      this.bellMfn = mfn;
      this.bell = new Doorbell(this.hv.mem.buffer as ArrayBuffer, this.hv.mem.addr(mfn));
    }
    return this.hv.mem.addr(this.bellMfn);
  }
  /** Called when HVM params change: (re)creates the server once the ioreq page is known. */
  configure(d: Domain): void {
    const gfn = d.hvmParams.get(HVM_PARAM.IOREQ_PFN);
    if (gfn === undefined || this.servers.has(d)) return;
    const mfn = d.p2m.lookup(Gfn(gfn));
    if (mfn === undefined) return;
    const dm = DomId(d.hvmParams.get(HVM_PARAM.DM_DOMAIN) ?? 0);
    const ports = d.vcpus.map((v) => this.hv.evtchn.allocXenPort(d, dm, v.id));
    const dv = this.view(mfn);
    ports.forEach((p, i) => dv.setUint32(i * ioreq.size + F.vp_eport.offset, p, true));
    this.servers.set(d, { dm, pageMfn: mfn, ports, inflight: [], ranges: { port: [], mmio: [] } });
    this.hv.log(`d${d.domid}: ioreq server in d${dm}, page gfn ${gfn.toString(16)}, ports ${ports.join(',')}`);
  }

  private view(mfn: Mfn): DataView {
    return new DataView(this.hv.mem.buffer, this.hv.mem.addr(mfn), 4096);
  }

  /**
   * What a pCPU worker needs to serve `v`'s ioreqs itself (ioreq-fast.ts), or undefined if the
   * domain has no ioreq server. `dm` is missing until the device model has bound vp_eport.
   */
  binding(v: Vcpu): IoreqBinding | undefined {
    const s = this.servers.get(v.domain);
    const port = s?.ports[v.id];
    if (!s || port === undefined) return undefined;
    const b: IoreqBinding = {
      pageAddr: this.hv.mem.addr(s.pageMfn),
      slot: v.id,
      vpEport: port,
      ranges: s.ranges,
      answerBellAddr: this.answerBellAddr(),
      spinUs: this.spinUs,
      yieldUs: this.yieldUs,
      sleepUs: this.sleepUs,
    };
    const c = v.domain.evtchn.get(port);
    if (c?.state === 'interdomain') {
      const rd = this.hv.domains.get(c.remoteDom);
      const rc = rd?.evtchn.get(c.remotePort);
      if (rd && rc && rd.dying === 'alive') {
        b.dm = { sharedInfoAddr: this.hv.mem.addr(rd.sharedInfoMfn), port: c.remotePort, vcpu: rc.vcpu, bellAddr: this.hv.evtchn.bellOf(rd, c.remotePort) };
      }
    }
    return b;
  }

  /** Counters a pCPU worker kept while it served exits itself. */
  addWorkerCounters(c: FastIoCounters): void {
    this.stats.sent += c.sent;
    this.stats.completed += c.completed;
    this.stats.fast += c.completed;
    this.stats.parked += c.parked;
    this.stats.unclaimed += c.unclaimed;
  }

  /** A vCPU exited on I/O: hand it to the device model (or answer all-ones if there is none). */
  send(v: Vcpu, io: IoExit): void {
    if (!io.mmio && !io.string && this.hv.platform.handles(v.domain, io.port)) {
      v.domain.count('exits.hypervisor');
      const value = this.hv.platform.io(v, io);
      v.ioCompletion = value === undefined ? {} : { value };
      return;
    }
    const s = this.servers.get(v.domain);
    if (!s || !claims(s.ranges, io)) {
      this.stats.unclaimed++;
      v.domain.count('exits.hypervisor');
      v.ioCompletion = ioCompletion(io, allOnes(io));
      return;
    }
    writeIoreqSlot(this.hv.mem.buffer, this.hv.mem.addr(s.pageMfn), v.id, io, s.ports[v.id]!);
    this.stats.sent++;
    v.domain.count('exits.ioreq');
    v.domain.count('ioreq.sent');
    this.park(v, io);
    this.hv.evtchn.sendFromXen(v.domain, s.ports[v.id]!);
  }

  /**
   * A pCPU worker sent `io` itself and its bounded wait ran out: the vCPU blocks on the ioreq
   * until the answer's doorbell rings (or the device model's legacy `send` arrives).
   */
  sentByWorker(v: Vcpu, io: IoExit): void {
    if (!this.servers.has(v.domain)) return;
    this.park(v, io);
    this.poll(v); // the answer may have come between the worker's last look and now
  }

  private park(v: Vcpu, io: IoExit): void {
    const s = this.servers.get(v.domain)!;
    s.inflight[v.id] = io;
    v.ioreqPending = true;
    this.hv.vcpuChanged(v);
    this.parked.add(v);
    if (this.watchAnswers) this.answerBellAddr();
    this.watch();
  }

  /** Completes `v`'s ioreq if the device model answered; crashes the guest on an invalid state. */
  private poll(v: Vcpu): void {
    const s = this.servers.get(v.domain);
    const io = s?.inflight[v.id];
    if (!s || !io || !v.ioreqPending || v.domain.dying !== 'alive') {
      this.parked.delete(v);
      return;
    }
    const r = takeIoreqAnswer(this.hv.mem.buffer, this.hv.mem.addr(s.pageMfn), v.id);
    if (r === 'waiting') return;
    if ('bad' in r) {
      this.stats.badResponses++;
      this.parked.delete(v);
      this.hv.crashDomain(v.domain, `its device model broke the ioreq protocol: ${r.bad}`);
      return;
    }
    this.finish(v, s, io, r.data);
  }

  private finish(v: Vcpu, s: Server, io: IoExit, data: number): void {
    s.inflight[v.id] = undefined;
    this.parked.delete(v);
    v.ioCompletion = ioCompletion(io, io.size === 1 ? data & 0xff : data);
    v.ioreqPending = false;
    this.stats.completed++;
    this.hv.vcpuChanged(v);
  }

  /**
   * While vCPUs are parked, sleep on the answer doorbell (a futex wait on a libuv pool thread, so
   * the event loop keeps serving hypercalls) and poll them on every ring; a timeout re-checks too.
   * `seen` is read before polling, so an answer between the poll and the sleep is not lost.
   */
  private watch(): void {
    if (this.watchActive || !this.watchAnswers || !this.bell) return;
    this.watchActive = true;
    this.watching = this.watchLoop(this.bell);
  }

  private async watchLoop(bell: Doorbell): Promise<void> {
    try {
      for (;;) {
        const seen = bell.seq;
        for (const v of [...this.parked]) this.poll(v);
        // Decided and cleared in one synchronous step, so a vCPU parked later starts a new loop.
        if (!this.parked.size || !this.watchAnswers) {
          this.watchActive = false;
          return;
        }
        await bell.waitAsync(seen, 100);
      }
    } catch (e) {
      this.watchActive = false;
      // Machine memory went away under the wait (the host is stopping): nothing left to watch.
      if (this.watchAnswers) this.hv.log(`ioreq: answer watch stopped: ${(e as Error).message}`);
    }
  }

  /** Stops watching (the hypervisor is stopping); resolves once no futex wait is outstanding. */
  async stopWatching(): Promise<void> {
    this.watchAnswers = false;
    this.bell?.ring();
    await this.watching;
  }

  /** The device model signalled one of the Xen-consumed ports of `d` (the socket path, kept as a fallback). */
  xenEvent(d: Domain, port: number): void {
    const s = this.servers.get(d);
    if (!s) return;
    const id = s.ports.indexOf(port);
    const v = d.vcpu(id);
    const io = s.inflight[id];
    if (!v || !io || !v.ioreqPending) return;
    const r = takeIoreqAnswer(this.hv.mem.buffer, this.hv.mem.addr(s.pageMfn), id);
    if (r === 'waiting' || 'bad' in r) {
      this.stats.badResponses++;
      return; // a kick before the answer: keep waiting (the DM must set IORESP_READY first)
    }
    this.finish(v, s, io, r.data);
  }

  /** XEN_DMOP_map_io_range_to_ioreq_server: the device model claims `start`..`end` (inclusive). */
  mapRange(d: Domain, kind: 'port' | 'mmio', start: number, end: number): void {
    const s = this.servers.get(d);
    if (!s) throw new XenError('ENOENT', `d${d.domid} has no ioreq server (HVM_PARAM_IOREQ_PFN is not set)`);
    const list = s.ranges[kind];
    if (list.some(([a, b]) => start <= b && a <= end)) throw new XenError('EEXIST', `${kind} range ${start.toString(16)}-${end.toString(16)} overlaps one already claimed`);
    if (list.length >= 256) throw new XenError('ENOSPC', 'too many io ranges');
    list.push([start, end]);
  }

  /**
   * The device model closed its end of one of `d`'s ioreq channels (or its process died): a vCPU
   * waiting on it would never resume, so the domain crashes — only that domain (issue 7). A domain
   * already shutting down (powered off, being destroyed) is left as it is.
   */
  deviceModelGone(d: Domain): void {
    if (!this.servers.has(d) || d.dying !== 'alive' || d.isShuttingDown) return;
    this.hv.crashDomain(d, 'its device model went away');
  }

  destroy(d: Domain): void {
    for (const v of d.vcpus) this.parked.delete(v);
    this.servers.delete(d);
  }
}
