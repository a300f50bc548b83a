/**
 * The opcode table: the one description of every 8086/80186 opcode — mnemonic, operand forms,
 * instruction family and which model has it. The generic decoder (`decoder.ts`) and the
 * disassembler walk it; the executor's switch in `cpu.ts` is the specialised fast path of the same
 * table, and a test decodes every opcode with this table and checks the executor consumed exactly
 * as many bytes.
 *
 * Operand notation follows the Intel manuals' opcode maps:
 *   E = ModRM r/m (register or memory), G = ModRM reg, S = segment register from ModRM reg,
 *   M = memory-only r/m, I = immediate, J = IP-relative, A = far pointer immediate,
 *   O = direct offset (moffs), X = seg:SI string source, Y = ES:DI string destination,
 *   Z = register encoded in the opcode's low 3 bits;
 *   b = byte, v/w = word, bs = byte sign-extended to a word, p = 32-bit far pointer, a = word pair.
 */

export type Operand =
  | 'Eb' | 'Ev' | 'Gb' | 'Gv' | 'Sw' | 'M' | 'Mp' | 'Ma'
  | 'Ib' | 'Iv' | 'Iw' | 'Ibs' | 'Jb' | 'Jv' | 'Ap' | 'Ob' | 'Ov'
  | 'Xb' | 'Xv' | 'Yb' | 'Yv' | 'Zb' | 'Zv'
  | 'AL' | 'AX' | 'CL' | 'DX' | '1' | 'ES' | 'CS' | 'SS' | 'DS';

export type Family =
  | 'alu' | 'incdec' | 'mov' | 'stack' | 'xchg' | 'control' | 'jcc' | 'loop' | 'interrupt'
  | 'string' | 'shift' | 'muldiv' | 'bcd' | 'io' | 'flags' | 'convert' | 'esc' | 'prefix'
  | 'misc' | 'invalid';

export interface OpcodeEntry {
  mnemonic: string;
  operands: readonly Operand[];
  family: Family;
}

export interface OpcodeDef {
  /** A ModRM byte follows the opcode. */
  modrm: boolean;
  /** The instruction, or for group opcodes (`group` set) a placeholder. */
  entry: OpcodeEntry;
  /** Group opcodes: the instruction selected by ModRM.reg (8 entries). */
  group?: readonly OpcodeEntry[];
}

export type OpcodeTable = readonly OpcodeDef[];

const e = (mnemonic: string, family: Family, ...operands: Operand[]): OpcodeEntry => ({ mnemonic, operands, family });
const BAD = e('(bad)', 'invalid');

const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const JCC = ['jo', 'jno', 'jb', 'jae', 'je', 'jne', 'jbe', 'ja', 'js', 'jns', 'jp', 'jnp', 'jl', 'jge', 'jle', 'jg'];
const SHIFTS_8086 = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'setmo', 'sar'];
const SHIFTS_186 = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];

