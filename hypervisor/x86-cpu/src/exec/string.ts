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
    one(cpu, kind, word, step);
    regs[CX] = regs[CX] - 1;
    n++;
    if (compares && (rep === 1) !== cpu.zf()) break;
  }
  return n === 0 ? 1 : n;
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
