/**
 * Runs one MOO file's tests on a fresh CPU and compares the end state with the captured one:
 * every register (absent final registers must be unchanged), FLAGS under the data's mask of
 * undefined flags, and every final RAM byte. Where an exception pushed a FLAGS image holding
 * undefined flags, that word is compared under the same mask (the data's READMEs advise this).
 */
import { Cpu, type CpuModel } from '../cpu.ts';
import { flatMemory } from '../memory.ts';
import { MOO_REGS, parseMoo, type MooTest } from './moo.ts';

export interface SuiteSpec {
  /** '8086' or '186': which data set / CPU model. */
  set: '8086' | '186';
  file: string;
  /** Opcode key in metadata ("F6") and the /reg from the file name, if any. */
  opcode: string;
  reg: number | null;
  /** metadata.json's opcodes entry for this opcode. */
  meta: MetaEntry | undefined;
  revoked: string[];
  /** Run with the CPU's fast path (default) or the general executor only. */
  fastPath?: boolean;
}

export interface MetaEntry {
  status?: string;
  'flags-mask'?: number;
  reg?: Record<string, MetaEntry>;
}

export interface FileResult {
  set: string;
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

const IDX = Object.fromEntries(MOO_REGS.map((r, i) => [r, i])) as Record<(typeof MOO_REGS)[number], number>;
const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf1, 0xf2, 0xf3]);

function flagsMask(spec: SuiteSpec, t: MooTest): number {
  const m = spec.meta;
  if (!m) return 0xffff;
  if (m.reg) {
    let reg = spec.reg;
    if (reg === null) {
      let i = 0;
      while (i < t.bytes.length && PREFIXES.has(t.bytes[i])) i++;
      reg = (t.bytes[i + 1] >> 3) & 7;
    }
    return m.reg[String(reg)]?.['flags-mask'] ?? 0xffff;
  }
  return m['flags-mask'] ?? 0xffff;
}

export function runFile(spec: SuiteSpec, gz: Uint8Array, verbose = 3): FileResult {
  const model: CpuModel = spec.set === '8086' ? '8086' : '80186';
  const a20 = spec.set === '186'; // the 286 data was captured with 1 MiB + 64 KiB addressable
  const { pages, ram } = flatMemory(a20 ? 0x110000 : 0x100000, a20 ? 512 : 256);
  const cpu = new Cpu({
    model,
    memory: { pages },
    // The data's I/O reads return all ones; writes go nowhere.
    ports: { in: (_p, size) => (size === 1 ? 0xff : 0xffff), out: () => true },
    a20,
    fastPath: spec.fastPath ?? true,
  });
  const revoked = new Set(spec.revoked);
  const { tests } = parseMoo(gz);
  const res: FileResult = { set: spec.set, file: spec.file, passed: 0, failed: 0, skipped: 0, failures: [] };
  const ramMask = ram.length - 1 >= 0xfffff && !a20 ? 0xfffff : 0x1fffff;
  for (const t of tests) {
    if (t.hash !== null && revoked.has(t.hash)) {
      res.skipped++;
      continue;
    }
    const why = runOne(cpu, ram, t, spec, ramMask);
    if (why === null) res.passed++;
    else {
      res.failed++;
      if (res.failures.length < verbose) res.failures.push(`#${t.idx} ${t.name} [${Buffer.from(t.bytes).toString('hex')}]${t.hash ? ' ' + t.hash : ''}: ${why}`);
    }
    for (let i = 0; i < t.initial.ram.length; i += 2) ram[t.initial.ram[i] & ramMask] = 0;
    for (let i = 0; i < t.final.ram.length; i += 2) ram[t.final.ram[i] & ramMask] = 0;
  }
  // A write the captured state does not list survives the clean-up above: after the file, all of
  // RAM must be zero again (checking after every test would be too slow).
  const stray: string[] = [];
  for (let a = 0; a < ram.length && stray.length < 8; a++) if (ram[a] !== 0) stray.push(a.toString(16));
  if (stray.length > 0) {
    res.failed++;
    res.failures.push(`writes outside the captured final RAM, at ${stray.join(' ')}${stray.length === 8 ? ' ...' : ''}`);
  }
  return res;
}

