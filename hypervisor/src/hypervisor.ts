/**
 * The hypervisor core: machine memory and the frame table, the domain table and each domain's
 * lifecycle (xen/common/domain.c), and the glue between event channels, grant tables and the
 * scheduler. It is plain objects and synchronous calls; the process around it (main.ts,
 * hypercall-server.ts) turns hypercalls from sockets into calls here, and tests drive it directly.
 */
import {
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  DOMID_XEN,
  DomId,
  SharedInfoPage,
  SHUTDOWN,
  TRAP_AWAKE,
  VIRQ,
  XEN_DOMCTL_CDF,
  XEN_DOMINF,
  XEN_DOMINF_shutdownshift,
  XEN_LEGACY_MAX_VCPUS,
  XenError,
  shared_info,
  shutdownReasonName,
  type CreateDomainArg,
  type DomainCounters,
  type DomainInfo,
  type Mfn,
  type TrapEvent,
  type TrapFrame,
} from '@xenlab/xen-public';
import { AwakeWindow, envMicros } from '@xenlab/ring-buffers';
import { ConsoleRing } from './console.ts';
import { Domain, MAX_COUNTER_MARKS, type Vcpu } from './domain.ts';
import { EventChannels } from './event-channel.ts';
import { GrantTables } from './grant-table.ts';
import { guestHypercall } from './guest-hypercall.ts';
import { IoreqServers } from './hvm/ioreq.ts';
import { Platforms } from './hvm/platform.ts';
import { FrameKind, FrameTable } from './mm/frame-table.ts';
import type { MachineMemory } from './mm/machine-memory.ts';
import { relinquishMemory } from './mm/memory.ts';

/** What the hypervisor tells the scheduler (Xen's sched_* hooks from common/sched/core.c). */
export interface SchedHooks {
  /** Called once by the Hypervisor that uses this scheduler. */
  attach?(hv: Hypervisor): void;
  insert(v: Vcpu): void;
  remove(v: Vcpu): void;
  /** The vCPU became runnable. */
  wake(v: Vcpu): void;
  /** The vCPU stopped being runnable (if it is running, its pCPU must switch away). */
  sleep(v: Vcpu): void;
  yield(v: Vcpu): void;
  /** Weight, cap or affinity changed. */
  adjust(d: Domain): void;
}

/** A scheduler that runs nothing: runnable vCPUs just wait (unit tests of the other cores). */
export const nullSched: SchedHooks = {
  insert() {},
  remove() {},
  wake() {},
  sleep() {},
  yield() {},
  adjust() {},
};

export interface HypervisorOptions {
  memory: MachineMemory;
  nrPcpus: number;
  /** Monotonic nanoseconds since boot. */
  clock?: () => number;
  sched?: SchedHooks;
  /** An upcall became due on `vcpu` of `d`: ring the domain's doorbell. */
  onEventPending?: (d: Domain, vcpu: number, port?: number) => void;
  /** Wall-clock seconds at boot (for shared_info's wc_* fields). */
  bootWallClockMs?: number;
}

/** Destroyed domains whose final counters are kept for `domainCounters`. */
const RETIRED_COUNTERS = 32;
/** Longest a counter mark waits for a running slice of its domain (slices are ~1 ms). */
const MARK_WAIT_MS = 50;
const ALL_CDF = Object.values(XEN_DOMCTL_CDF).reduce((a, b) => a | b, 0);
const DEFAULT_MAX_EVTCHN_PORT = 1023;

export class Hypervisor {
  readonly mem: MachineMemory;
  readonly frames: FrameTable;
  readonly domains = new Map<number, Domain>();
  readonly evtchn: EventChannels;
  readonly gnttab: GrantTables;
  readonly ioreq: IoreqServers;
  readonly platform: Platforms;
  readonly console = new ConsoleRing();
  readonly nrPcpus: number;
  sched: SchedHooks;
  onEventPending: ((d: Domain, vcpu: number, port?: number) => void) | undefined;
  /** Delivers a trap to the domain's kernel process; false if it has none connected. */
  onTrap: ((d: Domain, ev: TrapEvent) => boolean) | undefined;
  /** Kept open after a trap is bounced, until the kernel's iret (TRAP_AWAKE; awake.ts). */
  readonly trapAwake = new AwakeWindow(envMicros(TRAP_AWAKE.env, TRAP_AWAKE.defaultUs));
  private readonly clock: () => number;
  private readonly bootWallClockMs: number;
  private domidRover = 0;
  private readonly sharedInfoViews = new Map<number, SharedInfoPage>();
  /** Final counters of the last RETIRED_COUNTERS destroyed domains (a benchmark reads them after the guest powered off). */
  private readonly retiredCounters = new Map<number, Pick<DomainCounters, 'counters' | 'marks'>>();

