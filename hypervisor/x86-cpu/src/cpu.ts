/**
 * The x86 software CPU: 8086 and 80186 real mode, the "silicon" that xenlab's hypervisor drives
 * on its pCPU threads (see ../../../../shared/ARCHITECTURE.md, "Where guest code runs").
 *
 * Organisation (see docs/x86-cpu.md):
 * - state: general registers in a Uint16Array with a byte view (AL..BH), segment registers,
 *   IP and FLAGS kept lazily (the last ALU operation's operands and result; flags are derived
 *   only when something reads them);
 * - `opcode-table.ts` is the one description of every opcode (operand forms, family, model); the
 *   decoder and disassembler walk it, and the executor's `switch` below is its specialised
 *   fast path (a test checks the two agree on every instruction's length);
 * - handler families live in `exec/*.ts` (shifts, multiply/divide, BCD, strings, 186 stack ops);
 * - all memory and port traffic goes through the injected `MemoryInterface`/`PortInterface`;
 *   anything the caller must finish (port I/O, MMIO, HLT, trap-table interrupts) ends `run()`
 *   with a `CpuExit` that says what to do, like a VM exit.
 *
 * Behaviour follows the Intel 8086 Family User's Manual and iAPX 186 manual, with the undocumented
 * details (aliases, SETMO, REP-negated IDIV, flag results) as measured by the hardware-captured
 * SingleStepTests data in ../shared/conformance.
 */
import { AF, ARITH_FLAGS, CF, DF, IF, OF, PARITY, PF, SF, TF, ZF } from './flags.ts';
import { PAGE_MASK, type MemoryInterface, type Page, type PortInterface } from './memory.ts';
import { decode } from './decoder.ts';
import { shiftRotate } from './exec/shift.ts';
import { aam, aad, daa, das, aaa, aas } from './exec/bcd.ts';
import { mulDivGroup } from './exec/muldiv.ts';
import { stringOp } from './exec/string.ts';
import { pusha, popa, bound, enter, leave, imulImm } from './exec/ops186.ts';

export type CpuModel = '8086' | '80186';

/** Register indices into `Cpu.regs` (the ModRM encoding order). */
export const AX = 0, CX = 1, DX = 2, BX = 3, SP = 4, BP = 5, SI = 6, DI = 7;
/** Segment register indices into `Cpu.sregs` (the ModRM `sreg` encoding order). */
export const ES = 0, CS = 1, SS = 2, DS = 3;

/** Byte register r (AL CL DL BL AH CH DH BH) → index into the little-endian byte view. */
export const BYTE_REG = new Uint8Array([0, 2, 4, 6, 1, 3, 5, 7]);

/** Why `run()` returned. Every exit also says how many instructions retired. */
export type CpuExit =
  | { reason: 'budget'; executed: number }
  /** HLT executed (or the CPU is halted and no interrupt is deliverable). IP is past the HLT. */
  | { reason: 'hlt'; executed: number }
  /**
   * Port I/O the synchronous port handler did not take. Complete with `completeIo()`.
   * - `string: false`: IN/OUT. For `dir: 'out'`, `value` is the data; for `'in'` pass the value
   *   read to `completeIo(value)`.
   * - `string: true`: INS/OUTS (`rep` if prefixed), one exit for the whole transfer as Xen's
   *   ioreq with `data_is_ptr`: move `count` elements of `size` bytes between the port and guest
   *   memory starting at linear address `addr`, stepping by `step` bytes (negative when DF=1), then
   *   call `completeIo()` (or `completeIo(n)` if only n elements were moved). `count` never runs
   *   past the end of the segment, so the caller walks at most 64 KiB of contiguous offsets.
   */
  | {
      reason: 'io';
      executed: number;
      dir: 'in' | 'out';
      port: number;
      size: 1 | 2;
      value: number;
      string: boolean;
      rep: boolean;
      count: number;
      addr: number;
      step: number;
    }
  /**
   * An access to a null (non-RAM) page the synchronous MMIO handlers did not take.
   * A read is completed with `completeMmioRead(value)`; the instruction is then re-executed with
   * that value (IP still points at it). A write has already been retired; just resume.
   */
  | { reason: 'mmio'; executed: number; dir: 'read' | 'write'; addr: number; size: 1 | 2; value: number }
  /**
   * A software interrupt (INT n, INT3, INTO) or CPU exception whose vector is marked with
   * `setInterruptExit(vector, true)`: nothing was pushed; IP is where an IRET would return
   * (past the INT; at the faulting instruction for 186 faults). This is the PV trap table.
   */
  | { reason: 'interrupt-exit'; executed: number; vector: number; kind: 'int' | 'exception' };

/** The complete architectural state as plain JSON-able data (save/restore, migration). */
export interface CpuState {
  model: CpuModel;
  ax: number; bx: number; cx: number; dx: number;
  sp: number; bp: number; si: number; di: number;
  cs: number; ds: number; es: number; ss: number;
  ip: number;
  flags: number;
  halted: boolean;
  /** Interrupts are held off for one instruction (after MOV SS / POP SS / STI). */
  interruptShadow: boolean;
  /** Single-step trap armed for the next instruction boundary. */
  trapPending: boolean;
  /** External interrupt vectors raised but not yet taken, oldest first. */
  pendingIrqs: number[];
  /** Vectors marked to exit instead of vectoring through the IVT. */
  interruptExits: number[];
  /** An exit still waiting for `completeIo`/`completeMmioRead` (null normally). */
  pending: PendingState | null;
}

export type PendingState =
  | { kind: 'in'; size: 1 | 2 }
  | { kind: 'string-io'; dir: 'in' | 'out'; size: 1 | 2; rep: boolean; count: number; nextIp: number }
  | { kind: 'mmio-read'; replay: number[] };

export interface CpuOptions {
  model: CpuModel;
  memory: MemoryInterface;
  ports?: PortInterface;
  /**
   * Use the specialised fast path (default true). Turning it off runs everything through the
   * general executor — slower, same results; tests compare the two.
   */
  fastPath?: boolean;
  /**
   * Address line 20 enabled (as on an AT): linear addresses are 21 bits (up to 10FFEFh), and the
   * page table needs 512 entries. Default false: addresses wrap at 1 MiB like the 8086 and 80186.
   */
  a20?: boolean;
}

/** Thrown inside an instruction to abandon it (an MMIO read exit or a 186 fault). */
const ABANDON = { abandon: true };

/** Lazy-flag operation kinds (bit 0 = word). */
export const F_NONE = 0, F_ADD8 = 2, F_ADD16 = 3, F_SUB8 = 4, F_SUB16 = 5, F_LOG8 = 6, F_LOG16 = 7;
export const F_INC8 = 8, F_INC16 = 9, F_DEC8 = 10, F_DEC16 = 11;

const EMPTY_PAGE: Uint8Array = new Uint8Array(0);

/** Opcodes the fast path also takes behind one segment-override prefix (its ModRM forms). */
const FAST_PREFIXABLE = new Uint8Array(256);
for (let op = 0; op < 0x40; op++) if ((op & 7) < 4) FAST_PREFIXABLE[op] = 1;
for (const op of [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0x89, 0x8a, 0x8b, 0x8d, 0xc6, 0xc7]) FAST_PREFIXABLE[op] = 1;
const ATT_IRQ = 1, ATT_SHADOW = 2, ATT_TRAP = 4, ATT_REPLAY = 8;

/** Opcodes that are prefixes (segment override, LOCK, REP). */
const IS_PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf1, 0xf2, 0xf3]) IS_PREFIX[p] = 1;

export class Cpu {
  readonly model: CpuModel;
  /** True for the 80186 model (186 instructions, #UD, shift-count masking, 186 fault rules). */
  readonly is186: boolean;

  // ---- architectural state (public for the handler families in exec/; use getState/setState) --
  readonly regs = new Uint16Array(8);
  readonly regs8 = new Uint8Array(this.regs.buffer);
  readonly sregs = new Uint16Array(4);
  ip = 0;
  /** FLAGS with the arithmetic bits valid only when fOp === F_NONE (CF also for INC/DEC). */
  flagsBase = 0;
  fOp = F_NONE;
  fRes = 0;
  fDst = 0;
  fSrc = 0;
  /** Bits of FLAGS that read as 1 regardless (8086: 15..12 and 1; 186 model: 1). */
  readonly flagsFixed: number;

  // ---- memory ----
  readonly mem: MemoryInterface;
  pages: Page[];
  readonly ports: PortInterface;
  readonly amask: number;
  private readonly fast: boolean;

  // ---- per-instruction decode state ----
  modrm = 0;
  eaOff = 0;
  eaSeg = 0;
  segOvr = -1;
  /** 0 none, 1 = F3 (REP/REPE), 2 = F2 (REPNE). */
  rep = 0;
  startIp = 0;
  startCs = 0;
  startSp = 0;

  // ---- run-loop state ----
  halted = false;
  private attention = 0;
  private shadow = false;
  private trapPending = false;
  private readonly irqQueue: number[] = [];
  private readonly intExit = new Uint8Array(256);
  /** Set by an instruction to end `run()` after it retires. */
  private exit: CpuExit | null = null;
  private pending: PendingState | null = null;
  private readonly postedWrites: CpuExit[] = [];
  private replay: number[] = [];
  private replayPos = 0;
  private faultVector = -1;
  /** Iterations a REP string instruction may still run in this `run()` call. */
  repBudget = 0;

