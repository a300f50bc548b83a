/**
 * One time slice of an x86 vCPU: what a pCPU does between two scheduling decisions, shared by
 * the in-process runner (x86-runner.ts) and the pCPU worker threads (sched/pcpu-thread.ts).
 * See x86-runner.ts for what each kind of exit means to the hypervisor.
 */
import { Cpu, type CpuExit, type CpuState, type Page } from '@xenlab/x86-cpu';
import { TRAP_FRAME_REGS, type TrapFrame } from '@xenlab/xen-public';
import type { FastIoResult } from './hvm/ioreq-fast.ts';
import type { IoExit, SliceExit } from './sched/pcpu.ts';

export const DEBUG_CONSOLE_PORT = 0xe9;
/**
 * The software-interrupt vector of xenlab's real-mode hypercall ABI (Xen's 32-bit PV guests use
 * `int 82h` too): AX = hypercall number, BX = sub-op, CX/DX/SI/DI = arguments, result in AX.
 */
export const HYPERCALL_VECTOR = 0x82;
/** Vectors that leave the CPU: the hypercall vector plus the domain's trap table. */
export const exitVectors = (trapVectors: readonly number[]): number[] => [...new Set([HYPERCALL_VECTOR, ...trapVectors])];
export const GUEST_PAGES = 256;
/** Instructions per check of the clock: small enough to honour a 1 ms slice. */
const CHUNK = 20_000;

export interface SliceIo {
  /** A byte the guest wrote to the debug console port. */
  consoleByte(b: number): void;
  /** An access no one claimed (the domain has no device model). */
  unclaimed(): void;
  /** Should this port's I/O exit to the hypervisor (the domain has an ioreq server)? */
  forward(port: number): boolean;
  /** Should accesses outside RAM go to the device model (it has an ioreq server)? */
  forwardMmio?(): boolean;
  /**
   * Serve a forwarded access without ending the slice (a pCPU worker: platform devices and the
   * ioreq fast path). `done`: the CPU completes it and runs on; `sent`: an ioreq is outstanding,
   * the slice ends with the vCPU waiting for it; undefined: the slice ends with an `io` exit.
   */
  serveIo?(io: IoExit): FastIoResult | undefined;
  /**
   * Bounce a trap-table vector through the kernel's trap slot without ending the slice (a pCPU
   * worker whose domain registered one, trap-slot.ts). `done`: the kernel answered in time and
   * the CPU holds its registers; `parked`: the slice ends with the vCPU in its trap, the kernel
   * resumes it with `iret`; a string: the kernel wrote garbage, the guest crashes; undefined:
   * no slot, the slice ends with a `trap` exit (the main thread bounces it over the socket).
   */
  serveTrap?(vector: number, kind: 'int' | 'exception'): 'done' | 'parked' | { crash: string } | undefined;
  /** Called between chunks and after each served exit: a pCPU worker takes interrupts its PIC now delivers. */
  poll?(): void;
  /** Counts each VM exit into the domain's counters (keys: `countExit`). */
  exits?: Record<string, number>;
}

/**
 * Counts one exit under the keys of the domain counters (hypercall.ts DomainCounters):
 * `exits.total`, `exits.io|mmio|hlt`, and per port (`exit.pio:1f7`) or MMIO page (`exit.mmio:b8000`).
 */
export function countExit(c: Record<string, number>, kind: 'pio' | 'mmio' | 'hlt', addr = 0): void {
  c['exits.total'] = (c['exits.total'] ?? 0) + 1;
  const k = kind === 'pio' ? 'exits.io' : `exits.${kind}`;
  c[k] = (c[k] ?? 0) + 1;
  if (kind === 'hlt') return;
  const p = kind === 'pio' ? `exit.pio:${addr.toString(16)}` : `exit.mmio:${(addr & ~0xfff).toString(16)}`;
  c[p] = (c[p] ?? 0) + 1;
}

export interface SliceResult {
  exit: SliceExit;
  reason?: string;
  io?: IoExit;
  trapVector?: number;
  trapKind?: 'int' | 'exception';
  /** With an `io` exit: the worker already wrote the ioreq and rang the device model. */
  ioreqSent?: boolean;
  /** With a `trap` exit: it is posted in the trap slot and the kernel has it (no socket bounce). */
  trapParked?: boolean;
  instructions: number;
}

/** Hands the CPU the answer to the access it exited on (port I/O or an MMIO read). */
export function completeAccess(cpu: Cpu, c: { value?: number; mmio?: boolean }): void {
  if (!c.mmio) cpu.completeIo(c.value);
  else if (c.value !== undefined) cpu.completeMmioRead(c.value);
}

/** Makes exactly `vectors` exit as trap-table bounces (diffing against what is set now). */
export function syncTrapVectors(cpu: Cpu, current: Set<number>, vectors: readonly number[]): void {
  const want = new Set(vectors);
  for (const v of current) if (!want.has(v)) cpu.setInterruptExit(v, false);
  for (const v of want) if (!current.has(v)) cpu.setInterruptExit(v, true);
  current.clear();
  for (const v of want) current.add(v);
}

export function trapFrameOf(st: CpuState): TrapFrame {
  const f = {} as TrapFrame;
  for (const k of TRAP_FRAME_REGS) f[k] = st[k];
  return f;
}

