/**
 * Differential test for what single-instruction conformance data cannot reach: long random
 * straight-line programs where lazy flags flow from one instruction into the next (ADC after INC
 * after AND ...). The same program runs (a) through the fast path with lazy flags, as guests
 * run, and (b) through the general executor one instruction at a time with FLAGS materialised
 * after every instruction. Registers, FLAGS and memory must agree.
 */
import { describe, expect, it } from 'vitest';
import { Cpu, CS, DS, ES, SS } from './cpu.ts';
import { flatMemory } from './memory.ts';

const DATA = 0x2000, CODE = 0x1000, STACK = 0x3000;

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

/** One random instruction: safe forms only (no control flow, no faults, memory inside DATA). */
function randomInstruction(r: () => number): number[] {
  const reg = (): number => r() & 7;
  const safeReg = (): number => [0, 1, 2, 3, 5, 6, 7][r() % 7]; // never SP as a destination
  // Memory operand: [disp16] inside the data area, or [bx+si+disp8] right after BX/SI were
  // masked small (see the generator loop), so no access reaches offset FFFFh.
  const memModrm = (regField: number): number[] => [0x06 | (regField << 3), r() & 0xff, 0x01 + (r() & 1)];
  const kind = r() % 22;
  const aop = r() & 7;
  switch (kind) {
    case 0: return [(aop << 3) | 1, 0xc0 | (reg() << 3) | safeReg()]; // ALU r16, r16
    case 1: return [(aop << 3) | 3, ...memModrm(safeReg())]; // ALU r16, m16
    case 2: return [(aop << 3) | 1, ...memModrm(reg())]; // ALU m16, r16
    case 3: return [(aop << 3) | 0, 0xc0 | (reg() << 3) | reg()]; // ALU r8, r8
    case 4: return [(aop << 3) | 2, ...memModrm(reg())]; // ALU r8, m8
    case 5: return [0x83, 0xc0 | (aop << 3) | safeReg(), r() & 0xff]; // ALU r16, imm8
    case 6: return [0x81, ...memModrm(aop), r() & 0xff, r() & 0xff]; // ALU m16, imm16
    case 7: return [0x40 | safeReg()]; // INC r16
    case 8: return [0x48 | safeReg()]; // DEC r16
    case 9: return [0xfe, ...memModrm(r() & 1)]; // INC/DEC m8
    case 10: return [0xd1, 0xc0 | ((r() % 8) << 3) | safeReg()]; // shift/rotate r16, 1
    case 11: return [0xd2, ...memModrm(r() & 7)]; // shift/rotate m8, CL
    case 12: return [0xf6, 0xc0 | ((4 + (r() & 1)) << 3) | reg()]; // MUL/IMUL r8
    case 13: return [0x9c, 0x58 | safeReg()]; // pushf; pop r16 (materialises FLAGS into a register)
    case 14: return [0x9e]; // sahf
    case 15: return [0x9f]; // lahf
    case 16: return [[0xf5, 0xf8, 0xf9][r() % 3]]; // cmc / clc / stc
    case 17: return [[0x27, 0x2f, 0x37, 0x3f][r() % 4]]; // daa das aaa aas
    case 18: return [0x85, 0xc0 | (reg() << 3) | reg()]; // test
    case 19: return [0x89, ...memModrm(reg())]; // mov m16, r16
    case 20: return [0xf7, 0xd8 | safeReg()]; // neg r16
    default: return [0x8d, ...memModrm(safeReg())]; // lea
  }
}

function runProgram(code: number[], seed: number, lazyFast: boolean): { regs: number[]; flags: number; ram: Uint8Array } {
  const { pages, ram } = flatMemory(0x100000);
  const r = rng(seed ^ 0x9e3779b9);
  for (let i = 0; i < 0x400; i++) ram[DATA * 16 + i] = r() & 0xff;
  ram.set(code, CODE * 16);
  const cpu = new Cpu({ model: '80186', memory: { pages }, fastPath: lazyFast });
  cpu.sregs[CS] = CODE; cpu.ip = 0;
  cpu.sregs[DS] = DATA; cpu.sregs[ES] = DATA; cpu.sregs[SS] = STACK;
  for (let i = 0; i < 8; i++) cpu.regs[i] = r() & 0xffff;
  cpu.regs[4] = 0xfff0;
  if (lazyFast) {
    expect(cpu.run(100000).reason).toBe('hlt');
  } else {
    for (;;) {
      const exit = cpu.step();
      cpu.getFlags(); // materialise after every instruction
      if (exit.reason === 'hlt') break;
    }
  }
  return { regs: [...cpu.regs, ...cpu.sregs, cpu.ip], flags: cpu.getFlags(), ram: ram.slice(DATA * 16, DATA * 16 + 0x10000) };
}

describe('lazy flags and the fast path agree with eager, general execution', () => {
  it('over random straight-line programs', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed);
      const code: number[] = [];
      for (let i = 0; i < 300; i++) {
        code.push(...randomInstruction(r));
        if ((i & 15) === 15) {
          // and bx, 0FFh; and si, 0FFh; then an ALU op through [bx+si+disp8]
          code.push(0x81, 0xe3, 0xff, 0x00, 0x81, 0xe6, 0xff, 0x00);
          code.push(((r() & 7) << 3) | 3, 0x40 | ((r() % 4) << 3), r() & 0x7f);
        }
      }
      code.push(0xf4);
      const a = runProgram(code, seed, true);
      const b = runProgram(code, seed, false);
      expect(a.regs, `seed ${seed}`).toEqual(b.regs);
      expect(a.flags.toString(16), `seed ${seed}`).toBe(b.flags.toString(16));
      expect(Buffer.from(a.ram).equals(Buffer.from(b.ram)), `seed ${seed} memory`).toBe(true);
    }
  });
});
