/**
 * pCPUs in real time: drives the CreditScheduler from timers the way Xen's per-CPU scheduler
 * softirq and timers do (schedule at slice end or when tickled, a tick every 10 ms, accounting
 * every slice), and hands each chosen vCPU to a pluggable `VcpuRunner` for its slice — the x86
 * CPU on a worker thread in a full host, a fake guest in tests. A vCPU with no runner has no
 * guest code to run and blocks at once, as a guest idling in HLT would.
 */
import type { TrapFrame } from '@xenlab/xen-public';
import type { Vcpu } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import type { CreditScheduler } from './credit.ts';

/** Why a vCPU's slice ended. */
export type SliceExit = 'preempted' | 'blocked' | 'yield' | 'crash' | 'io' | 'trap' | 'hypercall';

/** Port I/O (or, with `mmio`, an access outside RAM) the CPU could not complete itself. */
export interface IoExit {
  /** An MMIO access (ioreq type COPY, `port` is then the guest-physical address). */
  mmio?: boolean;
  dir: 'in' | 'out';
  port: number;
  size: 1 | 2;
  value: number;
  string: boolean;
  rep: boolean;
  count: number;
  /** Linear (guest-physical, real mode) address of the string buffer. */
  addr: number;
  step: number;
}

export interface SliceOutcome {
  exit: SliceExit;
  reason?: string;
  io?: IoExit;
  /** The pCPU worker already sent `io` to the device model; the vCPU waits for the answer. */
  ioreqSent?: boolean;
  /** With a `trap` exit: the trap is in the kernel's trap slot, which answers with `iret`. */
  trapParked?: boolean;
  /** A software interrupt in the domain's trap table, with the registers at the trap. */
  trap?: { vector: number; kind: 'int' | 'exception'; frame: TrapFrame };
  /** The registers at a hypercall (`int 82h`). */
  frame?: TrapFrame;
}

export interface VcpuRunner {
  /** Run `v` on pCPU `pcpu` for at most `budgetNs`; resolve when it stops, saying why. */
  run(v: Vcpu, budgetNs: number, pcpu: number): Promise<SliceOutcome>;
  /** Ask the slice running on `pcpu` to stop early (the scheduler has better work for it). */
  preempt?(pcpu: number): void;
  /** Sets registers of a vCPU between slices (a hypercall's result in AX). */
  setContext?(v: Vcpu, regs: Partial<TrapFrame>): void;
}

export class PcpuDriver {
  private readonly runners = new Map<number, VcpuRunner>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sliceTimers: (NodeJS.Timeout | undefined)[];
  private readonly busy: boolean[];
  /** The runner of the slice in progress on each pCPU (to preempt it). */
  private readonly running: (VcpuRunner | undefined)[];
  private readonly pendingResched = new Set<number>();
  private stopped = false;

  constructor(
    private readonly hv: Hypervisor,
    private readonly sched: CreditScheduler,
    /** Finds a runner for a domain with none set explicitly (e.g. the x86 CPU once built). */
    private readonly runnerFor: (d: Vcpu['domain']) => VcpuRunner | undefined = () => undefined,
  ) {
    this.sliceTimers = new Array(sched.pcpus.length).fill(undefined);
    this.busy = new Array(sched.pcpus.length).fill(false);
    this.running = new Array(sched.pcpus.length).fill(undefined);
    sched.tickle = (cpu) => this.resched(cpu);
  }

  /** Attach the code that runs a domain's vCPUs (its x86 CPU, or a fake guest). */
  setRunner(domid: number, runner: VcpuRunner | undefined): void {
    if (runner) this.runners.set(domid, runner);
    else this.runners.delete(domid);
  }

  start(): void {
    const tick = setInterval(() => {
      for (let c = 0; c < this.sched.pcpus.length; c++) this.sched.tick(c);
      this.hv.updateTime();
    }, this.sched.tickNs / 1e6);
    const acct = setInterval(() => this.sched.account(), this.sched.tsliceNs / 1e6);
    tick.unref();
    acct.unref();
    this.timers.push(tick, acct);
    for (let c = 0; c < this.sched.pcpus.length; c++) this.resched(c);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.sliceTimers) if (t) clearTimeout(t);
  }

  private resched(cpu: number): void {
    if (this.stopped) return;
    // A slice in progress is asked to stop at its next check; its end reschedules.
    if (this.busy[cpu]) this.running[cpu]?.preempt?.(cpu);
    if (this.pendingResched.has(cpu)) return;
    this.pendingResched.add(cpu);
    setImmediate(() => {
      this.pendingResched.delete(cpu);
      if (!this.busy[cpu]) void this.schedule(cpu);
    });
  }

  private async schedule(cpu: number): Promise<void> {
    if (this.stopped) return;
    const t = this.sliceTimers[cpu];
    if (t) clearTimeout(t);
    this.sliceTimers[cpu] = undefined;
    const { next, sliceNs } = this.sched.schedule(cpu);
    if (!next) return; // idle until tickled
    const runner = this.runners.get(next.domain.domid) ?? this.runnerFor(next.domain);
    if (!runner) {
      this.hv.blockVcpu(next);
      return;
    }
    this.busy[cpu] = true;
    this.running[cpu] = runner;
    let r: SliceOutcome;
    try {
      r = await runner.run(next, sliceNs, cpu);
    } catch (e) {
      r = { exit: 'crash', reason: (e as Error).message };
    }
    this.busy[cpu] = false;
    this.running[cpu] = undefined;
    // The domain may have been destroyed while its vCPU was on the pCPU: nothing to finish.
    if (next.domain.dying !== 'alive') r = { exit: 'preempted' };
    switch (r.exit) {
      case 'blocked':
        this.hv.blockVcpu(next);
        break;
      case 'yield':
        this.sched.yield(next);
        break;
      case 'crash':
        this.hv.crashDomain(next.domain, r.reason ?? 'vCPU fault');
        break;
      case 'io':
        if (r.ioreqSent) this.hv.ioreq.sentByWorker(next, r.io!);
        else this.hv.ioreq.send(next, r.io!);
        break;
      case 'trap':
        if (r.trapParked) this.hv.parkTrap(next, (regs) => runner.setContext?.(next, regs));
        else this.hv.bounceTrap(next, r.trap!);
        break;
      case 'hypercall': {
        const ret = this.hv.guestHypercall(next, r.frame!);
        runner.setContext?.(next, { ax: ret & 0xffff });
        break;
      }
      case 'preempted':
        break;
    }
    this.resched(cpu);
  }
}
