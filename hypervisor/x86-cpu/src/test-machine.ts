/**
 * A tiny machine for hand tests and benchmarks: 1 MiB of flat RAM, code loaded at CODE_SEG:0100,
 * a stack at STACK_SEG:FFFE. Tests write machine code as raw bytes with the assembly beside them.
 */
import { Cpu, CS, DS, ES, SP, SS, type CpuModel } from './cpu.ts';
import { flatMemory, type Page, type PortInterface } from './memory.ts';

export const CODE_SEG = 0x1000;
export const DATA_SEG = 0x2000;
export const STACK_SEG = 0x3000;
export const CODE_IP = 0x0100;

export interface TestMachine {
  cpu: Cpu;
  ram: Uint8Array;
  pages: Page[];
  /** Linear address of CODE_SEG:offset. */
  code(offset: number): number;
}

export function machine(
  bytes: ArrayLike<number>,
  opts: { model?: CpuModel; ports?: PortInterface; mmioPages?: number[]; mmioRead?: (a: number, s: 1 | 2) => number | undefined; mmioWrite?: (a: number, s: 1 | 2, v: number) => boolean } = {},
): TestMachine {
  const { pages, ram } = flatMemory(0x100000);
  for (const p of opts.mmioPages ?? []) pages[p] = null;
  const cpu = new Cpu({
    model: opts.model ?? '80186',
    memory: { pages, mmioRead: opts.mmioRead, mmioWrite: opts.mmioWrite },
    ports: opts.ports,
  });
  const base = CODE_SEG * 16 + CODE_IP;
  for (let i = 0; i < bytes.length; i++) ram[base + i] = bytes[i];
  cpu.sregs[CS] = CODE_SEG;
  cpu.ip = CODE_IP;
  cpu.sregs[DS] = DATA_SEG;
  cpu.sregs[ES] = DATA_SEG;
  cpu.sregs[SS] = STACK_SEG;
  cpu.regs[SP] = 0xfffe;
  return { cpu, ram, pages, code: (off) => CODE_SEG * 16 + off };
}

/** Little-endian bytes of a 16-bit value, for building instructions. */
export function w(v: number): [number, number] {
  return [v & 0xff, (v >> 8) & 0xff];
}