  constructor(opts: HypervisorOptions) {
    this.mem = opts.memory;
    this.frames = new FrameTable(this.mem);
    this.nrPcpus = opts.nrPcpus;
    this.sched = opts.sched ?? nullSched;
    this.onEventPending = opts.onEventPending;
    const t0 = performance.now();
    this.clock = opts.clock ?? (() => Math.round((performance.now() - t0) * 1e6));
    this.bootWallClockMs = opts.bootWallClockMs ?? Date.now();
    this.evtchn = new EventChannels(this);
    this.gnttab = new GrantTables(this);
    this.ioreq = new IoreqServers(this);
    this.platform = new Platforms(this);
    this.sched.attach?.(this);
    // New console output: dom0 may bind VIRQ_CON_RING to follow it (as `xl dmesg` readers do).
    this.console.onWrite = () => this.sendGlobalVirq(VIRQ.CON_RING);
    this.frames.onFreed = (ev) => {
      const d = this.domains.get(ev.owner);
      if (!d || ev.kind === FrameKind.xen) return;
      d.ownedFrames--;
      if (d.dying === 'dead' && d.ownedFrames === 0) this.finalise(d);
    };
    this.console.line('', `xenlab hypervisor: ${this.mem.nrFrames} frames (${(this.mem.nrFrames * 4) >> 10} MiB), ${this.nrPcpus} pCPUs`);
  }

  now(): number {
    return this.clock();
  }

  log(msg: string): void {
    this.console.line('', msg);
  }

  /** Allocates a frame for `d` and counts it as the domain's. */
  allocFrame(d: Domain, kind: Exclude<FrameKind, 0>): Mfn | undefined {
    const mfn = this.frames.alloc(d.domid, kind);
    if (mfn !== undefined) d.ownedFrames++;
    return mfn;
  }

  /**
   * Resolves a domid argument as Xen's rcu_lock_domain_by_any_id + XSM: DOMID_SELF or the
   * caller's own id is the caller; any other live domain only for a privileged caller.
   */
  lookupDomain(caller: Domain, domid: number): Domain {
    if (domid === DOMID_SELF || domid === caller.domid) return caller;
    const d = this.domains.get(domid);
    if (!d || d.dying !== 'alive') throw new XenError('ESRCH', `no domain ${domid}`);
    if (!caller.privileged) throw new XenError('EPERM', `d${caller.domid} may not operate on d${domid}`);
    return d;
  }

  requirePrivileged(caller: Domain): void {
    if (!caller.privileged) throw new XenError('EPERM', `d${caller.domid} is not privileged`);
  }

  sharedInfo(d: Domain): SharedInfoPage {
    let p = this.sharedInfoViews.get(d.domid);
    if (!p) {
      p = new SharedInfoPage(this.mem.buffer, this.mem.addr(d.sharedInfoMfn));
      this.sharedInfoViews.set(d.domid, p);
    }
    return p;
  }

