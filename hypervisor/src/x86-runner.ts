/**
 * Runs a domain's vCPUs on the x86 software CPU (@xenlab/x86-cpu): the "hardware" a pCPU drives
 * for a time slice (ARCHITECTURE.md, "Where guest code runs"). The guest's page table is its P2M:
 * page i of the real-mode address space is the machine frame backing GFN i, or an MMIO hole.
 *
 * What stops a slice and what the hypervisor does about it (Xen's vmexit handling, reduced):
 * - the instruction budget (the slice's time) runs out: preempted;
 * - HLT: the vCPU blocks until an event wakes it;
 * - port I/O: port 0xE9 is Xen's HVM debug console (a line of guest output lands in the console
 *   ring as "(dN) ..."); every other port goes to the domain's device model once ioreq servers
 *   exist, and until then reads all-ones and drops writes (counted in `stats.unclaimedIo`);
 * - MMIO outside RAM: reads all-ones, writes dropped; fetching instructions from a non-RAM page is
 *   a fatal guest fault (the domain crashes; nothing else does), as is any internal CPU error.
 */
import { Cpu, type CpuExit, type CpuState, type Page } from '@xenlab/x86-cpu';
import { Gfn } from '@xenlab/xen-public';
import type { Domain, Vcpu } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import type { SliceExit, VcpuRunner } from './sched/pcpu.ts';

/** Real-mode registers a domain builder may set (XEN_DOMCTL_setvcpucontext, reduced). */
export interface VcpuContext {
  cs?: number;
  ip?: number;
  ss?: number;
  sp?: number;
  ds?: number;
  es?: number;
  flags?: number;
  ax?: number;
  bx?: number;
  cx?: number;
  dx?: number;
  si?: number;
  di?: number;
  bp?: number;
}

export const DEBUG_CONSOLE_PORT = 0xe9;
const PAGES = 256;
/** Instructions per check of the clock: small enough to honour a 1 ms slice. */
const CHUNK = 20_000;

interface VcpuHw {
  cpu: Cpu;
  /** The page table the CPU holds a reference to; refreshed in place from the P2M. */
  pages: Page[];
}

export class X86Runner implements VcpuRunner {
  private readonly cpus = new Map<Vcpu, VcpuHw>();
  /** Domains whose builder gave a vCPU context: these run on the x86 CPU. */
  private readonly built = new Set<Domain>();
  private readonly lineBuf = new Map<Domain, string>();
  readonly stats = { instructions: 0, slices: 0, unclaimedIo: 0, consoleBytes: 0 };

  constructor(
    private readonly hv: Hypervisor,
    /** Longest real time one call may run (keeps the hypervisor's event loop responsive). */
    private readonly maxSliceNs = 2_000_000,
  ) {}

  /** Sets a vCPU's registers before it first runs (the domain builder's job). */
  setContext(v: Vcpu, ctx: VcpuContext): void {
    this.built.add(v.domain);
    const { cpu } = this.hw(v);
    const st: CpuState = cpu.getState();
    for (const [k, val] of Object.entries(ctx)) {
      if (val !== undefined && k in st) (st as unknown as Record<string, number>)[k] = val & 0xffff;
    }
    cpu.setState(st);
  }

  getContext(v: Vcpu): CpuState {
    return this.hw(v).cpu.getState();
  }

  /** The runner for `d`, if its builder set it up to run on the x86 CPU. */
  runnerFor(d: Domain): VcpuRunner | undefined {
    if (d.dying !== 'alive') {
      this.forget(d);
      return undefined;
    }
    return this.built.has(d) ? this : undefined;
  }

  forget(d: Domain): void {
    for (const v of d.vcpus) this.cpus.delete(v);
    this.lineBuf.delete(d);
    this.built.delete(d);
  }

  private refresh(d: Domain, pages: Page[]): Page[] {
    for (let g = 0; g < PAGES; g++) {
      const mfn = d.p2m.lookup(Gfn(g));
      const cur = pages[g];
      const addr = mfn === undefined ? -1 : this.hv.mem.addr(mfn);
      if (mfn === undefined) pages[g] = null;
      else if (!cur || cur.byteOffset !== addr) pages[g] = new Uint8Array(this.hv.mem.buffer, addr, 4096);
    }
    return pages;
  }

