/**
 * Shift and rotate family (D0-D3 on both models, C0/C1 on the 186): ROL ROR RCL RCR SHL SHR
 * SETMO/SAL SAR. Counts are taken one bit at a time as the microcode does, so the flags are
 * those of the last step. The 8086 uses the full CL count; the 186 masks it to 5 bits. A count
 * of zero changes nothing, not even flags.
 */
import type { Cpu } from '../cpu.ts';
import { CF, OF, PARITY, SF, ZF } from '../flags.ts';

export function shiftRotate(cpu: Cpu, sub: number, word: boolean, v: number, count: number): number {
  if (cpu.is186) count &= 0x1f;
  if (count === 0) return v;
  const mask = word ? 0xffff : 0xff;
  const sign = word ? 0x8000 : 0x80;
  let cf = cpu.cf();
  let of = 0;
  switch (sub) {
    case 0: // ROL
      for (let i = 0; i < count; i++) {
        cf = v & sign ? 1 : 0;
        v = ((v << 1) | cf) & mask;
      }
      of = (v & sign ? 1 : 0) ^ cf;
      cpu.setSome(CF | OF, cf | (of ? OF : 0));
      return v;
    case 1: // ROR
      for (let i = 0; i < count; i++) {
        cf = v & 1;
        v = (v >>> 1) | (cf ? sign : 0);
      }
      of = (v & sign ? 1 : 0) ^ (v & (sign >>> 1) ? 1 : 0);
      cpu.setSome(CF | OF, cf | (of ? OF : 0));
      return v;
    case 2: // RCL
      for (let i = 0; i < count; i++) {
        const out = v & sign ? 1 : 0;
        v = ((v << 1) | cf) & mask;
        cf = out;
      }
      of = (v & sign ? 1 : 0) ^ cf;
      cpu.setSome(CF | OF, cf | (of ? OF : 0));
      return v;
    case 3: // RCR
      for (let i = 0; i < count; i++) {
        const out = v & 1;
        v = (v >>> 1) | (cf ? sign : 0);
        cf = out;
      }
      of = (v & sign ? 1 : 0) ^ (v & (sign >>> 1) ? 1 : 0);
      cpu.setSome(CF | OF, cf | (of ? OF : 0));
      return v;
    case 5: // SHR
      for (let i = 0; i < count; i++) {
        of = v & sign ? 1 : 0;
        cf = v & 1;
        v >>>= 1;
      }
      break;
    case 7: // SAR
      for (let i = 0; i < count; i++) {
        cf = v & 1;
        v = (v >>> 1) | (v & sign);
      }
      of = 0;
      break;
    default: // 4: SHL/SAL; 6: SETMO on the 8086, an alias of SHL on the 186
      if (sub === 6 && !cpu.is186) {
        // SETMO / SETMOC (8086, undocumented): the operand becomes all ones.
        v = mask;
        cf = 0;
        of = 0;
        break;
      }
      for (let i = 0; i < count; i++) {
        cf = v & sign ? 1 : 0;
        v = (v << 1) & mask;
      }
      of = (v & sign ? 1 : 0) ^ cf;
      break;
  }
  cpu.setArith(cf | (of ? OF : 0) | PARITY[v & 0xff] | (v === 0 ? ZF : 0) | (v & sign ? SF : 0));
  return v;
}