  /** XEN_DOMCTL_createdomain. Domain 0 is only created at boot, with `privileged`. */
  createDomain(arg: CreateDomainArg, opts: { privileged?: boolean } = {}): Domain {
    const flags = arg.flags ?? 0;
    if (flags & ~ALL_CDF) throw new XenError('EINVAL', `unknown createdomain flags 0x${flags.toString(16)}`);
    if (flags & XEN_DOMCTL_CDF.hap && !(flags & XEN_DOMCTL_CDF.hvm)) throw new XenError('EINVAL', 'hap needs hvm');
    const maxVcpus = arg.max_vcpus;
    if (!Number.isInteger(maxVcpus) || maxVcpus < 1 || maxVcpus > XEN_LEGACY_MAX_VCPUS) {
      throw new XenError('EINVAL', `max_vcpus ${maxVcpus} must be 1..${XEN_LEGACY_MAX_VCPUS}`);
    }
    const handle = arg.handle ?? '0'.repeat(32);
    if (!/^[0-9a-f]{32}$/i.test(handle)) throw new XenError('EINVAL', 'handle must be 32 hex digits');
    let domid: number;
    if (opts.privileged && arg.domain === 0 && !this.domains.has(0)) domid = 0;
    else domid = this.pickDomid(arg.domain ?? 0);

    const d = new Domain({
      domid: DomId(domid),
      handle: handle.toLowerCase(),
      flags,
      ssidref: arg.ssidref ?? 0,
      maxVcpus,
      maxEvtchnPort: arg.max_evtchn_port && arg.max_evtchn_port > 0 ? arg.max_evtchn_port : DEFAULT_MAX_EVTCHN_PORT,
      maxGrantFrames: arg.max_grant_frames && arg.max_grant_frames > 0 ? arg.max_grant_frames : 0,
      privileged: opts.privileged === true,
    });
    if (this.frames.freeFrames < 3) throw new XenError('ENOMEM', 'no machine memory for a new domain');
    d.sharedInfoMfn = this.allocFrame(d, FrameKind.shared_info)!;
    d.evtchnPageMfn = this.frames.alloc(DOMID_XEN, FrameKind.xen)!;
    this.domains.set(domid, d);
    this.retiredCounters.delete(domid);
    this.evtchn.init(d);
    this.gnttab.init(d, { maxFrames: d.maxGrantFrames, maxMaptrackFrames: arg.max_maptrack_frames });
    this.writeWallClock(d);
    const now = this.now();
    for (const v of d.addVcpus(maxVcpus)) {
      v.runstateEntry = now;
      this.sched.insert(v);
    }
    // vCPU 0 is brought up by the domain builder; others come up with VCPUOP_up.
    d.vcpus[0]!.online = true;
    this.vcpuChanged(d.vcpus[0]!);
    this.log(`d${domid}: created (${d.isHvm ? 'HVM' : 'PV'}, ${maxVcpus} vCPUs)`);
    return d;
  }

  private pickDomid(requested: number): number {
    if (requested > 0 && requested < DOMID_FIRST_RESERVED) {
      if (!Number.isInteger(requested)) throw new XenError('EINVAL', `bad domid ${requested}`);
      if (this.domains.has(requested)) throw new XenError('EEXIST', `domain ${requested} exists`);
      return requested;
    }
    for (let i = 0; i < DOMID_FIRST_RESERVED; i++) {
      let dom = this.domidRover + 1 + i;
      dom = ((dom - 1) % (DOMID_FIRST_RESERVED - 1)) + 1;
      if (!this.domains.has(dom)) {
        this.domidRover = dom;
        return dom;
      }
    }
    throw new XenError('ENOMEM', 'no free domain ids');
  }

  private writeWallClock(d: Domain): void {
    const dv = new DataView(this.mem.buffer, this.mem.addr(d.sharedInfoMfn), 4096);
    const ms = this.bootWallClockMs;
    const sec = Math.floor(ms / 1000);
    const f = shared_info.fields;
    dv.setUint32(f.wc_version.offset, 2, true);
    dv.setUint32(f.wc_sec.offset, sec >>> 0, true);
    dv.setUint32(f.wc_nsec.offset, (ms % 1000) * 1e6, true);
    dv.setUint32(f.wc_sec_hi.offset, Math.floor(sec / 2 ** 32), true);
  }

  /** Re-evaluates a vCPU after any change of its flags: tells the scheduler, updates runstate. */
  vcpuChanged(v: Vcpu): void {
    const now = this.now();
    const runnable = v.isRunnable();
    if (v.external) {
      const st = runnable ? 'running' : v.online && v.blocked ? 'blocked' : 'offline';
      if (v.runstate !== st) v.setRunstate(st, now);
      return;
    }
    if (v.runstate !== 'running') {
      const st = v.idleRunstate();
      if (v.runstate !== st) v.setRunstate(st, now);
    }
    if (runnable) this.sched.wake(v);
    else this.sched.sleep(v);
  }

