import { describe, expect, it } from 'vitest';
import { disassembleBytes } from './disasm.ts';

const dis = (hex: string, model: '8086' | '80186' = '80186', ip = 0x100): string[] =>
  disassembleBytes(Buffer.from(hex.replace(/ /g, ''), 'hex'), model, ip).map((d) => d.text);

describe('disassembler', () => {
  it('formats operands NASM-style', () => {
    expect(dis('01 d8')).toEqual(['add ax, bx']);
    expect(dis('83 46 fe 05')).toEqual(['add word [bp-0x2], 0x5']);
    expect(dis('2e 8a 07')).toEqual(['mov al, cs:[bx]']);
    expect(dis('c6 06 34 12 ff')).toEqual(['mov byte [0x1234], 0xff']);
    expect(dis('a1 00 80')).toEqual(['mov ax, [0x8000]']);
    expect(dis('8e d8')).toEqual(['mov ds, ax']);
    expect(dis('d3 f8')).toEqual(['sar ax, cl']);
    expect(dis('d0 e0')).toEqual(['shl al, 1']);
  });

  it('resolves jump targets and far pointers', () => {
    expect(dis('eb fe')).toEqual(['jmp 0x0100']);
    expect(dis('e8 00 01')).toEqual(['call 0x0203']);
    expect(dis('75 10', '8086', 0x200)).toEqual(['jne 0x0212']);
    expect(dis('ea 00 10 00 f0')).toEqual(['jmp 0xf000:0x1000']);
    expect(dis('ff 1e 34 12')).toEqual(['call far [0x1234]']);
  });

  it('prints prefixes and string instructions', () => {
    expect(dis('f3 a5')).toEqual(['rep movsw']);
    expect(dis('f2 ae')).toEqual(['repne scasb']);
    expect(dis('f3 a6')).toEqual(['repe cmpsb']);
    expect(dis('26 ac')).toEqual(['es lodsb']);
    expect(dis('f3 6d')).toEqual(['rep insw']);
  });

  it('knows which model has which instruction', () => {
    expect(dis('60 61 c9', '80186')).toEqual(['pusha', 'popa', 'leave']);
    expect(dis('60 00', '8086')).toEqual(['jo 0x0102']);
    expect(dis('6b c3 fb')).toEqual(['imul ax, bx, -0x5']);
    expect(dis('c1 e0 04')).toEqual(['shl ax, 0x4']);
    expect(dis('0f', '80186')).toEqual(['(bad)']);
    expect(dis('0f', '8086')).toEqual(['pop cs']);
    expect(dis('d0 f0', '8086')).toEqual(['setmo al, 1']);
  });
});

describe('tracing', () => {
  it('prints CS:IP, bytes, the instruction and registers for each step', async () => {
    const { machine } = await import('./test-machine.ts');
    const { traceLine } = await import('./disasm.ts');
    const { cpu } = machine([0xb8, 0x02, 0x00, 0x01, 0xc0, 0xf4]); // mov ax, 2; add ax, ax; hlt
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      lines.push(traceLine(cpu));
      cpu.step();
    }
    expect(lines[0]).toMatch(/^1000:0100  b80200\s+mov ax, 0x2\s+AX=0000/);
    expect(lines[1]).toMatch(/^1000:0103  01c0\s+add ax, ax\s+AX=0002/);
    expect(lines[2]).toMatch(/^1000:0105  f4\s+hlt\s+AX=0004/);
  });
});
