/**
 * Domains and vCPUs: the objects Xen keeps in `struct domain` / `struct vcpu`
 * (xen/include/xen/sched.h), reduced to what xenlab needs. Lifecycle lives in hypervisor.ts.
 */
import {
  RUNSTATE,
  VcpuId,
  type DomId,
  type Mfn,
  type RunstateName,
} from '@xenlab/xen-public';
import { P2m } from './mm/p2m.ts';
import type { EvtchnTable } from './event-channel.ts';
import type { GrantTable } from './grant-table.ts';

/** DOMDYING_*: alive, dying (resources being relinquished), dead (only frames others map remain). */
export type DyingState = 'alive' | 'dying' | 'dead';

export class Vcpu {
  online = false;
  /** Blocked waiting for an event (SCHEDOP_block, HLT) — Xen's _VPF_blocked. */
  blocked = false;
  /** Paused by the credit scheduler because its domain's cap ran out. */
  parked = false;
  /** Waiting for the device model to answer an ioreq (hvm/ioreq.ts). */
  ioreqPending = false;
  /** A trapped software interrupt is with the domain's kernel process, awaiting `iret`. */
  trapPending = false;
  /** The kernel's `iret` for a trap the pCPU worker parked in the trap slot, come before the worker's slice did. */
  earlyIret: Record<string, number> | undefined;
  /** The answer to hand the CPU before its next slice (IN value, or a completed string I/O). */
  ioCompletion: { value?: number; mmio?: boolean } | undefined;
  /** Interrupt vectors to inject into its CPU before its next slice (HVM PIC deliveries). */
  pendingIrqs: number[] = [];
  /**
   * PV: an event arrived for a vCPU halted in HLT (or was already due when it halted): its CPU
   * leaves the halt before the next slice, as SCHEDOP_block returns in Xen. HVM vCPUs leave HLT
   * by an interrupt instead.
   */
  resumeFromHalt = false;
  /** Where it runs (or last ran); -1 before it ever ran. */
  pcpu = -1;
  /** Hard affinity: pCPUs allowed (`null` = all). Soft affinity is recorded but only reported. */
  hardAffinity: number[] | null = null;
  softAffinity: number[] | null = null;
  /**
   * An external vCPU is executed by a process rather than by a pCPU thread (dom0's vCPU is
   * the dom0 process): its runstate follows the process, not the scheduler.
   */
  external = false;

  /**
   * Where an external vCPU is reported to run (getvcpuinfo's `cpu`, `xl vcpu-list`): its own
   * slot (vCPU id modulo the pCPUs) while its hard affinity allows it, else its first allowed
   * pCPU. Called when it becomes external and whenever its hard affinity changes.
   */
  placeExternal(nrPcpus: number): void {
    const home = this.id % nrPcpus;
    const allowed = this.hardAffinity;
    this.pcpu = !allowed || allowed.includes(home) ? home : allowed[0]!;
  }

  runstate: RunstateName = 'offline';
  runstateEntry = 0;
  /** Nanoseconds spent in each runstate (index RUNSTATE.*). */
  readonly runstateTime = [0, 0, 0, 0];
  /** Opaque per-vCPU state of the scheduler policy. */
  sched: unknown;

  constructor(
    readonly domain: Domain,
    readonly id: VcpuId,
  ) {}

  /** Can the scheduler run it? (Xen's vcpu_runnable: no pause flags, no pause count.) */
  isRunnable(): boolean {
    const d = this.domain;
    return (
      this.online &&
      !this.blocked &&
      !this.parked &&
      !this.ioreqPending &&
      !this.trapPending &&
      d.controllerPause === 0 &&
      d.pauseCount === 0 &&
      !d.isShuttingDown &&
      d.dying === 'alive'
    );
  }

  /** The runstate of this vCPU while it is not on a pCPU. */
  idleRunstate(): RunstateName {
    if (this.isRunnable()) return 'runnable';
    return this.online && (this.blocked || this.ioreqPending || this.trapPending) && !this.parked ? 'blocked' : 'offline';
  }

  /** Changes runstate at time `now` (ns), charging the time spent in the previous one. */
  setRunstate(state: RunstateName, now: number): void {
    this.runstateTime[RUNSTATE[this.runstate]]! += Math.max(0, now - this.runstateEntry);
    this.runstate = state;
    this.runstateEntry = now;
  }

  /** Time in each runstate up to `now`, including the current one. */
  runstateTimes(now: number): number[] {
    const t = [...this.runstateTime];
    t[RUNSTATE[this.runstate]]! += Math.max(0, now - this.runstateEntry);
    return t;
  }
}

