/**
 * String family: MOVS CMPS STOS LODS SCAS (8086) and INS OUTS (186), with REP/REPE/REPNE.
 * The source is seg:SI (DS unless overridden), the destination always ES:DI; SI/DI step by the
 * element size, backwards when DF=1. Each REP iteration counts as one instruction against the
 * run budget; when the budget runs out IP stays on the instruction so it resumes where it left
 * off, as an interrupted REP does on real hardware. INS/OUTS without a synchronous port handler
 * leave as ONE exit carrying the element count (Xen's ioreq `data_is_ptr` + `count`).
 */
import type { Cpu } from '../cpu.ts';
import { AX, CX, DI, DX, ES, SI } from '../cpu.ts';
import { DF } from '../flags.ts';
import { PAGE_MASK, PAGE_SIZE } from '../memory.ts';

/** Returns the number of iterations retired (at least 1). */
export function stringOp(cpu: Cpu, op: number): number {
  const regs = cpu.regs;
  const word = (op & 1) !== 0;
  const size: 1 | 2 = word ? 2 : 1;
  const step = cpu.flagsBase & DF ? -size : size;
  const rep = cpu.rep;
  const kind = op >= 0xa4 ? (op >> 1) & 7 : op < 0x6e ? 8 : 9; // a4:2 a6:3 aa:5 ac:6 ae:7, ins 8, outs 9
  if (kind === 8 || kind === 9) return stringIo(cpu, kind === 8, size, step);
  if (rep === 0) {
    one(cpu, kind, word, step);
    return 1;
  }
  let n = 0;
  const budget = cpu.repBudget;
  const compares = kind === 3 || kind === 7;
  while (regs[CX] !== 0) {
    if (n >= budget) {
      cpu.ip = cpu.startIp; // resume this REP on the next run
      return n;
    }
    if (step > 0) {
      const k = bulk(cpu, kind, size, Math.min(regs[CX], budget - n), rep);
      if (k > 0) {
        n += k;
        if (compares && (rep === 1) !== cpu.zf()) break;
        continue;
      }
    }
    one(cpu, kind, word, step);
    regs[CX] = regs[CX] - 1;
    n++;
    if (cpu.hasExit()) {
      // An MMIO write left the loop: resume the remaining iterations after the caller's turn.
      if (regs[CX] !== 0) cpu.ip = cpu.startIp;
      return n;
    }
    if (compares && (rep === 1) !== cpu.zf()) break;
  }
  return n === 0 ? 1 : n;
}

/**
 * Fast path for a run of REP iterations with DF=0 that stay inside one RAM page for each operand
 * and do not wrap a segment: the same element-by-element semantics as `one`, without per-element
 * address translation. Returns the iterations done (0 = take the element-wise path).
 */
function bulk(cpu: Cpu, kind: number, size: number, limit: number, rep: number): number {
  const regs = cpu.regs;
  const am = cpu.amask;
  const pages = cpu.pages;
  const di = regs[DI];
  const dLin = ((cpu.sregs[ES] << 4) + di) & am;
  const dst = pages[dLin >>> 12];
  if (dst === null) return 0;
  const dOff = dLin & PAGE_MASK;
  let count = Math.min(limit, Math.floor((0x10000 - di) / size), Math.floor((PAGE_SIZE - dOff) / size));
  let src = dst;
  let sOff = 0;
  const si = regs[SI];
  if (kind === 2 || kind === 3 || kind === 6) {
    const sLin = ((cpu.sregs[cpu.dataSeg()] << 4) + si) & am;
    const p = pages[sLin >>> 12];
    if (p === null) return 0;
    src = p;
    sOff = sLin & PAGE_MASK;
    count = Math.min(count, Math.floor((0x10000 - si) / size), Math.floor((PAGE_SIZE - sOff) / size));
  }
  if (count <= 0) return 0;
  const r8 = cpu.regs8;
  let done = count;
  switch (kind) {
    case 2: // MOVS
      if (size === 1) {
        for (let i = 0; i < count; i++) dst[dOff + i] = src[sOff + i];
      } else {
        for (let i = 0; i < count * 2; i += 2) {
          const lo = src[sOff + i], hi = src[sOff + i + 1];
          dst[dOff + i] = lo;
          dst[dOff + i + 1] = hi;
        }
      }
      break;
    case 5: // STOS
      if (size === 1) dst.fill(r8[0], dOff, dOff + count);
      else for (let i = 0; i < count * 2; i += 2) { dst[dOff + i] = r8[0]; dst[dOff + i + 1] = r8[1]; }
      break;
    case 6: // LODS: only the last element survives
      if (size === 1) r8[0] = src[sOff + count - 1];
      else regs[AX] = src[sOff + 2 * count - 2] | (src[sOff + 2 * count - 1] << 8);
      break;
    case 7: { // SCAS
      const want = rep === 1; // REPE continues while equal, REPNE while not equal
      let i = 0;
      if (size === 1) {
        const al = r8[0];
        while (i < count - 1 && (dst[dOff + i] === al) === want) i++;
        cpu.alu8(7, al, dst[dOff + i]);
      } else {
        const ax = regs[AX];
        while (i < count - 1 && (dst[dOff + 2 * i] | (dst[dOff + 2 * i + 1] << 8)) === ax === want) i++;
        cpu.alu16(7, ax, dst[dOff + 2 * i] | (dst[dOff + 2 * i + 1] << 8));
      }
      done = i + 1;
      break;
    }
    default: { // 3: CMPS
      const want = rep === 1;
      let i = 0;
      if (size === 1) {
        while (i < count - 1 && (src[sOff + i] === dst[dOff + i]) === want) i++;
        cpu.alu8(7, src[sOff + i], dst[dOff + i]);
      } else {
        while (i < count - 1 && (word16(src, sOff + 2 * i) === word16(dst, dOff + 2 * i)) === want) i++;
        cpu.alu16(7, word16(src, sOff + 2 * i), word16(dst, dOff + 2 * i));
      }
      done = i + 1;
      break;
    }
  }
  regs[CX] = regs[CX] - done;
  if (kind !== 5 && kind !== 7) regs[SI] = si + done * size;
  if (kind !== 6) regs[DI] = di + done * size;
  return done;
}

