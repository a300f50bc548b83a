/**
 * pCPUs as worker threads (ARCHITECTURE.md, "Processes": "its pCPUs are worker threads"): one
 * thread per pCPU (sched/pcpu-thread.ts) runs the x86 CPU for each slice the scheduler decides,
 * while the hypervisor's main thread keeps serving hypercalls. The vCPU's register state lives
 * here between slices and travels with each request, so vCPUs migrate freely between pCPUs.
 */
import { Worker } from 'node:worker_threads';
import type { CpuState } from '@xenlab/x86-cpu';
import { envMicros } from '@xenlab/ring-buffers';
import { workerEntry, type VcpuContext } from '@xenlab/xen-public';
import type { Domain, Vcpu } from '../domain.ts';
import type { Hypervisor } from '../hypervisor.ts';
import { X86RunnerBase, applyContext, outcome } from '../x86-runner.ts';
import type { FastIoCounters, IoreqBinding } from '../hvm/ioreq-fast.ts';
import type { PlatformBinding } from '../hvm/platform.ts';
import { makeCpu, type SliceResult } from '../x86-slice.ts';
import type { SliceOutcome } from './pcpu.ts';

export interface SliceRequest {
  id: number;
  state: CpuState;
  /** MFN backing each of the first 256 GFNs, -1 for a hole. */
  mfns: number[];
  budgetNs: number;
  /** Forward port I/O to the hypervisor (the domain has an ioreq server). */
  forwardIo: boolean;
  /** Complete the I/O the vCPU exited on before running (the device model's answer). */
  completeIo?: { value?: number; mmio?: boolean };
  /** Send accesses outside RAM to the device model too. */
  forwardMmio: boolean;
  /** The domain's trap-table vectors (exit instead of vectoring through the IVT). */
  trapVectors: number[];
  /** Interrupt vectors to raise before running (PIC deliveries). */
  irqs: number[];
  /** The vCPU's ioreq slot and device-model channel: the worker serves ioreqs itself (hvm/ioreq-fast.ts). */
  ioreq?: IoreqBinding;
  /** An HVM domain's PIC/PIT (shared state): the worker emulates their ports (hvm/platform.ts). */
  platform?: PlatformBinding;
  /** The PV kernel's trap-slot page (its byte address), this vCPU's slot, and how long to wait for an answer (spinning the first `spinUs`). */
  trapSlot?: { addr: number; vcpu: number; spinUs: number; yieldUs?: number; waitUs: number };
}
export interface SliceReply extends SliceResult {
  id: number;
  /** Wall-clock ns the worker spent in the slice (running the guest and serving its exits in place). */
  runNs: number;
  /** The worker thread's CPU time for the slice, and ns the OS kept it waiting for a CPU (Linux schedstat; absent elsewhere). */
  cpuNs?: number;
  waitNs?: number;
  state: CpuState;
  console: number[];
  unclaimed: number;
  ioreqCounters: FastIoCounters;
  /** PIC/PIT accesses the worker emulated, and interrupts it delivered into the CPU. */
  platformExits: number;
  injected: number;
  /** The slice's VM exits by reason and port (x86-slice.ts countExit). */
  exits: Record<string, number>;
}
/** A message from a worker in the middle of a slice (the slow path of platform emulation). */
export interface WorkerNotice {
  /** The running domain's PIT period changed: re-arm its tick. */
  notice: 'platform';
}

const RESET_STATE: CpuState = makeCpu(new Array(256).fill(null), { consoleByte() {}, unclaimed() {}, forward: () => false }).getState();

/** A slice's exits into its domain's counters: what left the CPU, and who served it. */
function countSlice(d: Domain, r: SliceReply): void {
  d.countAll(r.exits);
  d.count('instructions', r.instructions);
  // The vCPU's time on a pCPU as the pCPU measured it (Xen's runstate "running", without the
  // scheduler's hand-over): phase time minus this is time the vCPU waited (trap bounces, ioreqs
  // to the device model, being runnable with no pCPU free).
  d.count('pcpu.slices');
  d.count('pcpu.run_ns', r.runNs);
  // What the host OS gave the pCPU thread meanwhile: CPU time, and time runnable without a CPU
  // (the host's steal time, part of run_ns: on a busy machine, much of it).
  if (r.cpuNs !== undefined) d.count('pcpu.cpu_ns', r.cpuNs);
  if (r.waitNs !== undefined) d.count('pcpu.os_wait_ns', r.waitNs);
  const local = r.platformExits + r.ioreqCounters.unclaimed;
  if (local) d.count('exits.hypervisor', local);
  if (r.ioreqCounters.sent) {
    d.count('exits.ioreq', r.ioreqCounters.sent);
    d.count('ioreq.sent', r.ioreqCounters.sent);
  }
}

