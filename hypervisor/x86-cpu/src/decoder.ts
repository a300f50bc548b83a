/**
 * The generic, table-driven instruction decoder: prefixes, opcode, ModRM, displacement and
 * immediates, all sized from `opcode-table.ts`. The disassembler formats its output; the CPU uses
 * it where it needs an instruction's length before executing it (the 186 model's 10-byte limit).
 */
import { immediateSize, opcodeTable, type OpcodeDef, type OpcodeEntry, type Operand } from './opcode-table.ts';

export interface Decoded {
  /** Total bytes, prefixes included. */
  length: number;
  /** Prefix bytes in order. */
  prefixes: number[];
  /** Segment override (0 ES, 1 CS, 2 SS, 3 DS) or null. */
  segment: number | null;
  rep: 'rep' | 'repne' | null;
  lock: boolean;
  opcode: number;
  def: OpcodeDef;
  /** The instruction (the group member for group opcodes). */
  entry: OpcodeEntry;
  modrm: number | null;
  /** ModRM displacement, sign-extended for 8-bit forms (0 when none). */
  disp: number;
  /** Immediate values in operand order (Ap gives offset then segment). */
  imms: number[];
}

const PREFIX: Record<number, 'seg' | 'lock' | 'rep' | 'repne'> = {
  0x26: 'seg', 0x2e: 'seg', 0x36: 'seg', 0x3e: 'seg', 0xf0: 'lock', 0xf2: 'repne', 0xf3: 'rep',
};

/** ModRM displacement size in bytes. */
export function dispSize(modrm: number): number {
  const mod = modrm >> 6;
  if (mod === 1) return 1;
  if (mod === 2 || (mod === 0 && (modrm & 7) === 6)) return 2;
  return 0;
}

/**
 * Decode one instruction. `read(i)` returns the byte at offset i from the instruction's first
 * byte. Stops collecting prefixes after 15 (the 186 faults long before that).
 */
export function decode(read: (i: number) => number, model: '8086' | '80186'): Decoded {
  const table = opcodeTable(model);
  let i = 0;
  const prefixes: number[] = [];
  let segment: number | null = null;
  let rep: 'rep' | 'repne' | null = null;
  let lock = false;
  let op = read(i++);
  for (;;) {
    const kind = PREFIX[op] ?? (op === 0xf1 && model === '8086' ? 'lock' : undefined);
    if (kind === undefined || prefixes.length >= 15) break;
    prefixes.push(op);
    if (kind === 'seg') segment = (op >> 3) & 3;
    else if (kind === 'lock') lock = true;
    else rep = kind;
    op = read(i++);
  }
  const def = table[op];
  let modrm: number | null = null;
  let disp = 0;
  let entry = def.entry;
  if (def.modrm) {
    modrm = read(i++);
    if (def.group) entry = def.group[(modrm >> 3) & 7];
    if (modrm < 0xc0) {
      const n = dispSize(modrm);
      if (n === 1) disp = (read(i) << 24) >> 24;
      else if (n === 2) disp = read(i) | (read(i + 1) << 8);
      i += n;
    }
  }
  const imms: number[] = [];
  for (const o of entry.operands) {
    const n = immediateSize(o);
    if (n === 0) continue;
    if (o === 'Ap') {
      imms.push(read(i) | (read(i + 1) << 8), read(i + 2) | (read(i + 3) << 8));
    } else if (n === 1) {
      imms.push(o === 'Jb' || o === 'Ibs' ? (read(i) << 24) >> 24 : read(i));
    } else {
      const v = read(i) | (read(i + 1) << 8);
      imms.push(o === 'Jv' ? (v << 16) >> 16 : v);
    }
    i += n;
  }
  return { length: i, prefixes, segment, rep, lock, opcode: op, def, entry, modrm, disp, imms };
}

/** Operands of an entry that read or write memory through ModRM (for callers that care). */
export function usesModrmMemory(d: Decoded): boolean {
  return d.modrm !== null && d.modrm < 0xc0 && d.entry.operands.some((o: Operand) => o[0] === 'E' || o[0] === 'M');
}