  constructor(opts: CpuOptions) {
    this.model = opts.model;
    this.is186 = opts.model === '80186';
    this.flagsFixed = this.is186 ? 0x0002 : 0xf002;
    this.mem = opts.memory;
    this.pages = opts.memory.pages;
    this.ports = opts.ports ?? {};
    this.amask = opts.a20 ? 0x1fffff : 0xfffff;
    this.fast = opts.fastPath ?? true;
    const need = (this.amask + 1) >>> 12;
    if (this.pages.length < need) {
      throw new Error(`x86-cpu: memory.pages has ${this.pages.length} entries; ${need} are needed (one per 4 KiB page)`);
    }
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('x86-cpu: needs a little-endian host');
    this.reset();
  }

  /**
   * Power-on/RESET state: CS:IP = F000:FFF0, DS = ES = SS = 0, FLAGS clear, nothing pending.
   * The trap-table marks (`setInterruptExit`) are hypervisor configuration, not CPU state, and
   * survive a reset.
   */
  reset(): void {
    this.regs.fill(0);
    this.sregs.fill(0);
    this.sregs[CS] = 0xf000;
    this.ip = 0xfff0;
    this.flagsBase = this.flagsFixed;
    this.fOp = F_NONE;
    this.halted = false;
    this.shadow = false;
    this.trapPending = false;
    this.irqQueue.length = 0;
    this.exit = null;
    this.pending = null;
    this.postedWrites.length = 0;
    this.replay = [];
    this.replayPos = 0;
    this.attention = 0;
  }

  // ======================================================================================
  // Public control interface
  // ======================================================================================

  /** Mark a vector so INT n / INT3 / INTO / exceptions on it exit instead of using the IVT. */
  setInterruptExit(vector: number, exit: boolean): void {
    this.intExit[vector & 0xff] = exit ? 1 : 0;
  }

  /** An interrupt controller raises an external interrupt; taken at a boundary when IF=1. */
  raiseIrq(vector: number): void {
    this.irqQueue.push(vector & 0xff);
    // Only worth looking at instruction boundaries while IF=1 (STI/POPF/IRET re-check).
    if ((this.flagsBase & IF) !== 0 || this.halted) this.attention |= ATT_IRQ;
  }

  /** Number of raised external interrupts not yet taken. */
  get pendingIrqCount(): number {
    return this.irqQueue.length;
  }

  /**
   * Run up to `budget` instructions (each iteration of a REP string instruction counts as one).
   * Returns why it stopped. Throws if the previous exit still needs completing.
   */
  run(budget: number): CpuExit {
    if (this.pending !== null && this.pending.kind !== 'mmio-read') {
      throw new Error(`x86-cpu: run() called with a '${this.pending.kind}' exit not completed (call completeIo first)`);
    }
    if (this.pending !== null) this.pending = null; // mmio-read: the value is in the replay list
    if (this.postedWrites.length !== 0) return this.postedWrites.shift()!;
    this.exit = null;
    const executed = this.loop(budget, false);
    const exit = this.exit as CpuExit | null;
    if (exit !== null) {
      exit.executed = executed;
      this.exit = null;
      return exit;
    }
    return { reason: this.halted ? 'hlt' : 'budget', executed };
  }

  /** Execute exactly one whole instruction (all REP iterations), or stop at an exit. */
  step(): CpuExit {
    if (this.pending !== null && this.pending.kind !== 'mmio-read') {
      throw new Error(`x86-cpu: step() called with a '${this.pending.kind}' exit not completed`);
    }
    this.pending = null;
    if (this.postedWrites.length !== 0) return this.postedWrites.shift()!;
    this.exit = null;
    const executed = this.loop(1, true);
    const exit = this.exit as CpuExit | null;
    this.exit = null;
    if (exit !== null) {
      exit.executed = executed;
      return exit;
    }
    return { reason: this.halted ? 'hlt' : 'budget', executed };
  }

  /**
   * Finish an 'io' exit. For IN: `value` is the data read. For INS/OUTS: `value` is how many
   * elements were moved (default: all `count`).
   */
  completeIo(value?: number): void {
    const p = this.pending;
    if (p === null || (p.kind !== 'in' && p.kind !== 'string-io')) return;
    this.pending = null;
    if (p.kind === 'in') {
      if (value === undefined) throw new Error('x86-cpu: completeIo(value) needs the value read for an IN');
      if (p.size === 1) this.regs8[0] = value;
      else this.regs[AX] = value;
      return;
    }
    const n = value === undefined ? p.count : Math.max(0, Math.min(p.count, value | 0));
    const delta = (this.flagsBase & DF ? -n : n) * p.size;
    if (p.dir === 'in') this.regs[DI] = this.regs[DI] + delta;
    else this.regs[SI] = this.regs[SI] + delta;
    if (p.rep) {
      this.regs[CX] = this.regs[CX] - n;
      if (this.regs[CX] === 0) this.ip = p.nextIp;
    } else if (n > 0) {
      this.ip = p.nextIp;
    }
  }

  /** Finish an 'mmio' read exit with the value read; the instruction re-executes on `run()`. */
  completeMmioRead(value: number): void {
    if (this.pending === null || this.pending.kind !== 'mmio-read') return;
    this.replay.push(value);
    this.attention |= ATT_REPLAY; // drop the replayed values once the instruction retires
  }

  // ---- register access for the PV shim and tests ----

  getState(): CpuState {
    const r = this.regs, s = this.sregs;
    const exits: number[] = [];
    for (let v = 0; v < 256; v++) if (this.intExit[v]) exits.push(v);
    return {
      model: this.model,
      ax: r[AX], bx: r[BX], cx: r[CX], dx: r[DX], sp: r[SP], bp: r[BP], si: r[SI], di: r[DI],
      cs: s[CS], ds: s[DS], es: s[ES], ss: s[SS],
      ip: this.ip,
      flags: this.getFlags(),
      halted: this.halted,
      interruptShadow: this.shadow,
      trapPending: this.trapPending,
      pendingIrqs: [...this.irqQueue],
      interruptExits: exits,
      pending: this.pending === null ? null : structuredClone(this.pending),
    };
  }

  setState(st: CpuState): void {
    if (st.model !== this.model) throw new Error(`x86-cpu: state is for a ${st.model}, this CPU is a ${this.model}`);
    const r = this.regs, s = this.sregs;
    r[AX] = st.ax; r[BX] = st.bx; r[CX] = st.cx; r[DX] = st.dx;
    r[SP] = st.sp; r[BP] = st.bp; r[SI] = st.si; r[DI] = st.di;
    s[CS] = st.cs; s[DS] = st.ds; s[ES] = st.es; s[SS] = st.ss;
    this.ip = st.ip & 0xffff;
    this.setFlags(st.flags);
    this.halted = st.halted;
    this.shadow = st.interruptShadow;
    this.trapPending = st.trapPending;
    this.irqQueue.length = 0;
    this.irqQueue.push(...st.pendingIrqs);
    this.intExit.fill(0);
    for (const v of st.interruptExits) this.intExit[v & 0xff] = 1;
    this.pending = st.pending === null ? null : structuredClone(st.pending);
    this.replay = st.pending?.kind === 'mmio-read' ? [...st.pending.replay] : [];
    this.replayPos = 0;
    this.exit = null;
    this.recomputeAttention();
  }

  /** FLAGS as the program would see it with PUSHF. */
  getFlags(): number {
    return this.flagsNow();
  }

  /** Load FLAGS (only the bits real mode lets a program change). */
  setFlags(v: number): void {
    this.flagsBase = (v & 0x0fd5) | this.flagsFixed;
    this.fOp = F_NONE;
    this.recomputeAttention();
  }

  /** Set or clear CF (how a PV kernel returns a BIOS-service status). */
  setCarry(on: boolean): void {
    const f = this.flagsNow();
    this.flagsBase = on ? f | CF : f & ~CF;
  }

  getReg(name: RegName): number {
    const i = REG_INDEX[name];
    return i < 8 ? this.regs[i] : i < 16 ? this.regs8[BYTE_REG[i - 8]] : i < 20 ? this.sregs[i - 16] : this.ip;
  }

  setReg(name: RegName, value: number): void {
    const i = REG_INDEX[name];
    if (i < 8) this.regs[i] = value;
    else if (i < 16) this.regs8[BYTE_REG[i - 8]] = value;
    else if (i < 20) this.sregs[i - 16] = value;
    else this.ip = value & 0xffff;
  }

  // ======================================================================================
  // Lazy flags
  // ======================================================================================

