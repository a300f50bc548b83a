/**
 * Disassembler: formats what the table-driven decoder found as Intel/NASM-style text
 * ("add word [bx+si+0x12], 0x5"), for traces, `xl` debugging output and tests. It shares the
 * opcode table with the CPU, so what it prints is what the CPU will execute.
 */
import { decode, type Decoded } from './decoder.ts';
import type { Operand } from './opcode-table.ts';

export interface Disassembly {
  text: string;
  length: number;
  decoded: Decoded;
}

const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const R8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];
const SREG = ['es', 'cs', 'ss', 'ds'];
const EA = ['bx+si', 'bx+di', 'bp+si', 'bp+di', 'si', 'di', 'bp', 'bx'];

function hex(v: number, digits = 0): string {
  return '0x' + v.toString(16).padStart(digits, '0');
}

function signed(v: number): string {
  return v < 0 ? `-${hex(-v)}` : `+${hex(v)}`;
}

/** Size-giving register operands: when one is present the memory operand needs no size word. */
const REGISH = new Set<Operand>(['Gb', 'Gv', 'Sw', 'AL', 'AX', 'Zb', 'Zv']);

/**
 * Disassemble one instruction. `read(i)` gives the byte at offset i from its start; `ip` (the
 * instruction's offset in CS) lets relative jumps print their absolute target.
 */
export function disassemble(read: (i: number) => number, model: '8086' | '80186' = '80186', ip = 0): Disassembly {
  const d = decode(read, model);
  const { entry } = d;
  const words: string[] = [];
  if (d.lock) words.push('lock');
  if (d.rep) words.push(entry.family === 'string' && (entry.mnemonic.startsWith('cmps') || entry.mnemonic.startsWith('scas')) ? (d.rep === 'rep' ? 'repe' : 'repne') : d.rep);
  const seg = d.segment === null ? '' : `${SREG[d.segment]}:`;
  const needSize = !entry.operands.some((o) => REGISH.has(o));
  let imm = 0;
  const ops: string[] = [];
  const mem = (size: string): string => {
    const m = d.modrm!;
    if (m >= 0xc0) return size === 'byte' ? R8[m & 7] : R16[m & 7];
    let inner: string;
    if (m < 0x40 && (m & 7) === 6) inner = hex(d.disp & 0xffff, 4);
    else inner = EA[m & 7] + (d.disp !== 0 ? signed(m >= 0x80 ? (d.disp << 16) >> 16 : d.disp) : '');
    return `${needSize && size ? size + ' ' : ''}${seg}[${inner}]`;
  };
  for (const o of entry.operands) {
    switch (o) {
      case 'Eb': ops.push(mem('byte')); break;
      case 'Ev': ops.push(mem('word')); break;
      case 'M': case 'Ma': ops.push(mem('')); break;
      case 'Mp': ops.push(mem('')); break;
      case 'Gb': ops.push(R8[(d.modrm! >> 3) & 7]); break;
      case 'Gv': ops.push(R16[(d.modrm! >> 3) & 7]); break;
      case 'Sw': ops.push(SREG[(d.modrm! >> 3) & 3]); break;
      case 'Zb': ops.push(R8[d.opcode & 7]); break;
      case 'Zv': ops.push(R16[d.opcode & 7]); break;
      case 'Ib': case 'Iv': case 'Iw': ops.push(hex(d.imms[imm++])); break;
      case 'Ibs': { const v = d.imms[imm++]; ops.push(v < 0 ? `-${hex(-v)}` : hex(v)); break; }
      case 'Jb': case 'Jv': ops.push(hex((ip + d.length + d.imms[imm++]) & 0xffff, 4)); break;
      case 'Ap': { const off = d.imms[imm++]; const s = d.imms[imm++]; ops.push(`${hex(s, 4)}:${hex(off, 4)}`); break; }
      case 'Ob': case 'Ov': ops.push(`${seg}[${hex(d.imms[imm++], 4)}]`); break;
      case 'Xb': case 'Xv': case 'Yb': case 'Yv': break; // implied by the mnemonic
      case '1': ops.push('1'); break;
      default: ops.push(o.toLowerCase()); break;
    }
  }
  const strSeg = d.segment !== null && (entry.family === 'string' || entry.mnemonic === 'xlat') ? `${SREG[d.segment]} ` : '';
  if (entry.family === 'string' || entry.mnemonic === 'xlat') {
    // NASM style: string instructions are written without operands (they are implied).
    words.push(strSeg + entry.mnemonic);
  } else if (entry.mnemonic === 'esc') {
    words.push(`esc ${hex(((d.opcode & 7) << 3) | ((d.modrm! >> 3) & 7))}, ${ops[0]}`);
  } else {
    words.push(entry.mnemonic + (ops.length ? ' ' + ops.join(', ') : ''));
  }
  return { text: words.join(' '), length: d.length, decoded: d };
}

/** Disassemble a byte array from its start (offset 0 at `ip`). */
export function disassembleBytes(bytes: ArrayLike<number>, model: '8086' | '80186' = '80186', ip = 0): Disassembly[] {
  const out: Disassembly[] = [];
  let off = 0;
  while (off < bytes.length) {
    const base = off;
    const d = disassemble((i) => bytes[base + i] ?? 0, model, (ip + base) & 0xffff);
    out.push(d);
    off += d.length;
  }
  return out;
}

/** Minimal view of a CPU for tracing (avoids a dependency cycle with cpu.ts). */
export interface TraceableCpu {
  readonly model: '8086' | '80186';
  readonly regs: Uint16Array;
  readonly sregs: Uint16Array;
  ip: number;
  readonly amask: number;
  rdLin8(a: number): number;
  getFlags(): number;
}

/** The instruction at CS:IP, disassembled (reads memory through the CPU, RAM or MMIO handler). */
export function disassembleAt(cpu: TraceableCpu): Disassembly {
  const base = cpu.sregs[1] << 4;
  const ip = cpu.ip;
  return disassemble((i) => cpu.rdLin8((base + ((ip + i) & 0xffff)) & cpu.amask), cpu.model, ip);
}

/**
 * One trace line: `CS:IP  bytes  instruction  registers`, e.g. for `xl` debug output:
 * `1000:0100  01d8          add ax, bx      AX=0001 BX=0002 ... FL=0002`.
 */
export function traceLine(cpu: TraceableCpu): string {
  const d = disassembleAt(cpu);
  const base = cpu.sregs[1] << 4;
  const bytes: string[] = [];
  for (let i = 0; i < d.length; i++) bytes.push(cpu.rdLin8((base + ((cpu.ip + i) & 0xffff)) & cpu.amask).toString(16).padStart(2, '0'));
  const h = (v: number): string => v.toString(16).padStart(4, '0');
  const r = cpu.regs, s = cpu.sregs;
  const regs = `AX=${h(r[0])} BX=${h(r[3])} CX=${h(r[1])} DX=${h(r[2])} SP=${h(r[4])} BP=${h(r[5])} SI=${h(r[6])} DI=${h(r[7])} DS=${h(s[3])} ES=${h(s[0])} SS=${h(s[2])} FL=${h(cpu.getFlags())}`;
  return `${h(s[1])}:${h(cpu.ip)}  ${bytes.join('').padEnd(14)}${d.text.padEnd(28)}${regs}`;
}