  /**
   * Publishes system time in every vCPU's `vcpu_time_info` (fact sheet §8.1), seqlock-style:
   * `version` goes odd, the fields change, `version` goes even. xenlab has no TSC, so the
   * "TSC" is nanoseconds since boot: `tsc_timestamp` = `system_time`, `tsc_to_system_mul` =
   * 2^32 - 1 with shift 0 (about 1:1), so a reader extrapolates with its own ns clock.
   */
  updateTime(now = this.now()): void {
    const T = 32; // vcpu_info.time offset
    for (const d of this.domains.values()) {
      if (d.dying !== 'alive') continue;
      const dv = new DataView(this.mem.buffer, this.mem.addr(d.sharedInfoMfn), 4096);
      const u32 = new Uint32Array(this.mem.buffer, this.mem.addr(d.sharedInfoMfn), 1024);
      for (const v of d.vcpus) {
        const base = v.id * 64 + T;
        // Sequentially consistent stores order the version around the fields (the barriers).
        const odd = ((Atomics.load(u32, base / 4) + 1) | 1) >>> 0;
        Atomics.store(u32, base / 4, odd);
        dv.setBigUint64(base + 8, BigInt(now), true);
        dv.setBigUint64(base + 16, BigInt(now), true);
        dv.setUint32(base + 24, 0xffffffff, true);
        dv.setInt8(base + 28, 0);
        Atomics.store(u32, base / 4, (odd + 1) >>> 0);
      }
    }
  }

  /** Port I/O of this domain's guest leaves the CPU (HVM platform devices, or a device model). */
  forwardsIo(d: Domain): boolean {
    return d.isHvm || this.ioreq.has(d);
  }

  private readonly timers = new Map<Domain, NodeJS.Timeout>();

  /**
   * set_timer_op: a one-shot timer at system time `deadlineNs` (0 cancels) that raises
   * VIRQ_TIMER on vCPU 0 (PV guests' timer interrupt).
   */
  setTimer(d: Domain, deadlineNs: number): void {
    this.cancelTimer(d);
    if (!deadlineNs) return;
    const t = setTimeout(() => {
      this.timers.delete(d);
      if (d.dying === 'alive') this.evtchn.sendVirq(d, VIRQ.TIMER, 0);
    }, Math.max(0, (deadlineNs - this.now()) / 1e6));
    t.unref();
    this.timers.set(d, t);
  }

  cancelTimer(d: Domain): void {
    const t = this.timers.get(d);
    if (t) clearTimeout(t);
    this.timers.delete(d);
  }

  /** Event delivery: wake a vCPU blocked waiting for events and ring the domain's doorbell. */
  kick(d: Domain, vcpu: number, port?: number): void {
    d.count('evtchn.delivered');
    const v = d.vcpu(vcpu);
    if (v?.blocked) {
      v.blocked = false;
      if (!d.isHvm) v.resumeFromHalt = true;
      this.vcpuChanged(v);
    }
    this.onEventPending?.(d, vcpu, port);
  }

  /** SCHEDOP_block: sleep until an event, unless one is already due (local_events_need_delivery). */
  blockVcpu(v: Vcpu): void {
    // An HVM vCPU halting with interrupts queued for it takes them on its next slice instead.
    if (v.domain.isHvm && v.pendingIrqs.length) return;
    const si = this.sharedInfo(v.domain);
    if (si.upcallPending(v.id) && !si.upcallMask(v.id)) {
      // An event is already due: a PV vCPU's HLT returns at once (no spinning on a halted CPU).
      if (!v.domain.isHvm) v.resumeFromHalt = true;
      return;
    }
    v.blocked = true;
    this.vcpuChanged(v);
  }

  pauseDomain(d: Domain): void {
    if (d.dying !== 'alive') throw new XenError('EINVAL', `d${d.domid} is dying`);
    d.controllerPause++;
    for (const v of d.vcpus) this.vcpuChanged(v);
  }

  unpauseDomain(d: Domain): void {
    if (d.controllerPause === 0) throw new XenError('EINVAL', `d${d.domid} is not paused`);
    d.controllerPause--;
    for (const v of d.vcpus) this.vcpuChanged(v);
  }

  /** domain_shutdown: the first reason sticks; vCPUs stop; dom0 learns through VIRQ_DOM_EXC. */
  shutdownDomain(d: Domain, reason: number): void {
    if (!Number.isInteger(reason) || reason < 0 || reason > 255) throw new XenError('EINVAL', `bad shutdown reason ${reason}`);
    if (d.isShuttingDown) return;
    d.isShuttingDown = true;
    d.shutdownCode = reason;
    for (const v of d.vcpus) this.vcpuChanged(v);
    this.log(`d${d.domid}: shutdown (${shutdownReasonName(reason) ?? reason})${d.crashReason ? `: ${d.crashReason}` : ''}`);
    this.sendGlobalVirq(VIRQ.DOM_EXC);
  }