function word16(a: Uint8Array, o: number): number {
  return a[o] | (a[o + 1] << 8);
}

function one(cpu: Cpu, kind: number, word: boolean, step: number): void {
  const regs = cpu.regs;
  switch (kind) {
    case 2: { // MOVS
      const seg = cpu.dataSeg();
      if (word) cpu.wr16(ES, regs[DI], cpu.rd16(seg, regs[SI]));
      else cpu.wr8(ES, regs[DI], cpu.rd8(seg, regs[SI]));
      regs[SI] = regs[SI] + step;
      regs[DI] = regs[DI] + step;
      return;
    }
    case 3: { // CMPS
      const seg = cpu.dataSeg();
      if (word) cpu.alu16(7, cpu.rd16(seg, regs[SI]), cpu.rd16(ES, regs[DI]));
      else cpu.alu8(7, cpu.rd8(seg, regs[SI]), cpu.rd8(ES, regs[DI]));
      regs[SI] = regs[SI] + step;
      regs[DI] = regs[DI] + step;
      return;
    }
    case 5: // STOS
      if (word) cpu.wr16(ES, regs[DI], regs[AX]);
      else cpu.wr8(ES, regs[DI], cpu.regs8[0]);
      regs[DI] = regs[DI] + step;
      return;
    case 6: { // LODS
      const seg = cpu.dataSeg();
      if (word) regs[AX] = cpu.rd16(seg, regs[SI]);
      else cpu.regs8[0] = cpu.rd8(seg, regs[SI]);
      regs[SI] = regs[SI] + step;
      return;
    }
    default: // 7: SCAS
      if (word) cpu.alu16(7, regs[AX], cpu.rd16(ES, regs[DI]));
      else cpu.alu8(7, cpu.regs8[0], cpu.rd8(ES, regs[DI]));
      regs[DI] = regs[DI] + step;
      return;
  }
}

function stringIo(cpu: Cpu, input: boolean, size: 1 | 2, step: number): number {
  const regs = cpu.regs;
  const ports = cpu.ports;
  const port = regs[DX];
  const rep = cpu.rep !== 0;
  let n = 0;
  const budget = rep ? cpu.repBudget : 1;
  while (!rep || regs[CX] !== 0) {
    if (n >= budget) {
      cpu.ip = cpu.startIp;
      return n;
    }
    if (input) {
      const v = ports.in === undefined ? undefined : ports.in(port, size);
      if (v === undefined) {
        cpu.stringIoExit('in', port, size, rep ? regs[CX] : 1, ES, regs[DI]);
        return n === 0 ? 1 : n;
      }
      if (size === 2 && regs[DI] === 0xffff && cpu.is186) limitFault(cpu, DI, step, rep ? 2 : 0);
      if (size === 2) cpu.wr16(ES, regs[DI], v);
      else cpu.wr8(ES, regs[DI], v);
      regs[DI] = regs[DI] + step;
    } else {
      const seg = cpu.dataSeg();
      if (ports.out === undefined) {
        cpu.stringIoExit('out', port, size, rep ? regs[CX] : 1, seg, regs[SI]);
        return n === 0 ? 1 : n;
      }
      if (size === 2 && regs[SI] === 0xffff && cpu.is186) limitFault(cpu, SI, step, rep ? 1 : 0);
      const v = size === 2 ? cpu.rd16(seg, regs[SI]) : cpu.rd8(seg, regs[SI]);
      if (!ports.out(port, size, v)) {
        cpu.stringIoExit('out', port, size, rep ? regs[CX] : 1, seg, regs[SI]);
        return n === 0 ? 1 : n;
      }
      regs[SI] = regs[SI] + step;
    }
    n++;
    if (!rep) return 1;
    regs[CX] = regs[CX] - 1;
  }
  return n === 0 ? 1 : n;
}

/**
 * 186 model (as captured on the 286): a word INS/OUTS at offset FFFFh still steps SI/DI, and
 * with REP decrements CX (twice for INS, once for OUTS, as the data shows), before raising the
 * general-protection fault (vector 13) at the instruction.
 */
function limitFault(cpu: Cpu, reg: number, step: number, cxDecrements: number): never {
  cpu.regs[reg] = cpu.regs[reg] + step;
  cpu.regs[CX] = cpu.regs[CX] - cxDecrements;
  return cpu.fault(13);
}
