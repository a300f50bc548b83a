/**
 * Instructions the 80186 added to the 8086 set (iAPX 186 manual): PUSHA POPA BOUND ENTER LEAVE
 * and IMUL with an immediate. PUSH imm, INS/OUTS and shifts by an immediate live with their
 * families (cpu.ts, string.ts, shift.ts).
 */
import type { Cpu } from '../cpu.ts';
import { AX, BP, BX, CX, DI, DX, SI, SP, SS } from '../cpu.ts';
import { CF, OF, PARITY, SF, ZF } from '../flags.ts';

export function pusha(cpu: Cpu): void {
  const r = cpu.regs;
  const sp = r[SP];
  // The 286 data shows the whole frame is checked first: if one of the eight pushes would be a
  // word at offset FFFFh (SP odd and below 16), it faults without writing anything.
  if ((sp & 1) !== 0 && sp < 16) cpu.fault(13);
  cpu.push(r[AX]);
  cpu.push(r[CX]);
  cpu.push(r[DX]);
  cpu.push(r[BX]);
  cpu.push(sp);
  cpu.push(r[BP]);
  cpu.push(r[SI]);
  cpu.push(r[DI]);
}

export function popa(cpu: Cpu): void {
  const r = cpu.regs;
  const di = cpu.pop();
  const si = cpu.pop();
  const bp = cpu.pop();
  cpu.pop(); // the saved SP is discarded
  const bx = cpu.pop();
  const dx = cpu.pop();
  const cx = cpu.pop();
  const ax = cpu.pop();
  r[DI] = di; r[SI] = si; r[BP] = bp; r[BX] = bx; r[DX] = dx; r[CX] = cx; r[AX] = ax;
}

/** BOUND r16, m16&16: interrupt 5 (at this instruction) if the signed index is out of range. */
export function bound(cpu: Cpu): void {
  const m = cpu.decodeModrm();
  if (m >= 0xc0) cpu.fault(6);
  const idx = (cpu.regs[(m >> 3) & 7] << 16) >> 16;
  const lo = (cpu.rd16(cpu.eaSeg, cpu.eaOff) << 16) >> 16;
  const hi = (cpu.rd16(cpu.eaSeg, (cpu.eaOff + 2) & 0xffff) << 16) >> 16;
  if (idx < lo || idx > hi) cpu.fault(5);
}

/** ENTER imm16, imm8: make a stack frame with `level` (mod 32) levels of display. */
export function enter(cpu: Cpu): void {
  const r = cpu.regs;
  const size = cpu.fetch16();
  const level = cpu.fetch8() & 0x1f;
  cpu.push(r[BP]);
  const frame = r[SP];
  if (level > 0) {
    let bp = r[BP];
    for (let i = 1; i < level; i++) {
      bp = (bp - 2) & 0xffff;
      cpu.push(cpu.rd16(SS, bp));
    }
    cpu.push(frame);
  }
  r[BP] = frame;
  r[SP] = r[SP] - size;
}

export function leave(cpu: Cpu): void {
  const r = cpu.regs;
  r[SP] = r[BP];
  r[BP] = cpu.pop();
}

/** IMUL r16, r/m16, imm16 (69) or imm8 sign-extended (6B). */
export function imulImm(cpu: Cpu, imm8: boolean): void {
  const m = cpu.decodeModrm();
  const src = (cpu.rm16() << 16) >> 16;
  const imm = imm8 ? (cpu.fetch8() << 24) >> 24 : (cpu.fetch16() << 16) >> 16;
  const res = Math.imul(src, imm);
  const low = res & 0xffff;
  cpu.regs[(m >> 3) & 7] = low;
  const overflow = res < -0x8000 || res > 0x7fff;
  cpu.setArith((overflow ? CF | OF : 0) | PARITY[low & 0xff] | (low === 0 ? ZF : 0) | (low & 0x8000 ? SF : 0));
}
