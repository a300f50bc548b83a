/**
 * Runs a domain's vCPUs on the x86 software CPU (@xenlab/x86-cpu): the "hardware" a pCPU drives
 * for a time slice (ARCHITECTURE.md, "Where guest code runs"). The guest's page table is its P2M:
 * page i of the real-mode address space is the machine frame backing GFN i, or an MMIO hole.
 *
 * What stops a slice and what the hypervisor does about it (Xen's vmexit handling, reduced):
 * - the slice's time runs out: preempted;
 * - HLT: the vCPU blocks until an event wakes it;
 * - port I/O: port 0xE9 is Xen's HVM debug console (a line of guest output lands in the console
 *   ring as "(dN) ..."); every other port goes to the domain's device model once ioreq servers
 *   exist, and until then reads all-ones and drops writes (counted in `stats.unclaimedIo`);
 * - MMIO outside RAM: reads all-ones, writes dropped; fetching instructions from a non-RAM page is
 *   a fatal guest fault (the domain crashes; nothing else does), as is any internal CPU error.
 *
 * `X86Runner` runs slices on the hypervisor's own thread; `WorkerX86Runner` (sched/pcpu-threads.ts)
 * runs them on one worker thread per pCPU. Both keep the vCPU's register state here, so a vCPU
 * can move between pCPUs at any slice boundary.
 */
import type { Cpu, CpuState, Page } from '@xenlab/x86-cpu';
import { Gfn, type VcpuContext } from '@xenlab/xen-public';
import type { Domain, Vcpu } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import type { SliceOutcome, VcpuRunner } from './sched/pcpu.ts';
import { GUEST_PAGES, completeAccess, exitVectors, makeCpu, runSlice, syncTrapVectors, trapFrameOf, type SliceResult } from './x86-slice.ts';

export { DEBUG_CONSOLE_PORT } from './x86-slice.ts';

interface VcpuHw {
  cpu: Cpu;
  /** The page table the CPU holds a reference to; refreshed in place from the P2M. */
  pages: Page[];
  /** Vectors currently set to exit (the domain's trap table). */
  traps: Set<number>;
}

/** Per-domain bookkeeping shared by both runners: who is built, console lines, counters. */
export abstract class X86RunnerBase implements VcpuRunner {
  /** Domains whose builder gave a vCPU context: these run on the x86 CPU. */
  protected readonly built = new Set<Domain>();
  private readonly lineBuf = new Map<Domain, string>();
  readonly stats = { instructions: 0, slices: 0, unclaimedIo: 0, consoleBytes: 0 };

  constructor(protected readonly hv: Hypervisor) {}

  abstract setContext(v: Vcpu, ctx: VcpuContext): void;
  abstract getContext(v: Vcpu): CpuState;
  abstract run(v: Vcpu, budgetNs: number, pcpu?: number): Promise<SliceOutcome>;

  /** The runner for `d`, if its builder set it up to run on the x86 CPU. */
  runnerFor(d: Domain): VcpuRunner | undefined {
    if (d.dying !== 'alive') {
      this.forget(d);
      return undefined;
    }
    return this.built.has(d) ? this : undefined;
  }

  forget(d: Domain): void {
    this.lineBuf.delete(d);
    this.built.delete(d);
  }

  /** The MFN backing each of the first 256 GFNs, -1 for a hole. */
  protected mfns(d: Domain): number[] {
    const out = new Array<number>(GUEST_PAGES);
    for (let g = 0; g < GUEST_PAGES; g++) out[g] = d.p2m.lookup(Gfn(g)) ?? -1;
    return out;
  }

  protected consoleByte(d: Domain, b: number): void {
    this.stats.consoleBytes++;
    const s = (this.lineBuf.get(d) ?? '') + String.fromCharCode(b);
    if (b === 0x0a || s.length >= 256) {
      this.hv.console.write(`(d${d.domid}) ${s.replace(/\n$/, '')}\n`);
      this.lineBuf.set(d, '');
    } else this.lineBuf.set(d, s);
  }
}