  private hw(v: Vcpu): VcpuHw {
    let hw = this.cpus.get(v);
    if (!hw) {
      const d = v.domain;
      const pages = this.refresh(d, new Array<Page>(PAGES).fill(null));
      const cpu = new Cpu({
        model: '80186',
        memory: {
          pages,
          // No synchronous MMIO read: every read of a hole exits, so run() can tell an
          // instruction fetch (fatal) from a data read (all-ones).
          mmioWrite: () => true,
        },
        ports: {
          in: (port, size) => {
            this.stats.unclaimedIo++;
            void port;
            return size === 1 ? 0xff : 0xffff;
          },
          out: (port, _size, value) => {
            if (port === DEBUG_CONSOLE_PORT) this.consoleByte(d, value & 0xff);
            else this.stats.unclaimedIo++;
            return true;
          },
        },
      });
      hw = { cpu, pages };
      this.cpus.set(v, hw);
    }
    return hw;
  }

  private consoleByte(d: Domain, b: number): void {
    this.stats.consoleBytes++;
    const s = (this.lineBuf.get(d) ?? '') + String.fromCharCode(b);
    if (b === 0x0a || s.length >= 256) {
      this.hv.console.write(`(d${d.domid}) ${s.replace(/\n$/, '')}\n`);
      this.lineBuf.set(d, '');
    } else this.lineBuf.set(d, s);
  }

  async run(v: Vcpu, budgetNs: number): Promise<{ exit: SliceExit; reason?: string }> {
    const { cpu, pages } = this.hw(v);
    // The P2M may have changed since the last slice (ballooning): refresh the page table.
    this.refresh(v.domain, pages);
    this.stats.slices++;
    const end = process.hrtime.bigint() + BigInt(Math.max(0, Math.min(budgetNs, this.maxSliceNs)));
    try {
      for (;;) {
        const exit: CpuExit = cpu.run(CHUNK);
        this.stats.instructions += exit.executed;
        switch (exit.reason) {
          case 'budget':
            break;
          case 'hlt':
            return { exit: 'blocked' };
          case 'io':
            this.stringIo(v.domain, cpu, pages, exit);
            break;
          case 'mmio': {
            const st = cpu.getState();
            const pc = ((st.cs << 4) + st.ip) & 0xfffff;
            if (exit.dir === 'read' && exit.addr >= pc && exit.addr < pc + 6) {
              return { exit: 'crash', reason: `vCPU ${v.id} fetched instructions from non-RAM at ${exit.addr.toString(16)}h` };
            }
            if (exit.dir === 'read') cpu.completeMmioRead(exit.size === 1 ? 0xff : 0xffff);
            break;
          }
          case 'interrupt-exit':
            return { exit: 'crash', reason: `vCPU ${v.id}: unexpected trap-table exit for vector ${exit.vector}` };
        }
        if (process.hrtime.bigint() >= end) return { exit: 'preempted' };
      }
    } catch (e) {
      return { exit: 'crash', reason: `vCPU ${v.id} faulted: ${(e as Error).message}` };
    }
  }

  /** INS/OUTS that the synchronous handlers did not take: one exit for the whole transfer. */
  private stringIo(d: Domain, cpu: Cpu, pages: Page[], exit: Extract<CpuExit, { reason: 'io' }>): void {
    if (!exit.string) {
      cpu.completeIo(exit.dir === 'in' ? (exit.size === 1 ? 0xff : 0xffff) : undefined);
      return;
    }
    const byteAt = (lin: number): number => pages[(lin >>> 12) & 0xff]?.[lin & 0xfff] ?? 0xff;
    for (let i = 0; i < exit.count; i++) {
      const a = (exit.addr + i * exit.step) & 0xfffff;
      if (exit.dir === 'out' && exit.port === DEBUG_CONSOLE_PORT) this.consoleByte(d, byteAt(a));
      else if (exit.dir === 'in') {
        const p = pages[(a >>> 12) & 0xff];
        if (p) {
          p[a & 0xfff] = 0xff;
          if (exit.size === 2 && p.length > (a & 0xfff) + 1) p[(a & 0xfff) + 1] = 0xff;
        }
      } else this.stats.unclaimedIo++;
    }
    cpu.completeIo();
  }
}