  /**
   * A PV vCPU executed a vector of its trap table: block it and hand the registers to the
   * domain's kernel process, which answers with `iret` (ARCHITECTURE.md, "A PV disk read").
   */
  bounceTrap(v: Vcpu, trap: { vector: number; kind: 'int' | 'exception'; frame: TrapFrame }): void {
    v.trapPending = true;
    v.domain.count(`trap.int${trap.vector.toString(16).padStart(2, '0')}`);
    this.vcpuChanged(v);
    const ev: TrapEvent = { event: 'trap', vcpu: v.id, vector: trap.vector, kind: trap.kind, frame: trap.frame };
    // The kernel's iret is due soon: keep the main loop looking for it rather than sleeping.
    this.trapAwake.extend();
    if (!this.onTrap?.(v.domain, ev)) {
      this.crashDomain(v.domain, `vCPU ${v.id} trapped on vector ${trap.vector.toString(16)}h with no kernel process to serve it`);
    }
  }

  /**
   * A trap posted in the kernel's trap slot that the pCPU worker stopped waiting for: the vCPU
   * stays blocked in it until the kernel's `iret` (the kernel has the trap already: nothing is
   * sent; the worker counted it).
   */
  parkTrap(v: Vcpu, setContext: (regs: Record<string, number>) => void): void {
    v.domain.count('trap.parked');
    const early = v.earlyIret;
    if (early) {
      // The kernel answered before the slice came back: resume at once.
      v.earlyIret = undefined;
      setContext(early);
    } else {
      v.trapPending = true;
    }
    this.vcpuChanged(v);
  }

  /** A hypercall from guest code (`int 82h`); returns AX (0 or -errno). */
  guestHypercall(v: Vcpu, frame: TrapFrame): number {
    v.domain.count('hypercall.int82');
    return guestHypercall(this, v, frame);
  }

  crashDomain(d: Domain, why: string): void {
    d.crashReason ??= why;
    this.shutdownDomain(d, SHUTDOWN.crash);
  }

  /** Global VIRQs go to the hardware domain (dom0), as Xen's default handler. */
  sendGlobalVirq(virq: number): void {
    const d0 = this.domains.get(0);
    if (d0 && d0.dying === 'alive') this.evtchn.sendVirq(d0, virq, 0);
  }

  /**
   * domain_kill + domain_destroy: release everything the domain holds. Frames others still map
   * keep the domain as a zombie ("dying" in getdomaininfo) until they are unmapped.
   */
  destroyDomain(d: Domain): void {
    if (d.dying !== 'alive') return;
    d.dying = 'dying';
    d.pauseCount++;
    for (const v of d.vcpus) {
      this.vcpuChanged(v);
      this.sched.remove(v);
    }
    this.ioreq.destroy(d);
    this.platform.destroy(d);
    this.cancelTimer(d);
    this.evtchn.destroyDomain(d);
    this.gnttab.releaseMappings(d);
    this.gnttab.destroyTable(d);
    relinquishMemory(this, d);
    this.frames.release(d.sharedInfoMfn);
    this.frames.release(d.evtchnPageMfn);
    this.sharedInfoViews.delete(d.domid);
    this.retiredCounters.delete(d.domid);
    this.retiredCounters.set(d.domid, { counters: { ...d.counters }, marks: d.counterMarks.slice() });
    if (this.retiredCounters.size > RETIRED_COUNTERS) this.retiredCounters.delete(this.retiredCounters.keys().next().value!);
    d.dying = 'dead';
    this.log(`d${d.domid}: destroyed${d.ownedFrames ? ` (${d.ownedFrames} frames still mapped by others)` : ''}`);
    if (d.ownedFrames === 0) this.finalise(d);
    this.sendGlobalVirq(VIRQ.DOM_EXC);
  }

  private finalise(d: Domain): void {
    this.domains.delete(d.domid);
  }

  /** The `(process died)` path: the domain crashes, its grants and ports are released at once. */
  processDied(d: Domain, why: string): void {
    if (d.dying !== 'alive') return;
    this.crashDomain(d, why);
    this.evtchn.destroyDomain(d);
    this.gnttab.releaseMappings(d);
  }

  /** Slices of each domain's vCPUs running on pCPU workers now: their counts arrive when they end. */
  private readonly slicesRunning = new Map<Domain, number>();
  private readonly sliceWaiters = new Map<Domain, (() => void)[]>();

