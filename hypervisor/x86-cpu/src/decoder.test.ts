/**
 * The opcode table and the executor must agree: for every opcode (every ModRM byte for ModRM
 * forms) on both models, the table-driven decoder's length equals the bytes the CPU consumed.
 */
import { describe, expect, it } from 'vitest';
import { CS } from './cpu.ts';
import { decode } from './decoder.ts';
import { opcodeTable } from './opcode-table.ts';
import { CODE_IP, CODE_SEG, machine } from './test-machine.ts';

const SKIP_FAMILIES = new Set(['control', 'jcc', 'loop', 'interrupt', 'prefix', 'invalid']);

describe('opcode table vs executor', () => {
  for (const model of ['8086', '80186'] as const) {
    it(`${model}: decoded length equals executed length for every opcode and ModRM`, () => {
      const table = opcodeTable(model);
      const m = machine([], { model, ports: { in: () => 0xff, out: () => true } });
      // Every interrupt vector points at F000:0000 so a fault is recognisable.
      for (let v = 0; v < 256; v++) { m.ram[v * 4 + 2] = 0x00; m.ram[v * 4 + 3] = 0xf0; }
      let checked = 0;
      let seed = 12345;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
      for (let op = 0; op < 256; op++) {
        const def = table[op];
        const modrms = def.modrm ? [...Array(256).keys()] : [0];
        for (const modrm of modrms) {
          const entry = def.group ? def.group[(modrm >> 3) & 7] : def.entry;
          if (SKIP_FAMILIES.has(entry.family) || entry.mnemonic === 'hlt') continue;
          const bytes = [op, modrm, rnd() & 0xff, rnd() & 0xff, rnd() & 0xff, rnd() & 0xff, rnd() & 0xff];
          const d = decode((i) => bytes[i], model);
          const { cpu, ram } = m;
          cpu.reset();
          for (let r = 0; r < 8; r++) cpu.regs[r] = rnd() & 0xfffe;
          cpu.regs[1] &= 0x7; // keep REP-less string ops and shifts short
          cpu.sregs[CS] = CODE_SEG;
          cpu.ip = CODE_IP;
          cpu.sregs[0] = 0x2000; cpu.sregs[2] = 0x3000; cpu.sregs[3] = 0x2000;
          ram.set(bytes, CODE_SEG * 16 + CODE_IP);
          cpu.step();
          if (cpu.sregs[CS] !== CODE_SEG) continue; // took a fault or loaded CS
          expect((cpu.ip - CODE_IP) & 0xffff, `${model} ${op.toString(16)} /${modrm.toString(16)} ${entry.mnemonic}`).toBe(d.length);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(15000);
    });
  }
});

describe('decoder', () => {
  it('collects prefixes and sizes displacements and immediates', () => {
    // es: rep movsw
    expect(decode((i) => [0x26, 0xf3, 0xa5][i], '8086')).toMatchObject({ length: 3, segment: 0, rep: 'rep', opcode: 0xa5 });
    // add word [bp+1234h], 5678h
    const d = decode((i) => [0x81, 0x86, 0x34, 0x12, 0x78, 0x56][i], '8086');
    expect(d).toMatchObject({ length: 6, disp: 0x1234, imms: [0x5678] });
    expect(d.entry.mnemonic).toBe('add');
    // enter 10h, 2 (186 only; C8 is RETF imm16 on the 8086)
    expect(decode((i) => [0xc8, 0x10, 0x00, 0x02][i], '80186')).toMatchObject({ length: 4, imms: [0x10, 2] });
    expect(decode((i) => [0xc8, 0x10, 0x00, 0x02][i], '8086').entry.mnemonic).toBe('retf');
  });
});