export function outcome(v: Vcpu, r: SliceResult, state: () => CpuState): SliceOutcome {
  const o: SliceOutcome = { exit: r.exit };
  if (r.reason) o.reason = `vCPU ${v.id} ${r.reason}`;
  if (r.io) o.io = r.io;
  if (r.ioreqSent) o.ioreqSent = true;
  if (r.trapParked) o.trapParked = true;
  if (r.exit === 'trap') o.trap = { vector: r.trapVector!, kind: r.trapKind!, frame: trapFrameOf(state()) };
  if (r.exit === 'hypercall') o.frame = trapFrameOf(state());
  return o;
}

export function applyContext(st: CpuState, ctx: VcpuContext): CpuState {
  for (const [k, val] of Object.entries(ctx)) {
    if (val !== undefined && k in st) (st as unknown as Record<string, number>)[k] = val & 0xffff;
  }
  return st;
}

export class X86Runner extends X86RunnerBase {
  private readonly cpus = new Map<Vcpu, VcpuHw>();

  constructor(
    hv: Hypervisor,
    /** Longest real time one call may run (keeps the hypervisor's event loop responsive). */
    private readonly maxSliceNs = 2_000_000,
  ) {
    super(hv);
  }

  setContext(v: Vcpu, ctx: VcpuContext): void {
    this.built.add(v.domain);
    const { cpu } = this.hw(v);
    cpu.setState(applyContext(cpu.getState(), ctx));
  }

  getContext(v: Vcpu): CpuState {
    return this.hw(v).cpu.getState();
  }

  override forget(d: Domain): void {
    for (const v of d.vcpus) this.cpus.delete(v);
    super.forget(d);
  }

  private refresh(d: Domain, pages: Page[]): Page[] {
    const mfns = this.mfns(d);
    for (let g = 0; g < GUEST_PAGES; g++) {
      const m = mfns[g]!;
      const addr = m < 0 ? -1 : this.hv.mem.addr(m as never);
      const cur = pages[g];
      if (m < 0) pages[g] = null;
      else if (!cur || cur.byteOffset !== addr) pages[g] = new Uint8Array(this.hv.mem.buffer, addr, 4096);
    }
    return pages;
  }

  private hw(v: Vcpu): VcpuHw {
    let hw = this.cpus.get(v);
    if (!hw) {
      const d = v.domain;
      const pages = this.refresh(d, new Array<Page>(GUEST_PAGES).fill(null));
      const cpu = makeCpu(pages, {
        consoleByte: (b) => this.consoleByte(d, b),
        unclaimed: () => this.stats.unclaimedIo++,
        forward: () => this.hv.forwardsIo(d),
        forwardMmio: () => this.hv.ioreq.has(d),
      });
      hw = { cpu, pages, traps: new Set() };
      this.cpus.set(v, hw);
    }
    return hw;
  }

  async run(v: Vcpu, budgetNs: number): Promise<SliceOutcome> {
    const { cpu, pages, traps } = this.hw(v);
    // The P2M may have changed since the last slice (ballooning): refresh the page table.
    this.refresh(v.domain, pages);
    syncTrapVectors(cpu, traps, exitVectors(v.domain.trapVectors));
    if (v.ioCompletion) {
      completeAccess(cpu, v.ioCompletion);
      v.ioCompletion = undefined;
    }
    for (const vec of v.pendingIrqs.splice(0)) cpu.raiseIrq(vec);
    if (v.resumeFromHalt) {
      v.resumeFromHalt = false;
      const st = cpu.getState();
      if (st.halted) cpu.setState({ ...st, halted: false });
    }
    this.stats.slices++;
    const d = v.domain;
    const exits: Record<string, number> = {};
    const r = runSlice(cpu, pages, Math.min(budgetNs, this.maxSliceNs), {
      consoleByte: (b) => this.consoleByte(d, b),
      unclaimed: () => this.stats.unclaimedIo++,
      forward: () => this.hv.forwardsIo(d),
      forwardMmio: () => this.hv.ioreq.has(d),
      exits,
    });
    d.countAll(exits);
    d.count('instructions', r.instructions);
    this.stats.instructions += r.instructions;
    return outcome(v, r, () => cpu.getState());
  }
}