  /** Materialise FLAGS from the last lazy ALU operation. */
  flagsNow(): number {
    const op = this.fOp;
    if (op === F_NONE) return this.flagsBase;
    const word = op & 1;
    const mask = word ? 0xffff : 0xff;
    const sign = word ? 0x8000 : 0x80;
    const res = this.fRes, d = this.fDst, s = this.fSrc;
    const r = res & mask;
    let f = this.flagsBase & ~ARITH_FLAGS;
    f |= PARITY[r & 0xff];
    if (r === 0) f |= ZF;
    if (r & sign) f |= SF;
    switch (op >> 1) {
      case 1: // ADD, ADC
        f |= (res >>> (word ? 16 : 8)) & 1;
        f |= (d ^ s ^ res) & AF;
        if ((d ^ res) & (s ^ res) & sign) f |= OF;
        break;
      case 2: // SUB, SBB, CMP, NEG
        f |= (res >>> (word ? 16 : 8)) & 1;
        f |= (d ^ s ^ res) & AF;
        if ((d ^ s) & (d ^ res) & sign) f |= OF;
        break;
      case 3: // logic: CF = OF = AF = 0
        break;
      case 4: // INC: CF kept
        f |= this.flagsBase & CF;
        f |= (d ^ s ^ res) & AF;
        if ((d ^ res) & (s ^ res) & sign) f |= OF;
        break;
      case 5: // DEC: CF kept
        f |= this.flagsBase & CF;
        f |= (d ^ s ^ res) & AF;
        if ((d ^ s) & (d ^ res) & sign) f |= OF;
        break;
    }
    this.flagsBase = f;
    this.fOp = F_NONE;
    return f;
  }

  cf(): number {
    const op = this.fOp;
    if (op === F_NONE || op >= F_INC8) return this.flagsBase & CF;
    if (op >= F_LOG8) return 0;
    return (this.fRes >>> (op & 1 ? 16 : 8)) & 1;
  }

  zf(): boolean {
    const op = this.fOp;
    if (op === F_NONE) return (this.flagsBase & ZF) !== 0;
    return (this.fRes & (op & 1 ? 0xffff : 0xff)) === 0;
  }

  /** Replace the six arithmetic flags with `f` (already computed eagerly). */
  setArith(f: number): void {
    this.flagsBase = (this.flagsBase & ~ARITH_FLAGS) | f;
    this.fOp = F_NONE;
  }

  /** Replace only the flags in `which` (materialising the rest first). */
  setSome(which: number, f: number): void {
    this.flagsBase = (this.flagsNow() & ~which) | (f & which);
  }

  /** True once the current instruction has produced an exit (string loops stop early). */
  hasExit(): boolean {
    return this.exit !== null;
  }

  /** Evaluate condition code cc (0..15, the low nibble of Jcc). */
  cond(cc: number): boolean {
    let t: boolean;
    switch (cc >> 1) {
      case 0: t = (this.flagsNow() & OF) !== 0; break;
      case 1: t = this.cf() !== 0; break;
      case 2: t = this.zf(); break;
      case 3: t = this.cf() !== 0 || this.zf(); break;
      case 4: t = (this.flagsNow() & SF) !== 0; break;
      case 5: t = (this.flagsNow() & PF) !== 0; break;
      case 6: { const f = this.flagsNow(); t = ((f & SF) !== 0) !== ((f & OF) !== 0); break; }
      default: { const f = this.flagsNow(); t = (f & ZF) !== 0 || ((f & SF) !== 0) !== ((f & OF) !== 0); break; }
    }
    return (cc & 1) !== 0 ? !t : t;
  }

  /** The eight ALU operations (ADD OR ADC SBB AND SUB XOR CMP) on bytes; returns the result. */
  alu8(op: number, d: number, s: number): number {
    let r: number;
    switch (op) {
      case 0: r = d + s; this.fOp = F_ADD8; break;
      case 1: r = d | s; this.fOp = F_LOG8; break;
      case 2: r = d + s + this.cf(); this.fOp = F_ADD8; break;
      case 3: r = d - s - this.cf(); this.fOp = F_SUB8; break;
      case 4: r = d & s; this.fOp = F_LOG8; break;
      case 6: r = d ^ s; this.fOp = F_LOG8; break;
      default: r = d - s; this.fOp = F_SUB8; break; // SUB, CMP
    }
    this.fRes = r; this.fDst = d; this.fSrc = s;
    return r & 0xff;
  }

  alu16(op: number, d: number, s: number): number {
    let r: number;
    switch (op) {
      case 0: r = d + s; this.fOp = F_ADD16; break;
      case 1: r = d | s; this.fOp = F_LOG16; break;
      case 2: r = d + s + this.cf(); this.fOp = F_ADD16; break;
      case 3: r = d - s - this.cf(); this.fOp = F_SUB16; break;
      case 4: r = d & s; this.fOp = F_LOG16; break;
      case 6: r = d ^ s; this.fOp = F_LOG16; break;
      default: r = d - s; this.fOp = F_SUB16; break;
    }
    this.fRes = r; this.fDst = d; this.fSrc = s;
    return r & 0xffff;
  }

  inc(v: number, word: boolean): number {
    const c = this.cf();
    this.flagsBase = (this.flagsBase & ~CF) | c;
    this.fOp = word ? F_INC16 : F_INC8;
    this.fDst = v; this.fSrc = 1; this.fRes = v + 1;
    return (v + 1) & (word ? 0xffff : 0xff);
  }

  dec(v: number, word: boolean): number {
    const c = this.cf();
    this.flagsBase = (this.flagsBase & ~CF) | c;
    this.fOp = word ? F_DEC16 : F_DEC8;
    this.fDst = v; this.fSrc = 1; this.fRes = v - 1;
    return (v - 1) & (word ? 0xffff : 0xff);
  }

  // ======================================================================================
  // Memory
  // ======================================================================================

  rdLin8(a: number): number {
    const p = this.pages[a >>> 12];
    if (p !== null) return p[a & PAGE_MASK];
    return this.mmioRead(a, 1);
  }

  wrLin8(a: number, v: number): void {
    const p = this.pages[a >>> 12];
    if (p !== null) p[a & PAGE_MASK] = v;
    else this.mmioWrite(a, 1, v & 0xff);
  }

  /** Word at a linear address whose second byte is at linear address b (offset wrap aware). */
  private rdLinW(a: number, b: number): number {
    if (b === a + 1 && (a & PAGE_MASK) !== PAGE_MASK) {
      const p = this.pages[a >>> 12];
      if (p !== null) {
        const o = a & PAGE_MASK;
        return p[o] | (p[o + 1] << 8);
      }
      return this.mmioRead(a, 2);
    }
    return this.rdLin8(a) | (this.rdLin8(b) << 8);
  }

  private wrLinW(a: number, b: number, v: number): void {
    if (b === a + 1 && (a & PAGE_MASK) !== PAGE_MASK) {
      const p = this.pages[a >>> 12];
      if (p !== null) {
        const o = a & PAGE_MASK;
        p[o] = v;
        p[o + 1] = v >>> 8;
        return;
      }
      this.mmioWrite(a, 2, v & 0xffff);
      return;
    }
    this.wrLin8(a, v & 0xff);
    this.wrLin8(b, (v >>> 8) & 0xff);
  }

  lin(seg: number, off: number): number {
    return ((this.sregs[seg] << 4) + off) & this.amask;
  }

  rd8(seg: number, off: number): number {
    return this.rdLin8(((this.sregs[seg] << 4) + off) & this.amask);
  }

  wr8(seg: number, off: number, v: number): void {
    this.wrLin8(((this.sregs[seg] << 4) + off) & this.amask, v);
  }

  rd16(seg: number, off: number): number {
    const base = this.sregs[seg] << 4;
    const am = this.amask;
    if (off === 0xffff) {
      if (this.is186) this.fault(13);
      return this.rdLin8((base + 0xffff) & am) | (this.rdLin8(base & am) << 8);
    }
    const a = (base + off) & am;
    return this.rdLinW(a, (a + 1) & am);
  }

  wr16(seg: number, off: number, v: number): void {
    const base = this.sregs[seg] << 4;
    const am = this.amask;
    if (off === 0xffff) {
      if (this.is186) this.fault(13);
      this.wrLin8((base + 0xffff) & am, v & 0xff);
      this.wrLin8(base & am, (v >>> 8) & 0xff);
      return;
    }
    const a = (base + off) & am;
    this.wrLinW(a, (a + 1) & am, v);
  }

  private mmioRead(a: number, size: 1 | 2): number {
    if (this.replayPos < this.replay.length) return this.replay[this.replayPos++];
    const h = this.mem.mmioRead;
    if (h !== undefined) {
      const v = h.call(this.mem, a, size);
      if (v !== undefined) return v & (size === 1 ? 0xff : 0xffff);
    }
    this.exit = { reason: 'mmio', executed: 0, dir: 'read', addr: a, size, value: 0 };
    this.pending = { kind: 'mmio-read', replay: this.replay };
    throw ABANDON;
  }

  private mmioWrite(a: number, size: 1 | 2, v: number): void {
    const h = this.mem.mmioWrite;
    if (h !== undefined && h.call(this.mem, a, size, v)) return;
    // Writes are posted: the instruction retires and the run loop stops after it. Further
    // writes by the same instruction (an interrupt frame pushed into MMIO) are queued and
    // reported by the following run() calls before anything else executes.
    const w: CpuExit = { reason: 'mmio', executed: 0, dir: 'write', addr: a, size, value: v };
    if (this.exit === null) this.exit = w;
    else this.postedWrites.push(w);
  }