  /** A pCPU worker started / ended (and counted) a slice of `d`. */
  sliceStarted(d: Domain): void {
    this.slicesRunning.set(d, (this.slicesRunning.get(d) ?? 0) + 1);
  }

  sliceEnded(d: Domain): void {
    const n = (this.slicesRunning.get(d) ?? 1) - 1;
    if (n > 0) return void this.slicesRunning.set(d, n);
    this.slicesRunning.delete(d);
    for (const w of this.sliceWaiters.get(d) ?? []) w();
    this.sliceWaiters.delete(d);
  }

  /**
   * domctl xenlab_counters_mark: snapshot `d`'s counters, with the marking process's own. A vCPU
   * of `d` in a slice on a pCPU worker (an HVM vCPU waiting there for the ioreq its device model
   * marks on) has counts not added yet: the snapshot waits for those slices to end (bounded by
   * MARK_WAIT_MS), and the promise says when it was taken.
   */
  markCounters(d: Domain, label: string, extra: Record<string, number>): Promise<void> | undefined {
    const take = (): void => {
      if (d.counterMarks.length >= MAX_COUNTER_MARKS) d.counterMarks.shift();
      d.counterMarks.push({ label, t_ns: this.now(), counters: { ...d.counters }, extra });
    };
    if (!this.slicesRunning.has(d)) return void take();
    return new Promise<void>((resolve) => {
      let done = false;
      const fire = () => {
        if (done) return;
        done = true;
        take();
        resolve();
      };
      const list = this.sliceWaiters.get(d) ?? [];
      list.push(fire);
      this.sliceWaiters.set(d, list);
      setTimeout(fire, MARK_WAIT_MS).unref();
    });
  }

  /** sysctl xenlab_domain_counters: live counters, or the final ones of a recently destroyed domain. */
  domainCounters(domid: number): DomainCounters {
    const d = this.domains.get(domid);
    const now_ns = this.now();
    if (d && d.dying === 'alive') return { domain: domid, alive: true, now_ns, counters: { ...d.counters }, marks: d.counterMarks.slice() };
    const r = this.retiredCounters.get(domid);
    if (!r) throw new XenError('ESRCH', `no domain ${domid}, live or recently destroyed`);
    return { domain: domid, alive: false, now_ns, counters: { ...r.counters }, marks: r.marks.slice() };
  }

  /** XEN_DOMCTL_getdomaininfo for `domid`, or the next higher existing domain. */
  getDomainInfo(domid: number): DomainInfo {
    let best: Domain | undefined;
    for (const d of this.domains.values()) if (d.domid >= domid && (!best || d.domid < best.domid)) best = d;
    if (!best) throw new XenError('ESRCH', `no domain at or above ${domid}`);
    return this.domainInfo(best);
  }

  domainInfo(d: Domain): DomainInfo {
    const now = this.now();
    let flags = 0;
    if (d.dying === 'dead') flags |= XEN_DOMINF.dying;
    if (d.isHvm) flags |= XEN_DOMINF.hvm_guest;
    if (d.flags & XEN_DOMCTL_CDF.hap) flags |= XEN_DOMINF.hap;
    if (d.flags & XEN_DOMCTL_CDF.xs_domain) flags |= XEN_DOMINF.xs_domain;
    if (d.isShuttingDown) flags |= XEN_DOMINF.shutdown;
    if (d.controllerPause > 0) flags |= XEN_DOMINF.paused;
    const online = d.vcpus.filter((v) => v.online);
    if (online.some((v) => v.runstate === 'running')) flags |= XEN_DOMINF.running;
    if (online.length > 0 && online.every((v) => v.blocked)) flags |= XEN_DOMINF.blocked;
    if (d.shutdownCode >= 0) flags |= (d.shutdownCode & 0xff) << XEN_DOMINF_shutdownshift;
    return {
      domain: d.domid,
      flags: flags >>> 0,
      tot_pages: d.totPages,
      max_pages: d.maxPages,
      outstanding_pages: 0,
      shr_pages: 0,
      paged_pages: 0,
      shared_info_frame: d.dying === 'alive' ? d.sharedInfoMfn : 0,
      cpu_time: d.cpuTime(now),
      nr_online_vcpus: online.length,
      max_vcpu_id: d.vcpus.length ? d.vcpus.length - 1 : 0xffffffff,
      ssidref: d.ssidref,
      handle: d.handle,
      cpupool: 0,
      gpaddr_bits: 52,
    };
  }
}