export class WorkerX86Runner extends X86RunnerBase {
  /**
   * How long a worker waits in the slice for the kernel's answer to a trap before it parks the
   * vCPU (XENLAB_TRAP_WAIT_US, default 500: a BIOS disk call through blkfront fits): spinning the
   * first XENLAB_TRAP_SPIN_US (default 10), then looking with the core yielded before each look
   * for XENLAB_TRAP_YIELD_US (default 300), then asleep on the answer doorbell (answer-wait.ts).
   * A short spin: the shim and dom0 need the host's other core while they serve the call (2,000
   * INT 13h and 10,000 INT 11h in a row ran 5-15% faster with 0-10 us than with 50 or 150); the
   * yielding looks give them that core yet catch the answer without a ~45 us wake-up
   * (xenlab-bench, three alternating runs: PV randread +30%, console +15%, seqread unchanged).
   */
  trapWaitUs = envMicros('XENLAB_TRAP_WAIT_US', 500);
  trapSpinUs = envMicros('XENLAB_TRAP_SPIN_US', 10);
  trapYieldUs = envMicros('XENLAB_TRAP_YIELD_US', 300);
  private readonly workers: Worker[];
  private readonly states = new Map<Vcpu, CpuState>();
  private readonly pending = new Map<number, { resolve(r: SliceReply): void; reject(e: Error): void }>();
  private nextId = 1;
  /** The vCPU each worker is running (for its mid-slice notices). */
  private readonly onPcpu: (Vcpu | undefined)[] = [];
  /** One word per pCPU, set to ask its thread to end the current slice (an IPI). */
  private readonly preemptFlags: Int32Array;

  constructor(hv: Hypervisor, machineMemoryPath: string, nrPcpus: number) {
    super(hv);
    this.preemptFlags = new Int32Array(new SharedArrayBuffer(4 * nrPcpus));
    this.workers = Array.from({ length: nrPcpus }, (_, i) => this.spawn(i, machineMemoryPath));
  }

  preempt(pcpu: number): void {
    Atomics.store(this.preemptFlags, pcpu % this.workers.length, 1);
  }

  private spawn(i: number, machineMemory: string): Worker {
    const w = new Worker(workerEntry('pcpu-thread'), {
      workerData: { machineMemory, preemptFlags: this.preemptFlags, pcpu: i },
      name: `pcpu${i}`,
    });
    w.unref();
    w.on('message', (r: SliceReply | WorkerNotice) => {
      if ('notice' in r) {
        const d = this.onPcpu[i]?.domain;
        if (d) this.hv.platform.changed(d);
        return;
      }
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
    });
    w.on('error', (e) => {
      this.hv.log(`pCPU ${i} thread failed: ${e.message}`);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
    return w;
  }

  setContext(v: Vcpu, ctx: VcpuContext): void {
    this.built.add(v.domain);
    this.states.set(v, applyContext(structuredClone(this.states.get(v) ?? RESET_STATE), ctx));
  }

  getContext(v: Vcpu): CpuState {
    return this.states.get(v) ?? structuredClone(RESET_STATE);
  }

  override forget(d: Domain): void {
    for (const v of d.vcpus) this.states.delete(v);
    super.forget(d);
  }

  async run(v: Vcpu, budgetNs: number, pcpu = 0): Promise<SliceOutcome> {
    const id = this.nextId++;
    const w = this.workers[pcpu % this.workers.length]!;
    const reply = await new Promise<SliceReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      let state = this.getContext(v);
      if (v.resumeFromHalt) {
        v.resumeFromHalt = false;
        if (state.halted) state = { ...state, halted: false };
      }
      const req: SliceRequest = { id, state, mfns: this.mfns(v.domain), budgetNs, forwardIo: this.hv.forwardsIo(v.domain), forwardMmio: this.hv.ioreq.has(v.domain), trapVectors: v.domain.trapVectors, irqs: v.pendingIrqs.splice(0) };
      const b = this.hv.ioreq.binding(v);
      if (b) req.ioreq = b;
      const pb = this.hv.platform.binding(v);
      if (pb) req.platform = pb;
      if (v.domain.trapSlotAddr !== undefined) req.trapSlot = { addr: v.domain.trapSlotAddr, vcpu: v.id, spinUs: Math.min(this.trapSpinUs, this.trapWaitUs), yieldUs: this.trapYieldUs, waitUs: this.trapWaitUs };
      if (v.ioCompletion) req.completeIo = v.ioCompletion;
      v.ioCompletion = undefined;
      Atomics.store(this.preemptFlags, pcpu % this.workers.length, 0);
      this.onPcpu[pcpu % this.workers.length] = v;
      if (pb) this.hv.platform.onWorker.add(v);
      this.hv.sliceStarted(v.domain);
      w.postMessage(req);
    }).catch((e: unknown) => {
      this.hv.sliceEnded(v.domain);
      throw e;
    });
    this.onPcpu[pcpu % this.workers.length] = undefined;
    this.hv.platform.onWorker.delete(v);
    this.states.set(v, reply.state);
    this.stats.slices++;
    this.stats.instructions += reply.instructions;
    this.stats.unclaimedIo += reply.unclaimed;
    this.hv.ioreq.addWorkerCounters(reply.ioreqCounters);
    countSlice(v.domain, reply);
    this.hv.sliceEnded(v.domain);
    this.hv.platform.addInjected(reply.injected);
    // Re-arm the tick if needed and deliver what the PIC held for the worker (it took the rest).
    if (v.domain.isHvm) this.hv.platform.changed(v.domain, reply.platformExits);
    for (const b of reply.console) this.consoleByte(v.domain, b);
    return outcome(v, reply, () => reply.state);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