  fetch8(): number {
    const ip = this.ip;
    this.ip = (ip + 1) & 0xffff;
    return this.rdLin8(((this.sregs[CS] << 4) + ip) & this.amask);
  }

  fetch16(): number {
    const lo = this.fetch8();
    return lo | (this.fetch8() << 8);
  }

  push(v: number): void {
    const sp = (this.regs[SP] - 2) & 0xffff;
    this.regs[SP] = sp;
    this.wr16(SS, sp, v);
  }

  pop(): number {
    const sp = this.regs[SP];
    const v = this.rd16(SS, sp);
    this.regs[SP] = sp + 2;
    return v;
  }

  // ---- ModRM ----

  /** Fetch a ModRM byte and, for memory forms, the displacement; computes eaSeg:eaOff. */
  decodeModrm(): number {
    const m = this.fetch8();
    this.modrm = m;
    if (m < 0xc0) this.calcEa(m);
    return m;
  }

  private calcEa(m: number): void {
    const r = this.regs;
    let off: number;
    let seg = DS;
    switch (m & 7) {
      case 0: off = r[BX] + r[SI]; break;
      case 1: off = r[BX] + r[DI]; break;
      case 2: off = r[BP] + r[SI]; seg = SS; break;
      case 3: off = r[BP] + r[DI]; seg = SS; break;
      case 4: off = r[SI]; break;
      case 5: off = r[DI]; break;
      case 6:
        if (m < 0x40) { off = this.fetch16(); } else { off = r[BP]; seg = SS; }
        break;
      default: off = r[BX]; break;
    }
    if (m >= 0x80) off += this.fetch16();
    else if (m >= 0x40) off += (this.fetch8() << 24) >> 24;
    this.eaOff = off & 0xffff;
    this.eaSeg = this.segOvr >= 0 ? this.segOvr : seg;
  }

  rm8(): number {
    const m = this.modrm;
    return m >= 0xc0 ? this.regs8[BYTE_REG[m & 7]] : this.rd8(this.eaSeg, this.eaOff);
  }

  setRm8(v: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.regs8[BYTE_REG[m & 7]] = v;
    else this.wr8(this.eaSeg, this.eaOff, v);
  }

  rm16(): number {
    const m = this.modrm;
    return m >= 0xc0 ? this.regs[m & 7] : this.rd16(this.eaSeg, this.eaOff);
  }

  setRm16(v: number): void {
    const m = this.modrm;
    if (m >= 0xc0) this.regs[m & 7] = v;
    else this.wr16(this.eaSeg, this.eaOff, v);
  }

  /** Default data segment for non-ModRM memory operands (string source, XLAT, moffs). */
  dataSeg(): number {
    return this.segOvr >= 0 ? this.segOvr : DS;
  }

  // ======================================================================================
  // Interrupts and faults
  // ======================================================================================

  /** Vector through the IVT: push FLAGS, CS, IP; clear IF and TF. */
  interrupt(vector: number): void {
    const f = this.flagsNow();
    this.push(f);
    this.flagsBase = f & ~(IF | TF);
    this.push(this.sregs[CS]);
    this.push(this.ip);
    const a = (vector & 0xff) << 2;
    this.ip = this.rdLin8(a) | (this.rdLin8(a + 1) << 8);
    this.sregs[CS] = this.rdLin8(a + 2) | (this.rdLin8(a + 3) << 8);
    this.recomputeAttention();
  }

  /** A software interrupt or exception: exits if the vector is in the trap table. */
  softInt(vector: number, kind: 'int' | 'exception'): void {
    if (this.intExit[vector] !== 0) {
      this.exit = { reason: 'interrupt-exit', executed: 0, vector, kind };
      return;
    }
    this.interrupt(vector);
  }

  /**
   * Divide error. The 8086 pushes the address of the next instruction; the 186 model pushes
   * the faulting instruction's address (so the handler can restart it).
   */
  divideError(): void {
    if (this.is186) {
      this.ip = this.startIp;
      this.sregs[CS] = this.startCs;
    }
    this.softInt(0, 'exception');
  }

  /** Abandon the current instruction with a fault (186 model: #UD, #GP, BOUND). */
  fault(vector: number): never {
    this.faultVector = vector;
    throw ABANDON;
  }

  private recomputeAttention(): void {
    let a = 0;
    if (this.irqQueue.length !== 0 && (this.flagsBase & IF) !== 0) a |= ATT_IRQ;
    if (this.shadow) a |= ATT_SHADOW;
    if (this.trapPending || (this.flagsBase & TF) !== 0) a |= ATT_TRAP;
    if (this.replay.length !== 0) a |= ATT_REPLAY;
    this.attention = a;
  }

  /** Hold off interrupts and single-step for one instruction (MOV/POP SS, STI). */
  private setShadow(): void {
    this.shadow = true;
    this.attention |= ATT_SHADOW;
  }

  /**
   * Work at an instruction boundary when something is flagged: drop a consumed MMIO replay,
   * deliver a single-step trap, take an external interrupt, arm the trap for the next
   * instruction. Returns true if the loop must stop (HLT with nothing to take, or an exit).
   */
  private boundary(): boolean {
    if (this.replay.length !== 0 && this.pending === null && this.replayPos > 0) {
      this.replay = [];
      this.replayPos = 0;
    }
    if (this.shadow) {
      this.shadow = false;
    } else {
      if (this.trapPending) {
        this.trapPending = false;
        this.halted = false;
        this.softInt(1, 'exception');
        if (this.exit !== null) { this.recomputeAttention(); return true; }
      }
      if (this.irqQueue.length !== 0 && (this.flagsBase & IF) !== 0) {
        const v = this.irqQueue.shift()!;
        this.halted = false;
        this.interrupt(v);
      }
    }
    this.trapPending = (this.flagsBase & TF) !== 0;
    this.recomputeAttention();
    if (this.halted) {
      this.exit = { reason: 'hlt', executed: 0 };
      return true;
    }
    // Delivering an interrupt can itself exit (its frame pushed into MMIO).
    return this.exit !== null;
  }

  // ======================================================================================
  // The run loop
  // ======================================================================================

  private loop(budget: number, whole: boolean): number {
    let executed = 0;
    if (this.halted) {
      this.attention |= ATT_IRQ; // make the boundary check run to see if we can wake
    }
    for (;;) {
      try {
        while (executed < budget) {
          if (this.attention !== 0 && this.boundary()) return executed;
          // Specialised fast path first; it stops before anything it does not handle.
          if (this.attention === 0 && this.fast) {
            executed += this.fastRun(budget - executed);
            if (executed >= budget) return executed;
          }
          this.startIp = this.ip;
          this.startCs = this.sregs[CS];
          this.startSp = this.regs[SP];
          this.replayPos = 0;
          this.repBudget = whole ? 0x7fffffff : budget - executed;
          executed += this.execute();
          if (this.exit !== null) return executed;
        }
        return executed;
      } catch (e) {
        if (e !== ABANDON) throw e;
        this.segOvr = -1;
        this.ip = this.startIp;
        this.sregs[CS] = this.startCs;
        if (this.exit !== null) {
          this.replayPos = 0;
          return executed; // MMIO read exit: re-executed once the caller completes it
        }
        // A 186 fault: the instruction is undone (IP and SP) and the exception taken.
        this.regs[SP] = this.startSp;
        const v = this.faultVector;
        this.faultVector = -1;
        this.softInt(v, 'exception');
        executed++;
        if (this.exit !== null) return executed;
      }
    }
  }