function hex(v: number): string {
  return v.toString(16).padStart(4, '0');
}

function runOne(cpu: Cpu, ram: Uint8Array, t: MooTest, spec: SuiteSpec, ramMask: number): string | null {
  const ini = t.initial.regs;
  for (let i = 0; i < t.initial.ram.length; i += 2) ram[t.initial.ram[i] & ramMask] = t.initial.ram[i + 1];
  cpu.reset();
  const r = cpu.regs, s = cpu.sregs;
  r[0] = ini[IDX.ax]; r[1] = ini[IDX.cx]; r[2] = ini[IDX.dx]; r[3] = ini[IDX.bx];
  r[4] = ini[IDX.sp]; r[5] = ini[IDX.bp]; r[6] = ini[IDX.si]; r[7] = ini[IDX.di];
  s[0] = ini[IDX.es]; s[1] = ini[IDX.cs]; s[2] = ini[IDX.ss]; s[3] = ini[IDX.ds];
  cpu.ip = ini[IDX.ip];
  cpu.setFlags(ini[IDX.flags]);
  const ivt0 = ram[0] | (ram[1] << 8) | (ram[2] << 16) | (ram[3] << 24);

  if (spec.set === '8086') {
    const exit = cpu.step();
    if (exit.reason !== 'budget') return `stopped with ${exit.reason}`;
  } else {
    // The 286 tests end with a HLT (after the instruction, or at the exception handler).
    let exit = cpu.run(100000);
    if (exit.reason !== 'hlt') return `stopped with ${exit.reason}, not at the terminating HLT`;
    void exit;
  }

  const mask = flagsMask(spec, t);
  const fin = t.final.regs;
  const errs: string[] = [];
  const got: Record<string, number> = {
    ax: r[0], cx: r[1], dx: r[2], bx: r[3], sp: r[4], bp: r[5], si: r[6], di: r[7],
    es: s[0], cs: s[1], ss: s[2], ds: s[3], ip: cpu.ip, flags: cpu.getFlags(),
  };
  for (let i = 0; i < MOO_REGS.length; i++) {
    const name = MOO_REGS[i];
    let want = fin[i] >= 0 ? fin[i] : ini[i];
    let have = got[name];
    if (name === 'flags') {
      if (spec.set === '186' && fin[i] < 0) want = (want & 0x0fd5) | 0x0002;
      want &= mask;
      have &= mask;
    }
    if (want !== have) errs.push(`${name} ${hex(have)} want ${hex(want)}`);
  }

  // Where was a FLAGS image with undefined bits pushed?
  let flagAddr = -1;
  if (t.exception) flagAddr = t.exception.flagAddress;
  else if (mask !== 0xffff && fin[IDX.sp] >= 0) {
    const wantIp = fin[IDX.ip] >= 0 ? fin[IDX.ip] : ini[IDX.ip];
    const wantCs = fin[IDX.cs] >= 0 ? fin[IDX.cs] : ini[IDX.cs];
    if (((wantCs << 16) | wantIp) === ivt0 && ((ini[IDX.sp] - 6) & 0xffff) === fin[IDX.sp]) {
      const ss = fin[IDX.ss] >= 0 ? fin[IDX.ss] : ini[IDX.ss];
      flagAddr = ((ss << 4) + ((fin[IDX.sp] + 4) & 0xffff)) & ramMask;
    }
  }
  const fr = t.final.ram;
  for (let i = 0; i < fr.length; i += 2) {
    const a = fr[i] & ramMask;
    let want = fr[i + 1];
    let have = ram[a];
    if (flagAddr >= 0 && (a === flagAddr || a === ((flagAddr + 1) & ramMask))) {
      const m = a === flagAddr ? mask & 0xff : mask >> 8;
      want &= m;
      have &= m;
    }
    if (want !== have) errs.push(`[${a.toString(16)}] ${have.toString(16)} want ${want.toString(16)}`);
  }
  return errs.length === 0 ? null : errs.join(', ');
}
