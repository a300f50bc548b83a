/**
 * Group 3 (F6/F7): TEST NOT NEG MUL IMUL DIV IDIV. Divide overflow raises the divide-error
 * interrupt (vector 0). On the 8086 a REP prefix negates the IMUL product and the IDIV quotient
 * (a microcode side effect the hardware data confirms), and an IDIV quotient of -128/-32768 is
 * an overflow; the 186 model accepts it.
 */
import type { Cpu } from '../cpu.ts';
import { AX, DX } from '../cpu.ts';
import { CF, OF, PARITY, SF, ZF } from '../flags.ts';

function mulFlags(cpu: Cpu, overflow: boolean, low: number, sign: number): void {
  cpu.setArith((overflow ? CF | OF : 0) | PARITY[low & 0xff] | ((low & (sign * 2 - 1)) === 0 ? ZF : 0) | (low & sign ? SF : 0));
}

export function mulDivGroup(cpu: Cpu, word: boolean): void {
  const m = cpu.decodeModrm();
  const sub = (m >> 3) & 7;
  const regs = cpu.regs, r8 = cpu.regs8;
  const negate = !cpu.is186 && cpu.rep !== 0;
  if (!word) {
    const v = cpu.rm8();
    switch (sub) {
      case 0: case 1: cpu.alu8(4, v, cpu.fetch8()); return;
      case 2: cpu.setRm8(~v & 0xff); return;
      case 3: cpu.setRm8(cpu.alu8(5, 0, v)); return;
      case 4: {
        const r = r8[0] * v;
        regs[AX] = r;
        mulFlags(cpu, r > 0xff, r, 0x80);
        return;
      }
      case 5: {
        let r = ((r8[0] << 24) >> 24) * ((v << 24) >> 24);
        if (negate) r = -r;
        regs[AX] = r & 0xffff;
        mulFlags(cpu, r < -0x80 || r > 0x7f, r, 0x80);
        return;
      }
      case 6: {
        const d = regs[AX];
        if (v === 0) { cpu.divideError(); return; }
        const q = Math.floor(d / v);
        if (q > 0xff) { cpu.divideError(); return; }
        r8[0] = q;
        r8[1] = d - q * v;
        return;
      }
      default: {
        const d = (regs[AX] << 16) >> 16;
        const s = (v << 24) >> 24;
        if (s === 0) { cpu.divideError(); return; }
        let q = Math.trunc(d / s);
        const r = d - q * s;
        if (negate) q = -q;
        if (q > 0x7f || q < (cpu.is186 ? -0x80 : -0x7f)) { cpu.divideError(); return; }
        r8[0] = q;
        r8[1] = r;
        return;
      }
    }
  }
  const v = cpu.rm16();
  switch (sub) {
    case 0: case 1: cpu.alu16(4, v, cpu.fetch16()); return;
    case 2: cpu.setRm16(~v & 0xffff); return;
    case 3: cpu.setRm16(cpu.alu16(5, 0, v)); return;
    case 4: {
      const r = regs[AX] * v;
      regs[AX] = r;
      regs[DX] = r >>> 16;
      mulFlags(cpu, r > 0xffff, r, 0x8000);
      return;
    }
    case 5: {
      let r = Math.imul((regs[AX] << 16) >> 16, (v << 16) >> 16);
      if (negate) r = -r;
      regs[AX] = r;
      regs[DX] = r >> 16;
      mulFlags(cpu, r < -0x8000 || r > 0x7fff, r, 0x8000);
      return;
    }
    case 6: {
      const d = regs[DX] * 0x10000 + regs[AX];
      if (v === 0) { cpu.divideError(); return; }
      const q = Math.floor(d / v);
      if (q > 0xffff) { cpu.divideError(); return; }
      regs[AX] = q;
      regs[DX] = d - q * v;
      return;
    }
    default: {
      const d = ((regs[DX] << 16) | regs[AX]) | 0;
      const s = (v << 16) >> 16;
      if (s === 0) { cpu.divideError(); return; }
      let q = Math.trunc(d / s);
      const r = d - q * s;
      if (negate) q = -q;
      if (q > 0x7fff || q < (cpu.is186 ? -0x8000 : -0x7fff)) { cpu.divideError(); return; }
      regs[AX] = q;
      regs[DX] = r;
      return;
    }
  }
}