  /**
   * The fast path, specialised from the opcode table for the forms real-mode code spends its time
   * in: register-to-register and immediate ALU/MOV/TEST/XCHG, INC/DEC, PUSH/POP, near
   * CALL/RET/JMP, Jcc, LOOP/JCXZ — executed inline while the code bytes sit in one RAM page and
   * the stack word in RAM, so none of them can fault or exit. It stops, without consuming it, at
   * the first instruction it does not specialise, which the general executor then runs. Returns
   * the number of instructions retired. Its results are checked against the same conformance data.
   */
  private fastRun(max: number): number {
    const regs = this.regs;
    const r8 = this.regs8;
    const pages = this.pages;
    const am = this.amask;
    const csBase = this.sregs[CS] << 4;
    let ip = this.ip;
    let n = 0;
    let codePage = -1;
    let code: Uint8Array = EMPTY_PAGE;
    outer: while (n < max) {
      const lin = (csBase + ip) & am;
      if (lin >>> 12 !== codePage) {
        const p = pages[lin >>> 12];
        if (p === null) break;
        code = p;
        codePage = lin >>> 12;
      }
      let o = lin & PAGE_MASK;
      if (o > 0xff8 || ip > 0xfff8) break;
      let op = code[o];
      // One segment override is taken here for the ModRM forms below; anything else prefixed
      // goes to the general path.
      let pfx = 0;
      let ovr = -1;
      if ((op & 0xe7) === 0x26) {
        ovr = (op >> 3) & 3;
        op = code[o + 1];
        if (FAST_PREFIXABLE[op] === 0) break;
        pfx = 1;
        o += 1;
      }
      switch (op) {
        case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39:
        case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b:
        case 0x81: case 0x83: case 0x85: case 0x89: case 0x8b: case 0xc7: {
          // Word forms with ModRM: ALU Ev,Gv / Gv,Ev / Ev,imm, TEST, MOV.
          const m = code[o + 1];
          const g = (m >> 3) & 7;
          let len = 2;
          let mem = EMPTY_PAGE;
          let mo = 0;
          let e: number; // the r/m operand's value
          if (m >= 0xc0) {
            e = regs[m & 7];
          } else {
            len += this.fastEa(m, code, o + 2, ovr);
            const off = this.eaOff;
            const la = ((this.sregs[this.eaSeg] << 4) + off) & am;
            const p = pages[la >>> 12];
            mo = la & PAGE_MASK;
            if (p === null || mo === PAGE_MASK || off === 0xffff) break outer;
            mem = p;
            e = p[mo] | (p[mo + 1] << 8);
          }
          let aop: number, d: number, v: number;
          if (op < 0x40) {
            aop = op >> 3;
            if ((op & 2) !== 0) { d = regs[g]; v = e; } else { d = e; v = regs[g]; }
          } else if (op === 0x81) {
            aop = g; d = e; v = code[o + len] | (code[o + len + 1] << 8); len += 2;
          } else if (op === 0x83) {
            aop = g; d = e; v = ((code[o + len] << 24) >> 24) & 0xffff; len += 1;
          } else if (op === 0x85) {
            aop = 4; d = e; v = regs[g];
          } else {
            // MOV: 89 Ev,Gv / 8B Gv,Ev / C7 Ev,Iv
            if (op === 0x8b) regs[g] = e;
            else {
              let val: number;
              if (op === 0x89) val = regs[g];
              else {
                if (g !== 0) break outer;
                val = code[o + len] | (code[o + len + 1] << 8);
                len += 2;
              }
              if (m >= 0xc0) regs[m & 7] = val;
              else { mem[mo] = val; mem[mo + 1] = val >>> 8; }
            }
            ip += len + pfx;
            break;
          }
          let r: number;
          switch (aop) {
            case 0: r = d + v; this.fOp = F_ADD16; break;
            case 1: r = d | v; this.fOp = F_LOG16; break;
            case 2: r = d + v + this.cf(); this.fOp = F_ADD16; break;
            case 3: r = d - v - this.cf(); this.fOp = F_SUB16; break;
            case 4: r = d & v; this.fOp = F_LOG16; break;
            case 6: r = d ^ v; this.fOp = F_LOG16; break;
            default: r = d - v; this.fOp = F_SUB16; break;
          }
          this.fRes = r;
          this.fDst = d;
          this.fSrc = v;
          if (aop !== 7 && op !== 0x85) {
            if (op < 0x40 && (op & 2) !== 0) regs[g] = r;
            else if (m >= 0xc0) regs[m & 7] = r;
            else { mem[mo] = r; mem[mo + 1] = r >>> 8; }
          }
          ip += len + pfx;
          break;
        }
        case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38:
        case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a:
        case 0x80: case 0x82: case 0x84: case 0x88: case 0x8a: case 0xc6: {
          // Byte forms with ModRM.
          const m = code[o + 1];
          const g = BYTE_REG[(m >> 3) & 7];
          let len = 2;
          let mem = EMPTY_PAGE;
          let mo = 0;
          let e: number;
          if (m >= 0xc0) {
            e = r8[BYTE_REG[m & 7]];
          } else {
            len += this.fastEa(m, code, o + 2, ovr);
            const la = ((this.sregs[this.eaSeg] << 4) + this.eaOff) & am;
            const p = pages[la >>> 12];
            if (p === null) break outer;
            mem = p;
            mo = la & PAGE_MASK;
            e = p[mo];
          }
          let aop: number, d: number, v: number;
          if (op < 0x40) {
            aop = op >> 3;
            if ((op & 2) !== 0) { d = r8[g]; v = e; } else { d = e; v = r8[g]; }
          } else if (op === 0x80 || op === 0x82) {
            aop = (m >> 3) & 7; d = e; v = code[o + len]; len += 1;
          } else if (op === 0x84) {
            aop = 4; d = e; v = r8[g];
          } else {
            // MOV: 88 Eb,Gb / 8A Gb,Eb / C6 Eb,Ib
            if (op === 0x8a) r8[g] = e;
            else {
              let val: number;
              if (op === 0x88) val = r8[g];
              else {
                if ((m & 0x38) !== 0) break outer;
                val = code[o + len];
                len += 1;
              }
              if (m >= 0xc0) r8[BYTE_REG[m & 7]] = val;
              else mem[mo] = val;
            }
            ip += len + pfx;
            break;
          }
          let r: number;
          switch (aop) {
            case 0: r = d + v; this.fOp = F_ADD8; break;
            case 1: r = d | v; this.fOp = F_LOG8; break;
            case 2: r = d + v + this.cf(); this.fOp = F_ADD8; break;
            case 3: r = d - v - this.cf(); this.fOp = F_SUB8; break;
            case 4: r = d & v; this.fOp = F_LOG8; break;
            case 6: r = d ^ v; this.fOp = F_LOG8; break;
            default: r = d - v; this.fOp = F_SUB8; break;
          }
          this.fRes = r;
          this.fDst = d;
          this.fSrc = v;
          if (aop !== 7 && op !== 0x84) {
            if (op < 0x40 && (op & 2) !== 0) r8[g] = r;
            else if (m >= 0xc0) r8[BYTE_REG[m & 7]] = r;
            else mem[mo] = r;
          }
          ip += len + pfx;
          break;
        }
        case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c: {
          const res = this.alu8(op >> 3, r8[0], code[o + 1]);
          if (op !== 0x3c) r8[0] = res;
          ip += 2;
          break;
        }
        case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d: {
          const res = this.alu16(op >> 3, regs[AX], code[o + 1] | (code[o + 2] << 8));
          if (op !== 0x3d) regs[AX] = res;
          ip += 3;
          break;
        }
        case 0x8d: {
          const m = code[o + 1];
          if (m >= 0xc0) break outer;
          const len = 2 + this.fastEa(m, code, o + 2, ovr);
          regs[(m >> 3) & 7] = this.eaOff;
          ip += len + pfx;
          break;
        }
        case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
        case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f: {
          // INC/DEC keep CF: fold the current carry into flagsBase before going lazy.
          const f = this.fOp;
          const c = f === F_NONE || f >= F_INC8 ? this.flagsBase & CF : f >= F_LOG8 ? 0 : (this.fRes >>> (f & 1 ? 16 : 8)) & 1;
          this.flagsBase = (this.flagsBase & ~CF) | c;
          const d = regs[op & 7];
          const r = op < 0x48 ? d + 1 : d - 1;
          this.fOp = op < 0x48 ? F_INC16 : F_DEC16;
          this.fRes = r;
          this.fDst = d;
          this.fSrc = 1;
          regs[op & 7] = r;
          ip += 1;
          break;
        }
        case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
        case 0x06: case 0x0e: case 0x16: case 0x1e: case 0xe8: {
          const sp = (regs[SP] - 2) & 0xffff;
          const sa = ((this.sregs[SS] << 4) + sp) & am;
          const st = pages[sa >>> 12];
          const so = sa & PAGE_MASK;
          if (st === null || so === PAGE_MASK || sp === 0xffff) break outer;
          let v: number;
          if (op === 0xe8) {
            v = ip + 3;
            ip = (v + (code[o + 1] | (code[o + 2] << 8))) & 0xffff;
          } else if (op < 0x50) {
            v = this.sregs[op >> 3]; // PUSH ES/CS/SS/DS
            ip += 1;
          } else {
            v = op === 0x54 ? sp : regs[op & 7]; // PUSH SP pushes the new value (8086/186)
            ip += 1;
          }
          st[so] = v;
          st[so + 1] = v >>> 8;
          regs[SP] = sp;
          break;
        }
        case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        case 0x07: case 0x1f: case 0xc2: case 0xc3: {
          const sp = regs[SP];
          const sa = ((this.sregs[SS] << 4) + sp) & am;
          const st = pages[sa >>> 12];
          const so = sa & PAGE_MASK;
          if (st === null || so === PAGE_MASK || sp === 0xffff) break outer;
          const v = st[so] | (st[so + 1] << 8);
          if (op === 0xc3) {
            regs[SP] = sp + 2;
            ip = v;
          } else if (op === 0xc2) {
            regs[SP] = sp + 2 + (code[o + 1] | (code[o + 2] << 8)); // RET imm16
            ip = v;
          } else if (op < 0x58) {
            regs[SP] = sp + 2;
            this.sregs[op >> 3] = v; // POP ES/DS (POP SS needs the interrupt shadow: general path)
            ip += 1;
          } else {
            regs[SP] = sp + 2;
            regs[op & 7] = v;
            ip += 1;
          }
          break;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: case 0xc0: case 0xc1: {
          // Shifts/rotates of a register (memory forms take the general path).
          const m = code[o + 1];
          if (m < 0xc0) break outer;
          let count: number;
          if (op >= 0xd0) {
            count = op < 0xd2 ? 1 : r8[2];
            ip += 2;
          } else {
            if (!this.is186) break outer; // C0/C1 are RET aliases on the 8086
            count = code[o + 2];
            ip += 3;
          }
          if ((op & 1) !== 0) regs[m & 7] = shiftRotate(this, (m >> 3) & 7, true, regs[m & 7], count);
          else r8[BYTE_REG[m & 7]] = shiftRotate(this, (m >> 3) & 7, false, r8[BYTE_REG[m & 7]], count);
          break;
        }
        case 0xaa: case 0xab: case 0xac: case 0xad: {
          // STOS/LODS without REP (REP forms are prefixed: general path, with its bulk copy).
          const word = (op & 1) !== 0;
          const store = op < 0xac;
          const idx = store ? DI : SI;
          const off = regs[idx];
          const la = ((this.sregs[store ? ES : DS] << 4) + off) & am;
          const p = pages[la >>> 12];
          const po = la & PAGE_MASK;
          if (p === null || (word && (po === PAGE_MASK || off === 0xffff))) break outer;
          if (store) {
            p[po] = r8[0];
            if (word) p[po + 1] = r8[1];
          } else if (word) regs[AX] = p[po] | (p[po + 1] << 8);
          else r8[0] = p[po];
          const size = word ? 2 : 1;
          regs[idx] = off + ((this.flagsBase & DF) !== 0 ? -size : size);
          ip += 1;
          break;
        }
        case 0x98:
          regs[AX] = (r8[0] << 24) >> 24;
          ip += 1;
          break;
        case 0x99:
          regs[DX] = regs[AX] & 0x8000 ? 0xffff : 0;
          ip += 1;
          break;
        case 0xf5: case 0xf8: case 0xf9: {
          const f = this.flagsNow();
          this.flagsBase = op === 0xf5 ? f ^ CF : op === 0xf8 ? f & ~CF : f | CF;
          ip += 1;
          break;
        }
        case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
        case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f: {
          let t: boolean;
          if ((op & 0x0e) === 4) {
            const f = this.fOp;
            t = f === F_NONE ? (this.flagsBase & ZF) !== 0 : (this.fRes & (f & 1 ? 0xffff : 0xff)) === 0;
            if (op & 1) t = !t;
          } else {
            t = this.cond(op & 15);
          }
          ip = (ip + 2 + (t ? (code[o + 1] << 24) >> 24 : 0)) & 0xffff;
          break;
        }
        case 0x90:
          ip += 1;
          break;
        case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
          const v = regs[AX];
          regs[AX] = regs[op & 7];
          regs[op & 7] = v;
          ip += 1;
          break;
        }
        case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
          r8[BYTE_REG[op & 7]] = code[o + 1];
          ip += 2;
          break;
        case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
          regs[op & 7] = code[o + 1] | (code[o + 2] << 8);
          ip += 3;
          break;
        case 0xe2: {
          const cx = (regs[CX] - 1) & 0xffff;
          regs[CX] = cx;
          ip = (ip + 2 + (cx !== 0 ? (code[o + 1] << 24) >> 24 : 0)) & 0xffff;
          break;
        }
        case 0xe3:
          ip = (ip + 2 + (regs[CX] === 0 ? (code[o + 1] << 24) >> 24 : 0)) & 0xffff;
          break;
        case 0xe9:
          ip = (ip + 3 + (code[o + 1] | (code[o + 2] << 8))) & 0xffff;
          break;
        case 0xeb:
          ip = (ip + 2 + ((code[o + 1] << 24) >> 24)) & 0xffff;
          break;
        case 0xfc:
          this.flagsBase &= ~DF;
          ip += 1;
          break;
        case 0xfd:
          this.flagsBase |= DF;
          ip += 1;
          break;
        default:
          break outer;
      }
      n++;
    }
    this.ip = ip;
    return n;
  }

