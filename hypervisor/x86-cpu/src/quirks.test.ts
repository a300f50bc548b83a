/**
 * Model differences and 8086 oddities, each as raw bytes with the assembly beside them.
 */
import { describe, expect, it } from 'vitest';
import { AX, BX, CX, Cpu, CS, DS, SP, SS } from './cpu.ts';
import { flatMemory } from './memory.ts';
import { CODE_IP, CODE_SEG, DATA_SEG, STACK_SEG, machine, w } from './test-machine.ts';

const HLT = 0xf4;

describe('8086 and 80186 differences', () => {
  it('PUSH SP pushes the decremented SP', () => {
    for (const model of ['8086', '80186'] as const) {
      const { cpu, ram } = machine([0x54, HLT], { model }); // push sp
      cpu.run(10);
      expect(cpu.regs[SP]).toBe(0xfffc);
      expect(ram[STACK_SEG * 16 + 0xfffc] | (ram[STACK_SEG * 16 + 0xfffd] << 8)).toBe(0xfffc);
    }
  });

  it('a word at offset FFFFh wraps inside the segment on the 8086 and faults (#GP) on the 186 model', () => {
    const code = [0xa1, ...w(0xffff), HLT]; // mov ax, [0FFFFh]
    const m86 = machine(code, { model: '8086' });
    m86.ram[DATA_SEG * 16 + 0xffff] = 0x34;
    m86.ram[DATA_SEG * 16] = 0x12;
    m86.cpu.run(10);
    expect(m86.cpu.regs[AX]).toBe(0x1234);

    const m186 = machine(code, { model: '80186' });
    m186.ram.set([0x00, 0x02, CODE_SEG & 0xff, CODE_SEG >> 8], 13 * 4); // #GP → 1000:0200
    m186.ram[CODE_SEG * 16 + 0x200] = HLT;
    m186.cpu.run(10);
    expect(m186.cpu.ip).toBe(0x201);
    const sp = m186.cpu.regs[SP];
    expect(m186.ram[STACK_SEG * 16 + sp] | (m186.ram[STACK_SEG * 16 + sp + 1] << 8)).toBe(CODE_IP); // at the MOV
  });

  it('linear addresses wrap at 1 MiB unless A20 is enabled', () => {
    const code = [0xa0, ...w(0x0010), HLT]; // mov al, [0010h] with DS = FFFFh → linear 100000h
    const wrapped = machine(code);
    wrapped.cpu.sregs[DS] = 0xffff;
    wrapped.ram[0] = 0x5a;
    wrapped.cpu.run(10);
    expect(wrapped.cpu.regs8[0]).toBe(0x5a);

    const { pages, ram } = flatMemory(0x110000, 512);
    const cpu = new Cpu({ model: '80186', memory: { pages }, a20: true });
    ram.set(code, CODE_SEG * 16 + CODE_IP);
    cpu.sregs[CS] = CODE_SEG;
    cpu.ip = CODE_IP;
    cpu.sregs[DS] = 0xffff;
    ram[0x100000] = 0xa5;
    cpu.run(10);
    expect(cpu.regs8[0]).toBe(0xa5);
  });

  it('a REP prefix negates the IDIV quotient on the 8086 only', () => {
    const code = [
      0xb8, ...w(100), //       mov ax, 100
      0xb3, 0x03, //            mov bl, 3
      0xf3, 0xf6, 0xfb, //      rep idiv bl
      HLT,
    ];
    const m86 = machine(code, { model: '8086' });
    m86.cpu.run(10);
    expect(m86.cpu.regs8[0]).toBe(0x100 - 33);
    expect(m86.cpu.regs8[1]).toBe(1);
    const m186 = machine(code, { model: '80186' });
    m186.cpu.run(10);
    expect(m186.cpu.regs8[0]).toBe(33);
  });

  it('SETMO (D0 /6) sets all ones on the 8086; the 186 treats /6 as SHL', () => {
    const code = [0xb0, 0x41, 0xd0, 0xf0, HLT]; // mov al, 41h; setmo al (shl al, 1 on the 186)
    const m86 = machine(code, { model: '8086' });
    m86.cpu.run(10);
    expect(m86.cpu.regs8[0]).toBe(0xff);
    const m186 = machine(code, { model: '80186' });
    m186.cpu.run(10);
    expect(m186.cpu.regs8[0]).toBe(0x82);
  });

  it('shift counts are not masked on the 8086 but masked to 5 bits on the 186', () => {
    const code = [
      0xb8, ...w(0x1234), //    mov ax, 1234h
      0xb1, 0x20, //            mov cl, 32
      0xd3, 0xe0, //            shl ax, cl
      HLT,
    ];
    const m86 = machine(code, { model: '8086' });
    m86.cpu.run(10);
    expect(m86.cpu.regs[AX]).toBe(0);
    const m186 = machine(code, { model: '80186' });
    m186.cpu.run(10);
    expect(m186.cpu.regs[AX]).toBe(0x1234); // 32 & 31 = 0: nothing happens
  });

  it('POP CS exists on the 8086; 0F is #UD on the 186', () => {
    const m86 = machine([0x0e, 0x0f, HLT], { model: '8086' }); // push cs; pop cs
    m86.cpu.run(10);
    expect(m86.cpu.sregs[CS]).toBe(CODE_SEG);
    expect(m86.cpu.ip).toBe(CODE_IP + 3);
  });
});

describe('BCD and conversions', () => {
  it('DAA after a BCD add, AAA on the 8086', () => {
    const { cpu } = machine([
      0xb0, 0x15, //            mov al, 15h
      0x04, 0x27, //            add al, 27h   ; 3Ch
      0x27, //                  daa           ; 42h
      0x88, 0xc3, //            mov bl, al
      0xb8, ...w(0x000f), //    mov ax, 000Fh
      0x37, //                  aaa           ; AH=1, AL=5, CF
      HLT,
    ], { model: '8086' });
    cpu.run(20);
    expect(cpu.regs8[6]).toBe(0x42);
    expect(cpu.regs[AX]).toBe(0x0105);
    expect(cpu.cf()).toBe(1);
  });

  it('CBW/CWD sign-extend, XLAT looks up', () => {
    const { cpu, ram } = machine([
      0xb0, 0x80, //            mov al, 80h
      0x98, //                  cbw
      0x99, //                  cwd
      0x89, 0xd1, //            mov cx, dx
      0xbb, ...w(0x0040), //    mov bx, 40h
      0xb0, 0x03, //            mov al, 3
      0xd7, //                  xlat
      HLT,
    ]);
    ram[DATA_SEG * 16 + 0x43] = 0x99;
    cpu.run(20);
    expect(cpu.regs[CX]).toBe(0xffff);
    expect(cpu.regs8[0]).toBe(0x99);
    expect(cpu.regs[BX]).toBe(0x40);
    expect(cpu.sregs[SS]).toBe(STACK_SEG);
  });
});