/** A CPU whose holes read as all-ones on exit, writes to holes are dropped, 0xE9 is the console. */
export function makeCpu(pages: Page[], io: SliceIo): Cpu {
  return new Cpu({
    model: '80186',
    // No synchronous MMIO read: every read of a hole exits, so a slice can tell an instruction
    // fetch (fatal) from a data read (all-ones).
    // Writes outside RAM are dropped, or exit to go to the device model when there is one.
    memory: { pages, mmioWrite: () => !io.forwardMmio?.() },
    ports: {
      in: (port, size) => {
        if (io.forward(port)) return undefined;
        io.unclaimed();
        return size === 1 ? 0xff : 0xffff;
      },
      out: (port, _size, value) => {
        if (port === DEBUG_CONSOLE_PORT) io.consoleByte(value & 0xff);
        else if (io.forward(port)) return false;
        else io.unclaimed();
        return true;
      },
    },
  });
}

/**
 * Runs `cpu` until its budget (real time) is used, it stops, or `preempt()` says the scheduler
 * wants the pCPU back (checked between chunks: Xen's IPI); never throws.
 */
export function runSlice(cpu: Cpu, pages: Page[], budgetNs: number, io: SliceIo, preempt?: () => boolean): SliceResult {
  const end = process.hrtime.bigint() + BigInt(Math.max(0, Math.round(budgetNs)));
  let instructions = 0;
  try {
    for (;;) {
      const exit: CpuExit = cpu.run(CHUNK);
      instructions += exit.executed;
      switch (exit.reason) {
        case 'budget':
          break;
        case 'hlt':
          if (io.exits) countExit(io.exits, 'hlt');
          return { exit: 'blocked', instructions };
        case 'io':
          if (exit.port !== DEBUG_CONSOLE_PORT && io.forward(exit.port)) {
            if (io.exits) countExit(io.exits, 'pio', exit.port);
            const { dir, port, size, value, string, rep, count, addr, step } = exit;
            const ioExit: IoExit = { dir, port, size, value, string, rep, count, addr, step };
            const served = io.serveIo?.(ioExit);
            if (served?.kind === 'done') completeAccess(cpu, served.completion);
            else if (served?.kind === 'crash') return { exit: 'crash', reason: served.reason, instructions };
            else return { exit: 'io', io: ioExit, ioreqSent: served?.kind === 'sent', instructions };
            break;
          }
          stringIo(cpu, pages, exit, io);
          break;
        case 'mmio': {
          const st = cpu.getState();
          const pc = ((st.cs << 4) + st.ip) & 0xfffff;
          if (exit.dir === 'read' && exit.addr >= pc && exit.addr < pc + 6) {
            return { exit: 'crash', reason: `fetched instructions from non-RAM at ${exit.addr.toString(16)}h`, instructions };
          }
          if (io.exits) countExit(io.exits, 'mmio', exit.addr);
          if (io.forwardMmio?.()) {
            // To the device model as an ioreq of type COPY; a read is re-executed with its answer,
            // a write has already retired.
            const { dir, addr, size, value } = exit;
            const ioExit: IoExit = { mmio: true, dir: dir === 'read' ? 'in' : 'out', port: addr, size, value, string: false, rep: false, count: 1, addr, step: size };
            const served = io.serveIo?.(ioExit);
            if (served?.kind === 'done') completeAccess(cpu, served.completion);
            else if (served?.kind === 'crash') return { exit: 'crash', reason: served.reason, instructions };
            else return { exit: 'io', io: ioExit, ioreqSent: served?.kind === 'sent', instructions };
            break;
          }
          if (exit.dir === 'read') cpu.completeMmioRead(exit.size === 1 ? 0xff : 0xffff);
          break;
        }
        case 'interrupt-exit':
          if (exit.vector === HYPERCALL_VECTOR && exit.kind === 'int') return { exit: 'hypercall', instructions };
          // Otherwise a vector of the domain's trap table: bounce to its kernel process, through
          // the trap slot when there is one (the slice goes on if the kernel answers in time).
          {
            const t = io.serveTrap?.(exit.vector, exit.kind);
            if (t !== undefined && io.exits) {
              const k = `trap.int${exit.vector.toString(16).padStart(2, '0')}`;
              io.exits[k] = (io.exits[k] ?? 0) + 1;
              io.exits['trap.slot'] = (io.exits['trap.slot'] ?? 0) + 1;
            }
            if (t === 'done') break;
            if (t === 'parked') return { exit: 'trap', trapVector: exit.vector, trapKind: exit.kind, trapParked: true, instructions };
            if (t !== undefined) return { exit: 'crash', reason: t.crash, instructions };
          }
          return { exit: 'trap', trapVector: exit.vector, trapKind: exit.kind, instructions };
      }
      io.poll?.();
      if (process.hrtime.bigint() >= end || preempt?.()) return { exit: 'preempted', instructions };
    }
  } catch (e) {
    return { exit: 'crash', reason: `CPU fault: ${(e as Error).message}`, instructions };
  }
}

/** IN/OUT and INS/OUTS the synchronous handlers did not take: one exit for a whole transfer. */
function stringIo(cpu: Cpu, pages: Page[], exit: Extract<CpuExit, { reason: 'io' }>, io: SliceIo): void {
  if (!exit.string) {
    cpu.completeIo(exit.dir === 'in' ? (exit.size === 1 ? 0xff : 0xffff) : undefined);
    return;
  }
  for (let i = 0; i < exit.count; i++) {
    const a = (exit.addr + i * exit.step) & 0xfffff;
    const p = pages[(a >>> 12) & 0xff];
    if (exit.dir === 'out') {
      if (exit.port === DEBUG_CONSOLE_PORT) io.consoleByte(p ? p[a & 0xfff]! : 0xff);
      else io.unclaimed();
    } else if (p) {
      p[a & 0xfff] = 0xff;
      if (exit.size === 2 && (a & 0xfff) < 0xfff) p[(a & 0xfff) + 1] = 0xff;
    }
  }
  cpu.completeIo();
}