  /**
   * Effective address for the fast path, reading the displacement straight from the code page at
   * index p, with segment override `ovr` (-1 for none). Sets eaOff/eaSeg and returns the
   * displacement's size.
   */
  private fastEa(m: number, code: Uint8Array, p: number, ovr: number): number {
    const r = this.regs;
    let off: number;
    let seg = DS;
    switch (m & 7) {
      case 0: off = r[BX] + r[SI]; break;
      case 1: off = r[BX] + r[DI]; break;
      case 2: off = r[BP] + r[SI]; seg = SS; break;
      case 3: off = r[BP] + r[DI]; seg = SS; break;
      case 4: off = r[SI]; break;
      case 5: off = r[DI]; break;
      case 6:
        if (m < 0x40) {
          this.eaOff = code[p] | (code[p + 1] << 8);
          this.eaSeg = ovr >= 0 ? ovr : DS;
          return 2;
        }
        off = r[BP];
        seg = SS;
        break;
      default: off = r[BX]; break;
    }
    let len = 0;
    if (m >= 0x80) { off += code[p] | (code[p + 1] << 8); len = 2; }
    else if (m >= 0x40) { off += (code[p] << 24) >> 24; len = 1; }
    this.eaOff = off & 0xffff;
    this.eaSeg = ovr >= 0 ? ovr : seg;
    return len;
  }