export interface DomainConfig {
  domid: DomId;
  handle: string;
  flags: number;
  ssidref: number;
  maxVcpus: number;
  maxEvtchnPort: number;
  maxGrantFrames: number;
  privileged: boolean;
}

/** A snapshot of a domain's counters taken at a moment a process marked (domctl xenlab_counters_mark). */
export interface CounterMark {
  label: string;
  /** Hypervisor system time, ns since boot. */
  t_ns: number;
  counters: Record<string, number>;
  /** Counters the marking process reported for itself (a shim's blkfront, qemu-dm's devices). */
  extra: Record<string, number>;
}
export const MAX_COUNTER_MARKS = 16;

export class Domain {
  readonly domid: DomId;
  handle: string;
  readonly flags: number;
  readonly ssidref: number;
  readonly privileged: boolean;
  readonly maxEvtchnPort: number;
  readonly maxGrantFrames: number;
  vcpus: Vcpu[] = [];
  maxVcpus: number;
  /** Limit on RAM frames (XEN_DOMCTL_max_mem, in pages); 0 until the toolstack sets it. */
  maxPages = 0;
  /** RAM frames currently in the P2M (tot_pages). */
  totPages = 0;
  /** Every frame still owned, of any kind, including ones kept alive only by others' mappings. */
  ownedFrames = 0;
  readonly p2m = new P2m();
  /** Pause count held by the controller (XEN_DOMCTL_pausedomain); domains are created paused. */
  controllerPause = 1;
  /** Pause count held by the hypervisor itself (e.g. while destroying). */
  pauseCount = 0;
  isShuttingDown = false;
  /** SHUTDOWN_* code once shut down (or recorded via shutdown_code); -1 if none. */
  shutdownCode = -1;
  dying: DyingState = 'alive';
  sharedInfoMfn!: Mfn;
  /** xenlab: this domain's doorbell and fast-path page (owned by DOMID_XEN). */
  evtchnPageMfn!: Mfn;
  gnttab!: GrantTable;
  evtchn!: EvtchnTable;
  /** Credit scheduler parameters (XEN_DOMCTL_SCHEDOP_*). */
  weight = 256;
  cap = 0;
  readonly hvmParams = new Map<number, number>();
  /** Vectors of the PV trap table (set_trap_table): INT n on these bounces to the kernel process. */
  trapVectors: number[] = [];
  /** Byte address in machine memory of the kernel's trap-slot page (xen-public trap-slot.ts), if it registered one. */
  trapSlotAddr: number | undefined;
  /** Set when a process bound to this domain's connection dies; a log line's worth of why. */
  crashReason: string | undefined;
  /**
   * xenlab's per-domain performance counters (Xen keeps global perfc; these are per domain so
   * a benchmark can explain one guest): exits by reason and port, ioreqs, trap bounces,
   * hypercalls, events, grant operations on its grants. Keys: xen-public `DomainCounters`.
   */
  readonly counters: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Counter marks (domctl xenlab_counters_mark), oldest first, at most MAX_COUNTER_MARKS. */
  readonly counterMarks: CounterMark[] = [];

  count(key: string, n = 1): void {
    this.counters[key] = (this.counters[key] ?? 0) + n;
  }

  /** Adds a flat set of counts (a pCPU worker's per-slice exits). */
  countAll(c: Readonly<Record<string, number>>): void {
    for (const k in c) this.counters[k] = (this.counters[k] ?? 0) + c[k]!;
  }

  constructor(cfg: DomainConfig) {
    this.domid = cfg.domid;
    this.handle = cfg.handle;
    this.flags = cfg.flags;
    this.ssidref = cfg.ssidref;
    this.privileged = cfg.privileged;
    this.maxVcpus = cfg.maxVcpus;
    this.maxEvtchnPort = cfg.maxEvtchnPort;
    this.maxGrantFrames = cfg.maxGrantFrames;
  }

  get isHvm(): boolean {
    return (this.flags & 1) !== 0;
  }

  vcpu(id: number): Vcpu | undefined {
    return Number.isInteger(id) && id >= 0 ? this.vcpus[id] : undefined;
  }

  cpuTime(now: number): number {
    let t = 0;
    for (const v of this.vcpus) t += v.runstateTimes(now)[RUNSTATE.running]!;
    return t;
  }

  addVcpus(n: number): Vcpu[] {
    const added: Vcpu[] = [];
    for (let i = this.vcpus.length; i < n; i++) {
      const v = new Vcpu(this, VcpuId(i));
      this.vcpus.push(v);
      added.push(v);
    }
    return added;
  }
}