function build(model: '8086' | '80186'): OpcodeDef[] {
  const is186 = model === '80186';
  const t: OpcodeDef[] = new Array(256);
  const one = (op: number, entry: OpcodeEntry, modrm = false): void => {
    t[op] = { modrm, entry };
  };
  const grp = (op: number, group: OpcodeEntry[]): void => {
    t[op] = { modrm: true, entry: e(`grp${op.toString(16)}`, group[0].family), group };
  };

  for (let i = 0; i < 8; i++) {
    const b = i << 3;
    one(b + 0, e(ALU[i], 'alu', 'Eb', 'Gb'), true);
    one(b + 1, e(ALU[i], 'alu', 'Ev', 'Gv'), true);
    one(b + 2, e(ALU[i], 'alu', 'Gb', 'Eb'), true);
    one(b + 3, e(ALU[i], 'alu', 'Gv', 'Ev'), true);
    one(b + 4, e(ALU[i], 'alu', 'AL', 'Ib'));
    one(b + 5, e(ALU[i], 'alu', 'AX', 'Iv'));
  }
  const SEGS: Operand[] = ['ES', 'CS', 'SS', 'DS'];
  for (let s = 0; s < 4; s++) {
    one(0x06 + (s << 3), e('push', 'stack', SEGS[s]));
    one(0x07 + (s << 3), e('pop', 'stack', SEGS[s]));
    one(0x26 + (s << 3), e(SEGS[s].toLowerCase(), 'prefix'));
  }
  if (is186) one(0x0f, BAD);
  one(0x27, e('daa', 'bcd'));
  one(0x2f, e('das', 'bcd'));
  one(0x37, e('aaa', 'bcd'));
  one(0x3f, e('aas', 'bcd'));
  for (let r = 0; r < 8; r++) {
    one(0x40 + r, e('inc', 'incdec', 'Zv'));
    one(0x48 + r, e('dec', 'incdec', 'Zv'));
    one(0x50 + r, e('push', 'stack', 'Zv'));
    one(0x58 + r, e('pop', 'stack', 'Zv'));
    one(0x90 + r, r === 0 ? e('nop', 'misc') : e('xchg', 'xchg', 'AX', 'Zv'));
    one(0xb0 + r, e('mov', 'mov', 'Zb', 'Ib'));
    one(0xb8 + r, e('mov', 'mov', 'Zv', 'Iv'));
  }
  for (let c = 0; c < 16; c++) {
    one(0x70 + c, e(JCC[c], 'jcc', 'Jb'));
    // The 8086 decodes 60-6F as aliases of 70-7F.
    if (!is186) one(0x60 + c, e(JCC[c], 'jcc', 'Jb'));
  }
  if (is186) {
    one(0x60, e('pusha', 'stack'));
    one(0x61, e('popa', 'stack'));
    one(0x62, e('bound', 'interrupt', 'Gv', 'Ma'), true);
    for (let op = 0x63; op <= 0x67; op++) one(op, BAD);
    one(0x68, e('push', 'stack', 'Iv'));
    one(0x69, e('imul', 'muldiv', 'Gv', 'Ev', 'Iv'), true);
    one(0x6a, e('push', 'stack', 'Ibs'));
    one(0x6b, e('imul', 'muldiv', 'Gv', 'Ev', 'Ibs'), true);
    one(0x6c, e('insb', 'string', 'Yb', 'DX'));
    one(0x6d, e('insw', 'string', 'Yv', 'DX'));
    one(0x6e, e('outsb', 'string', 'DX', 'Xb'));
    one(0x6f, e('outsw', 'string', 'DX', 'Xv'));
  }
  grp(0x80, ALU.map((m) => e(m, 'alu', 'Eb', 'Ib')));
  grp(0x81, ALU.map((m) => e(m, 'alu', 'Ev', 'Iv')));
  grp(0x82, ALU.map((m) => e(m, 'alu', 'Eb', 'Ib')));
  grp(0x83, ALU.map((m) => e(m, 'alu', 'Ev', 'Ibs')));
  one(0x84, e('test', 'alu', 'Eb', 'Gb'), true);
  one(0x85, e('test', 'alu', 'Ev', 'Gv'), true);
  one(0x86, e('xchg', 'xchg', 'Eb', 'Gb'), true);
  one(0x87, e('xchg', 'xchg', 'Ev', 'Gv'), true);
  one(0x88, e('mov', 'mov', 'Eb', 'Gb'), true);
  one(0x89, e('mov', 'mov', 'Ev', 'Gv'), true);
  one(0x8a, e('mov', 'mov', 'Gb', 'Eb'), true);
  one(0x8b, e('mov', 'mov', 'Gv', 'Ev'), true);
  one(0x8c, e('mov', 'mov', 'Ev', 'Sw'), true);
  one(0x8d, e('lea', 'mov', 'Gv', 'M'), true);
  one(0x8e, e('mov', 'mov', 'Sw', 'Ev'), true);
  grp(0x8f, [e('pop', 'stack', 'Ev'), ...Array.from({ length: 7 }, () => (is186 ? BAD : e('pop', 'stack', 'Ev')))]);
  one(0x98, e('cbw', 'convert'));
  one(0x99, e('cwd', 'convert'));
  one(0x9a, e('call', 'control', 'Ap'));
  one(0x9b, e('wait', 'misc'));
  one(0x9c, e('pushf', 'flags'));
  one(0x9d, e('popf', 'flags'));
  one(0x9e, e('sahf', 'flags'));
  one(0x9f, e('lahf', 'flags'));
  one(0xa0, e('mov', 'mov', 'AL', 'Ob'));
  one(0xa1, e('mov', 'mov', 'AX', 'Ov'));
  one(0xa2, e('mov', 'mov', 'Ob', 'AL'));
  one(0xa3, e('mov', 'mov', 'Ov', 'AX'));
  one(0xa4, e('movsb', 'string', 'Yb', 'Xb'));
  one(0xa5, e('movsw', 'string', 'Yv', 'Xv'));
  one(0xa6, e('cmpsb', 'string', 'Xb', 'Yb'));
  one(0xa7, e('cmpsw', 'string', 'Xv', 'Yv'));
  one(0xa8, e('test', 'alu', 'AL', 'Ib'));
  one(0xa9, e('test', 'alu', 'AX', 'Iv'));
  one(0xaa, e('stosb', 'string', 'Yb', 'AL'));
  one(0xab, e('stosw', 'string', 'Yv', 'AX'));
  one(0xac, e('lodsb', 'string', 'AL', 'Xb'));
  one(0xad, e('lodsw', 'string', 'AX', 'Xv'));
  one(0xae, e('scasb', 'string', 'AL', 'Yb'));
  one(0xaf, e('scasw', 'string', 'AX', 'Yv'));
  if (is186) {
    grp(0xc0, SHIFTS_186.map((m) => e(m, 'shift', 'Eb', 'Ib')));
    grp(0xc1, SHIFTS_186.map((m) => e(m, 'shift', 'Ev', 'Ib')));
    one(0xc8, e('enter', 'stack', 'Iw', 'Ib'));
    one(0xc9, e('leave', 'stack'));
  } else {
    // The 8086 decodes C0/C1 as RET and C8/C9 as RETF.
    one(0xc0, e('ret', 'control', 'Iw'));
    one(0xc1, e('ret', 'control'));
    one(0xc8, e('retf', 'control', 'Iw'));
    one(0xc9, e('retf', 'control'));
  }
  one(0xc2, e('ret', 'control', 'Iw'));
  one(0xc3, e('ret', 'control'));
  one(0xc4, e('les', 'mov', 'Gv', 'Mp'), true);
  one(0xc5, e('lds', 'mov', 'Gv', 'Mp'), true);
  grp(0xc6, [e('mov', 'mov', 'Eb', 'Ib'), ...Array.from({ length: 7 }, () => (is186 ? BAD : e('mov', 'mov', 'Eb', 'Ib')))]);
  grp(0xc7, [e('mov', 'mov', 'Ev', 'Iv'), ...Array.from({ length: 7 }, () => (is186 ? BAD : e('mov', 'mov', 'Ev', 'Iv')))]);
  one(0xca, e('retf', 'control', 'Iw'));
  one(0xcb, e('retf', 'control'));
  one(0xcc, e('int3', 'interrupt'));
  one(0xcd, e('int', 'interrupt', 'Ib'));
  one(0xce, e('into', 'interrupt'));
  one(0xcf, e('iret', 'interrupt'));
  const sh = is186 ? SHIFTS_186 : SHIFTS_8086;
  grp(0xd0, sh.map((m) => e(m, 'shift', 'Eb', '1')));
  grp(0xd1, sh.map((m) => e(m, 'shift', 'Ev', '1')));
  grp(0xd2, sh.map((m) => e(m === 'setmo' ? 'setmoc' : m, 'shift', 'Eb', 'CL')));
  grp(0xd3, sh.map((m) => e(m === 'setmo' ? 'setmoc' : m, 'shift', 'Ev', 'CL')));
  one(0xd4, e('aam', 'bcd', 'Ib'));
  one(0xd5, e('aad', 'bcd', 'Ib'));
  one(0xd6, e('salc', 'flags'));
  one(0xd7, e('xlat', 'mov'));
  for (let op = 0xd8; op <= 0xdf; op++) one(op, e('esc', 'esc', 'Ev'), true);
  one(0xe0, e('loopne', 'loop', 'Jb'));
  one(0xe1, e('loope', 'loop', 'Jb'));
  one(0xe2, e('loop', 'loop', 'Jb'));
  one(0xe3, e('jcxz', 'loop', 'Jb'));
  one(0xe4, e('in', 'io', 'AL', 'Ib'));
  one(0xe5, e('in', 'io', 'AX', 'Ib'));
  one(0xe6, e('out', 'io', 'Ib', 'AL'));
  one(0xe7, e('out', 'io', 'Ib', 'AX'));
  one(0xe8, e('call', 'control', 'Jv'));
  one(0xe9, e('jmp', 'control', 'Jv'));
  one(0xea, e('jmp', 'control', 'Ap'));
  one(0xeb, e('jmp', 'control', 'Jb'));
  one(0xec, e('in', 'io', 'AL', 'DX'));
  one(0xed, e('in', 'io', 'AX', 'DX'));
  one(0xee, e('out', 'io', 'DX', 'AL'));
  one(0xef, e('out', 'io', 'DX', 'AX'));
  one(0xf0, e('lock', 'prefix'));
  one(0xf1, is186 ? BAD : e('lock', 'prefix'));
  one(0xf2, e('repne', 'prefix'));
  one(0xf3, e('rep', 'prefix'));
  one(0xf4, e('hlt', 'misc'));
  one(0xf5, e('cmc', 'flags'));
  const g3 = (b: 'Eb' | 'Ev', imm: Operand): OpcodeEntry[] => [
    e('test', 'alu', b, imm), e('test', 'alu', b, imm), e('not', 'alu', b), e('neg', 'alu', b),
    e('mul', 'muldiv', b), e('imul', 'muldiv', b), e('div', 'muldiv', b), e('idiv', 'muldiv', b),
  ];
  grp(0xf6, g3('Eb', 'Ib'));
  grp(0xf7, g3('Ev', 'Iv'));
  one(0xf8, e('clc', 'flags'));
  one(0xf9, e('stc', 'flags'));
  one(0xfa, e('cli', 'flags'));
  one(0xfb, e('sti', 'flags'));
  one(0xfc, e('cld', 'flags'));
  one(0xfd, e('std', 'flags'));
  grp(0xfe, [e('inc', 'incdec', 'Eb'), e('dec', 'incdec', 'Eb'), ...Array.from({ length: 6 }, () => (is186 ? BAD : e('(undefined)', 'invalid', 'Eb')))]);
  grp(0xff, [
    e('inc', 'incdec', 'Ev'), e('dec', 'incdec', 'Ev'), e('call', 'control', 'Ev'), e('call far', 'control', 'Mp'),
    e('jmp', 'control', 'Ev'), e('jmp far', 'control', 'Mp'), e('push', 'stack', 'Ev'), is186 ? BAD : e('push', 'stack', 'Ev'),
  ]);
  if (!is186) one(0x0f, e('pop', 'stack', 'CS'));
  for (let i = 0; i < 256; i++) if (!t[i]) throw new Error(`opcode table: ${i.toString(16)} missing for ${model}`);
  return t;
}

const TABLES: Record<'8086' | '80186', OpcodeTable> = { '8086': build('8086'), '80186': build('80186') };

/** The opcode table for a CPU model. */
export function opcodeTable(model: '8086' | '80186'): OpcodeTable {
  return TABLES[model];
}

/** Bytes an operand form takes after the opcode/ModRM/displacement. */
export function immediateSize(o: Operand): number {
  switch (o) {
    case 'Ib': case 'Ibs': case 'Jb': return 1;
    case 'Iv': case 'Iw': case 'Jv': case 'Ob': case 'Ov': return 2;
    case 'Ap': return 4;
    default: return 0;
  }
}
