/**
 * Decimal-adjust family: DAA DAS AAA AAS AAM AAD, as the 8086 microcode performs them
 * (AAA/AAS adjust AL and AH separately; AAM by zero is a divide error).
 */
import type { Cpu } from '../cpu.ts';
import { AF, CF, PARITY, PF, SF, ZF } from '../flags.ts';

function szp8(v: number): number {
  return PARITY[v] | (v === 0 ? ZF : 0) | (v & 0x80 ? SF : 0);
}

export function daa(cpu: Cpu): void {
  const f = cpu.flagsNow();
  const old = cpu.regs8[0];
  let al = old;
  let af = 0, cf = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    al = (al + 6) & 0xff;
    af = AF;
  }
  if (old > ((f & AF) !== 0 ? 0x9f : 0x99) || (f & CF) !== 0) {
    al = (al + 0x60) & 0xff;
    cf = CF;
  }
  cpu.regs8[0] = al;
  cpu.setArith(af | cf | szp8(al));
}

export function das(cpu: Cpu): void {
  const f = cpu.flagsNow();
  const old = cpu.regs8[0];
  let al = old;
  let af = 0, cf = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    al = (al - 6) & 0xff;
    af = AF;
  }
  if (old > ((f & AF) !== 0 ? 0x9f : 0x99) || (f & CF) !== 0) {
    al = (al - 0x60) & 0xff;
    cf = CF;
  }
  cpu.regs8[0] = al;
  cpu.setArith(af | cf | szp8(al));
}

export function aaa(cpu: Cpu): void {
  const f = cpu.flagsNow();
  const r8 = cpu.regs8;
  let al = r8[0];
  let adj = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    al = (al + 6) & 0xff;
    r8[1] = r8[1] + 1;
    adj = AF | CF;
  }
  r8[0] = al & 0x0f;
  cpu.setArith(adj | szp8(al));
}

export function aas(cpu: Cpu): void {
  const f = cpu.flagsNow();
  const r8 = cpu.regs8;
  let al = r8[0];
  let adj = 0;
  if ((al & 0x0f) > 9 || (f & AF) !== 0) {
    al = (al - 6) & 0xff;
    r8[1] = r8[1] - 1;
    adj = AF | CF;
  }
  r8[0] = al & 0x0f;
  cpu.setArith(adj | szp8(al));
}

export function aam(cpu: Cpu, base: number): void {
  if (base === 0) {
    // The 8086 leaves the flags of a zero result before taking the divide error (captured data).
    cpu.setArith(ZF | PF);
    cpu.divideError();
    return;
  }
  const al = cpu.regs8[0];
  const q = Math.floor(al / base);
  const r = al % base;
  cpu.regs8[1] = q;
  cpu.regs8[0] = r;
  cpu.setArith(szp8(r));
}

export function aad(cpu: Cpu, base: number): void {
  const r8 = cpu.regs8;
  const al = (r8[0] + r8[1] * base) & 0xff;
  r8[0] = al;
  r8[1] = 0;
  cpu.setArith(szp8(al));
}