  /** Execute one instruction; returns how many instructions it retired (REP iterations). */
  private execute(): number {
    const regs = this.regs;
    const r8 = this.regs8;
    let op = this.fetch8();
    this.segOvr = -1;
    this.rep = 0;
    if (IS_PREFIX[op] !== 0) {
      let count = 0;
      for (;;) {
        count++;
        if (op === 0xf3) this.rep = 1;
        else if (op === 0xf2) this.rep = 2;
        else if (op === 0xf1) {
          if (this.is186) this.fault(6);
        } else if (op !== 0xf0) this.segOvr = (op >> 3) & 3;
        op = this.fetch8();
        if (IS_PREFIX[op] === 0) break;
      }
      // The 186 model (as the 286 data shows) faults on an instruction longer than 10 bytes,
      // which only redundant prefixes can make (no unprefixed form exceeds 6 bytes). Sized by the
      // table-driven decoder.
      if (count > 4 && this.is186 && this.instructionLength() > 10) this.fault(13);
    }
    switch (op) {
      // ---- ALU: 00-3F (ADD OR ADC SBB AND SUB XOR CMP) ----
      case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38: {
        this.decodeModrm();
        const aop = op >> 3;
        const res = this.alu8(aop, this.rm8(), r8[BYTE_REG[(this.modrm >> 3) & 7]]);
        if (aop !== 7) this.setRm8(res);
        return 1;
      }
      case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39: {
        const m = this.decodeModrm();
        const aop = op >> 3;
        if (m >= 0xc0) {
          const res = this.alu16(aop, regs[m & 7], regs[(m >> 3) & 7]);
          if (aop !== 7) regs[m & 7] = res;
        } else {
          const res = this.alu16(aop, this.rd16(this.eaSeg, this.eaOff), regs[(m >> 3) & 7]);
          if (aop !== 7) this.wr16(this.eaSeg, this.eaOff, res);
        }
        return 1;
      }
      case 0x02: case 0x0a: case 0x12: case 0x1a: case 0x22: case 0x2a: case 0x32: case 0x3a: {
        this.decodeModrm();
        const aop = op >> 3;
        const ri = BYTE_REG[(this.modrm >> 3) & 7];
        const res = this.alu8(aop, r8[ri], this.rm8());
        if (aop !== 7) r8[ri] = res;
        return 1;
      }
      case 0x03: case 0x0b: case 0x13: case 0x1b: case 0x23: case 0x2b: case 0x33: case 0x3b: {
        const m = this.decodeModrm();
        const aop = op >> 3;
        const ri = (m >> 3) & 7;
        const res = this.alu16(aop, regs[ri], m >= 0xc0 ? regs[m & 7] : this.rd16(this.eaSeg, this.eaOff));
        if (aop !== 7) regs[ri] = res;
        return 1;
      }
      case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c: {
        const res = this.alu8(op >> 3, r8[0], this.fetch8());
        if (op !== 0x3c) r8[0] = res;
        return 1;
      }
      case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d: {
        const res = this.alu16(op >> 3, regs[AX], this.fetch16());
        if (op !== 0x3d) regs[AX] = res;
        return 1;
      }
      // ---- segment push/pop ----
      case 0x06: case 0x0e: case 0x16: case 0x1e:
        this.push(this.sregs[op >> 3]);
        return 1;
      case 0x07: case 0x17: case 0x1f: {
        const v = this.pop();
        this.sregs[op >> 3] = v;
        if (op === 0x17) this.setShadow();
        return 1;
      }
      case 0x0f:
        if (this.is186) this.fault(6);
        this.sregs[CS] = this.pop(); // POP CS: 8086 only
        return 1;
      // ---- BCD ----
      case 0x27: daa(this); return 1;
      case 0x2f: das(this); return 1;
      case 0x37: aaa(this); return 1;
      case 0x3f: aas(this); return 1;
      // ---- INC/DEC/PUSH/POP reg ----
      case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
        regs[op & 7] = this.inc(regs[op & 7], true);
        return 1;
      case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
        regs[op & 7] = this.dec(regs[op & 7], true);
        return 1;
      case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57: {
        // PUSH SP pushes the decremented value on the 8086/186.
        const sp = (regs[SP] - 2) & 0xffff;
        regs[SP] = sp;
        this.wr16(SS, sp, regs[op & 7]);
        return 1;
      }
      case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f: {
        const v = this.pop();
        regs[op & 7] = v;
        return 1;
      }
      // ---- 60-6F: 186 instructions; Jcc aliases on the 8086 ----
      case 0x60: if (this.is186) { pusha(this); return 1; } return this.jcc(op);
      case 0x61: if (this.is186) { popa(this); return 1; } return this.jcc(op);
      case 0x62: if (this.is186) { bound(this); return 1; } return this.jcc(op);
      case 0x63: case 0x64: case 0x65: case 0x66: case 0x67:
        if (this.is186) this.fault(6);
        return this.jcc(op);
      case 0x68: if (this.is186) { this.push(this.fetch16()); return 1; } return this.jcc(op);
      case 0x69: if (this.is186) { imulImm(this, false); return 1; } return this.jcc(op);
      case 0x6a: if (this.is186) { this.push(((this.fetch8() << 24) >> 24) & 0xffff); return 1; } return this.jcc(op);
      case 0x6b: if (this.is186) { imulImm(this, true); return 1; } return this.jcc(op);
      case 0x6c: case 0x6d: case 0x6e: case 0x6f:
        if (this.is186) return stringOp(this, op);
        return this.jcc(op);
      // ---- Jcc ----
      case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
      case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
        return this.jcc(op);
      // ---- group 1: ALU r/m, imm ----
      case 0x80: case 0x82: {
        this.decodeModrm();
        const aop = (this.modrm >> 3) & 7;
        const d = this.rm8();
        const res = this.alu8(aop, d, this.fetch8());
        if (aop !== 7) this.setRm8(res);
        return 1;
      }
      case 0x81: case 0x83: {
        const m = this.decodeModrm();
        const aop = (m >> 3) & 7;
        const d = this.rm16();
        const s = op === 0x81 ? this.fetch16() : ((this.fetch8() << 24) >> 24) & 0xffff;
        const res = this.alu16(aop, d, s);
        if (aop !== 7) this.setRm16(res);
        return 1;
      }
      case 0x84:
        this.decodeModrm();
        this.alu8(4, this.rm8(), r8[BYTE_REG[(this.modrm >> 3) & 7]]);
        return 1;
      case 0x85:
        this.decodeModrm();
        this.alu16(4, this.rm16(), regs[(this.modrm >> 3) & 7]);
        return 1;
      case 0x86: {
        this.decodeModrm();
        const ri = BYTE_REG[(this.modrm >> 3) & 7];
        const v = this.rm8();
        this.setRm8(r8[ri]);
        r8[ri] = v;
        return 1;
      }
      case 0x87: {
        this.decodeModrm();
        const ri = (this.modrm >> 3) & 7;
        const v = this.rm16();
        this.setRm16(regs[ri]);
        regs[ri] = v;
        return 1;
      }
      // ---- MOV ----
      case 0x88:
        this.decodeModrm();
        this.setRm8(r8[BYTE_REG[(this.modrm >> 3) & 7]]);
        return 1;
      case 0x89: {
        const m = this.decodeModrm();
        if (m >= 0xc0) regs[m & 7] = regs[(m >> 3) & 7];
        else this.wr16(this.eaSeg, this.eaOff, regs[(m >> 3) & 7]);
        return 1;
      }
      case 0x8a:
        this.decodeModrm();
        r8[BYTE_REG[(this.modrm >> 3) & 7]] = this.rm8();
        return 1;
      case 0x8b: {
        const m = this.decodeModrm();
        regs[(m >> 3) & 7] = m >= 0xc0 ? regs[m & 7] : this.rd16(this.eaSeg, this.eaOff);
        return 1;
      }
      case 0x8c: {
        const m = this.decodeModrm();
        if (this.is186 && (m & 0x20) !== 0) this.fault(6);
        this.setRm16(this.sregs[(m >> 3) & 3]);
        return 1;
      }
      case 0x8d: {
        const m = this.decodeModrm();
        if (m >= 0xc0 && this.is186) this.fault(6);
        regs[(m >> 3) & 7] = this.eaOff;
        return 1;
      }
      case 0x8e: {
        const m = this.decodeModrm();
        const s = (m >> 3) & 3;
        if (this.is186 && ((m & 0x20) !== 0 || s === CS)) this.fault(6);
        this.sregs[s] = this.rm16();
        if (s === SS) this.setShadow();
        return 1;
      }
      case 0x8f: {
        const m = this.decodeModrm();
        if (this.is186 && (m & 0x38) !== 0) this.fault(6);
        const sp = regs[SP];
        const v = this.rd16(SS, sp);
        regs[SP] = sp + 2;
        if (m >= 0xc0) regs[m & 7] = v;
        else this.wr16(this.eaSeg, this.eaOff, v);
        return 1;
      }
      // ---- XCHG AX, r / misc ----
      case 0x90:
        return 1;
      case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97: {
        const v = regs[AX];
        regs[AX] = regs[op & 7];
        regs[op & 7] = v;
        return 1;
      }
      case 0x98: regs[AX] = (r8[0] << 24) >> 24; return 1;
      case 0x99: regs[DX] = regs[AX] & 0x8000 ? 0xffff : 0; return 1;
      case 0x9a: {
        const off = this.fetch16();
        const seg = this.fetch16();
        this.push(this.sregs[CS]);
        this.push(this.ip);
        this.ip = off;
        this.sregs[CS] = seg;
        return 1;
      }
      case 0x9b: return 1; // WAIT: no coprocessor, TEST# is inactive
      case 0x9c: this.push(this.flagsNow()); return 1;
      case 0x9d: this.setFlags(this.pop()); return 1;
      case 0x9e: this.setSome(SF | ZF | AF | PF | CF, r8[1]); return 1;
      case 0x9f: r8[1] = this.flagsNow() & 0xff; return 1;
      // ---- MOV moffs ----
      case 0xa0: r8[0] = this.rd8(this.dataSeg(), this.fetch16()); return 1;
      case 0xa1: regs[AX] = this.rd16(this.dataSeg(), this.fetch16()); return 1;
      case 0xa2: this.wr8(this.dataSeg(), this.fetch16(), r8[0]); return 1;
      case 0xa3: this.wr16(this.dataSeg(), this.fetch16(), regs[AX]); return 1;
      case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
        return stringOp(this, op);
      case 0xa8: this.alu8(4, r8[0], this.fetch8()); return 1;
      case 0xa9: this.alu16(4, regs[AX], this.fetch16()); return 1;
      // ---- MOV reg, imm ----
      case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
        r8[BYTE_REG[op & 7]] = this.fetch8();
        return 1;
      case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
        regs[op & 7] = this.fetch16();
        return 1;
      // ---- C0-CF ----
      case 0xc0: case 0xc1:
        if (this.is186) {
          const m = this.decodeModrm();
          if (op === 0xc0) this.setRm8(shiftRotate(this, (m >> 3) & 7, false, this.rm8(), this.fetch8()));
          else this.setRm16(shiftRotate(this, (m >> 3) & 7, true, this.rm16(), this.fetch8()));
          return 1;
        }
        return this.retNear(op); // 8086: C0/C1 are aliases of RET imm16 / RET
      case 0xc2: case 0xc3:
        return this.retNear(op);
      case 0xc4: case 0xc5: {
        const m = this.decodeModrm();
        if (m >= 0xc0 && this.is186) this.fault(6);
        const off = this.rd16(this.eaSeg, this.eaOff);
        const seg = this.rd16(this.eaSeg, (this.eaOff + 2) & 0xffff);
        regs[(m >> 3) & 7] = off;
        this.sregs[op === 0xc4 ? ES : DS] = seg;
        return 1;
      }
      case 0xc6: {
        const m = this.decodeModrm();
        if (this.is186 && (m & 0x38) !== 0) this.fault(6);
        this.setRm8(this.fetch8());
        return 1;
      }
      case 0xc7: {
        const m = this.decodeModrm();
        if (this.is186 && (m & 0x38) !== 0) this.fault(6);
        this.setRm16(this.fetch16());
        return 1;
      }
      case 0xc8: case 0xc9:
        if (this.is186) {
          if (op === 0xc8) enter(this);
          else leave(this);
          return 1;
        }
        return this.retFar(op); // 8086: C8/C9 are aliases of RETF imm16 / RETF
      case 0xca: case 0xcb:
        return this.retFar(op);
      case 0xcc: this.softInt(3, 'int'); return 1;
      case 0xcd: this.softInt(this.fetch8(), 'int'); return 1;
      case 0xce:
        if ((this.flagsNow() & OF) !== 0) this.softInt(4, 'int');
        return 1;
      case 0xcf: {
        const sp = regs[SP];
        const ip = this.rd16(SS, sp);
        const cs = this.rd16(SS, (sp + 2) & 0xffff);
        const f = this.rd16(SS, (sp + 4) & 0xffff);
        regs[SP] = sp + 6;
        this.ip = ip;
        this.sregs[CS] = cs;
        this.setFlags(f);
        return 1;
      }
      // ---- shifts ----
      case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        const m = this.decodeModrm();
        const count = op < 0xd2 ? 1 : r8[2];
        if ((op & 1) === 0) {
          const v = this.rm8();
          this.setRm8(shiftRotate(this, (m >> 3) & 7, false, v, count));
        } else {
          const v = this.rm16();
          this.setRm16(shiftRotate(this, (m >> 3) & 7, true, v, count));
        }
        return 1;
      }
      case 0xd4: aam(this, this.fetch8()); return 1;
      case 0xd5: aad(this, this.fetch8()); return 1;
      case 0xd6: r8[0] = this.cf() ? 0xff : 0; return 1; // SALC (undocumented)
      case 0xd7: r8[0] = this.rd8(this.dataSeg(), (regs[BX] + r8[0]) & 0xffff); return 1;
      case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
        this.decodeModrm(); // ESC: no coprocessor attached; the operand is decoded and ignored
        return 1;
      // ---- loops, jumps, I/O ----
      case 0xe0: case 0xe1: case 0xe2: {
        const d = (this.fetch8() << 24) >> 24;
        const cx = (regs[CX] - 1) & 0xffff;
        regs[CX] = cx;
        let take = cx !== 0;
        if (op === 0xe0) take = take && !this.zf();
        else if (op === 0xe1) take = take && this.zf();
        if (take) this.ip = (this.ip + d) & 0xffff;
        return 1;
      }
      case 0xe3: {
        const d = (this.fetch8() << 24) >> 24;
        if (regs[CX] === 0) this.ip = (this.ip + d) & 0xffff;
        return 1;
      }
      case 0xe4: this.portIn(this.fetch8(), 1); return 1;
      case 0xe5: this.portIn(this.fetch8(), 2); return 1;
      case 0xe6: this.portOut(this.fetch8(), 1, r8[0]); return 1;
      case 0xe7: this.portOut(this.fetch8(), 2, regs[AX]); return 1;
      case 0xec: this.portIn(regs[DX], 1); return 1;
      case 0xed: this.portIn(regs[DX], 2); return 1;
      case 0xee: this.portOut(regs[DX], 1, r8[0]); return 1;
      case 0xef: this.portOut(regs[DX], 2, regs[AX]); return 1;
      case 0xe8: {
        const d = this.fetch16();
        this.push(this.ip);
        this.ip = (this.ip + d) & 0xffff;
        return 1;
      }
      case 0xe9: {
        const d = this.fetch16();
        this.ip = (this.ip + d) & 0xffff;
        return 1;
      }
      case 0xea: {
        const off = this.fetch16();
        const seg = this.fetch16();
        this.ip = off;
        this.sregs[CS] = seg;
        return 1;
      }
      case 0xeb: {
        const d = (this.fetch8() << 24) >> 24;
        this.ip = (this.ip + d) & 0xffff;
        return 1;
      }
      // ---- F0-FF ----
      case 0xf4:
        // Halt until an interrupt; the next boundary takes a deliverable one or exits 'hlt'.
        this.halted = true;
        this.attention |= ATT_IRQ;
        return 1;
      case 0xf5: this.flagsBase = this.flagsNow() ^ CF; return 1;
      case 0xf6: case 0xf7:
        mulDivGroup(this, op === 0xf7);
        return 1;
      case 0xf8: this.flagsBase = this.flagsNow() & ~CF; return 1;
      case 0xf9: this.flagsBase = this.flagsNow() | CF; return 1;
      case 0xfa: this.flagsBase &= ~IF; return 1;
      case 0xfb:
        if ((this.flagsBase & IF) === 0) {
          this.flagsBase |= IF;
          this.shadow = true;
          this.recomputeAttention();
        }
        return 1;
      case 0xfc: this.flagsBase &= ~DF; return 1;
      case 0xfd: this.flagsBase |= DF; return 1;
      case 0xfe: {
        const m = this.decodeModrm();
        const sub = (m >> 3) & 7;
        if (sub === 0) this.setRm8(this.inc(this.rm8(), false));
        else if (sub === 1) this.setRm8(this.dec(this.rm8(), false));
        else if (this.is186) this.fault(6);
        return 1;
      }
      case 0xff:
        this.groupFF();
        return 1;
      default:
        // Every byte is handled above (prefixes never reach here).
        throw new Error(`x86-cpu: unhandled opcode ${op.toString(16)}`);
    }
  }

  private retNear(op: number): number {
    const n = (op & 1) === 0 ? this.fetch16() : 0;
    this.ip = this.pop();
    this.regs[SP] = this.regs[SP] + n;
    return 1;
  }

  private retFar(op: number): number {
    const n = (op & 1) === 0 ? this.fetch16() : 0;
    const regs = this.regs;
    const sp = regs[SP];
    const ip = this.rd16(SS, sp);
    const cs = this.rd16(SS, (sp + 2) & 0xffff);
    regs[SP] = sp + 4 + n;
    this.ip = ip;
    this.sregs[CS] = cs;
    return 1;
  }

  /** Length of the instruction at startCs:startIp, from the opcode table. */
  instructionLength(): number {
    const base = this.startCs << 4, ip = this.startIp;
    return decode((i) => this.rdLin8((base + ((ip + i) & 0xffff)) & this.amask), this.model).length;
  }

  private jcc(op: number): number {
    const d = (this.fetch8() << 24) >> 24;
    if (this.cond(op & 15)) this.ip = (this.ip + d) & 0xffff;
    return 1;
  }

  private groupFF(): void {
    const m = this.decodeModrm();
    const sub = (m >> 3) & 7;
    const regs = this.regs;
    switch (sub) {
      case 0: this.setRm16(this.inc(this.rm16(), true)); return;
      case 1: this.setRm16(this.dec(this.rm16(), true)); return;
      case 2: {
        const t = this.rm16();
        this.push(this.ip);
        this.ip = t;
        return;
      }
      case 3: case 5: {
        if (m >= 0xc0 && this.is186) this.fault(6);
        // The register form is undefined on the 8086 (the chip reuses a stale internal address;
        // the data excludes it). We take the register as the offset and keep CS.
        const off = m >= 0xc0 ? regs[m & 7] : this.rd16(this.eaSeg, this.eaOff);
        const seg = m >= 0xc0 ? this.sregs[CS] : this.rd16(this.eaSeg, (this.eaOff + 2) & 0xffff);
        if (sub === 3) {
          this.push(this.sregs[CS]);
          this.push(this.ip);
        }
        this.ip = off;
        this.sregs[CS] = seg;
        return;
      }
      case 4: this.ip = this.rm16(); return;
      default: {
        if (sub === 7 && this.is186) this.fault(6);
        if (m === 0xf4 || m === 0xfc) {
          // PUSH SP: the 8086 pushes the decremented value
          const sp = (regs[SP] - 2) & 0xffff;
          regs[SP] = sp;
          this.wr16(SS, sp, sp);
          return;
        }
        this.push(this.rm16());
        return;
      }
    }
  }

  // ---- port I/O ----

  private portIn(port: number, size: 1 | 2): void {
    const h = this.ports.in;
    if (h !== undefined) {
      const v = h.call(this.ports, port, size);
      if (v !== undefined) {
        if (size === 1) this.regs8[0] = v;
        else this.regs[AX] = v;
        return;
      }
    }
    this.pending = { kind: 'in', size };
    this.exit = { reason: 'io', executed: 0, dir: 'in', port, size, value: 0, string: false, rep: false, count: 1, addr: 0, step: 0 };
  }

  private portOut(port: number, size: 1 | 2, value: number): void {
    const h = this.ports.out;
    if (h !== undefined && h.call(this.ports, port, size, value)) return;
    this.exit = { reason: 'io', executed: 0, dir: 'out', port, size, value, string: false, rep: false, count: 1, addr: 0, step: 0 };
  }

  /**
   * INS/OUTS with no synchronous port handler: one exit for the whole (REP) transfer.
   * Called by the string family with IP still at the instruction start.
   */
  stringIoExit(dir: 'in' | 'out', port: number, size: 1 | 2, count: number, seg: number, off: number): void {
    const step = this.flagsBase & DF ? -size : size;
    // Never run past the segment's end, so the caller walks contiguous linear addresses.
    const room = step > 0 ? Math.floor((0x10000 - off) / size) : Math.floor(off / size) + 1;
    const n = Math.max(1, Math.min(count, room));
    const rep = this.rep !== 0;
    this.pending = { kind: 'string-io', dir, size, rep, count: n, nextIp: this.ip };
    this.ip = this.startIp;
    this.sregs[CS] = this.startCs;
    this.exit = {
      reason: 'io', executed: 0, dir, port, size, value: 0, string: true, rep, count: n,
      addr: this.lin(seg, off), step,
    };
  }
}

export type RegName =
  | 'ax' | 'cx' | 'dx' | 'bx' | 'sp' | 'bp' | 'si' | 'di'
  | 'al' | 'cl' | 'dl' | 'bl' | 'ah' | 'ch' | 'dh' | 'bh'
  | 'es' | 'cs' | 'ss' | 'ds' | 'ip';

const REG_INDEX: Record<RegName, number> = {
  ax: 0, cx: 1, dx: 2, bx: 3, sp: 4, bp: 5, si: 6, di: 7,
  al: 8, cl: 9, dl: 10, bl: 11, ah: 12, ch: 13, dh: 14, bh: 15,
  es: 16, cs: 17, ss: 18, ds: 19, ip: 20,
};
