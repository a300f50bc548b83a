/**
 * Reader for MOO ("Machine Opcode Operation") files, the chunked binary form of the
 * SingleStepTests CPU tests (format: ../shared/conformance/8086/v1_binary/README.md).
 * Only what a state-comparing harness needs is decoded; CYCL (bus cycles) and QUEU (prefetch
 * queue) chunks are skipped without copying.
 */
import { gunzipSync } from 'node:zlib';

/** Register order of the REGS bitmask (bit 0 = ax ...). */
export const MOO_REGS = ['ax', 'bx', 'cx', 'dx', 'cs', 'ss', 'ds', 'es', 'sp', 'bp', 'si', 'di', 'ip', 'flags'] as const;
export type MooReg = (typeof MOO_REGS)[number];

export interface MooState {
  /** Value per MOO_REGS index, or -1 when the register is absent (unchanged in a final state). */
  regs: Int32Array;
  /** Flat pairs: address, value, address, value... */
  ram: Uint32Array;
}

export interface MooTest {
  idx: number;
  name: string;
  bytes: Uint8Array;
  initial: MooState;
  final: MooState;
  /** SHA-1 of the test as lowercase hex (absent in the 8086 set). */
  hash: string | null;
  /** 286 set: the exception taken, and where its FLAGS image was pushed. */
  exception: { vector: number; flagAddress: number } | null;
}

export interface MooFile {
  cpu: string;
  tests: MooTest[];
}

function tag(b: Uint8Array, o: number): string {
  return String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);
}

function readState(b: Uint8Array, dv: DataView, start: number, end: number): MooState {
  const regs = new Int32Array(MOO_REGS.length).fill(-1);
  let ram = new Uint32Array(0);
  let o = start;
  while (o + 8 <= end) {
    const t = tag(b, o);
    const len = dv.getUint32(o + 4, true);
    const p = o + 8;
    if (t === 'REGS') {
      const mask = dv.getUint16(p, true);
      let q = p + 2;
      for (let i = 0; i < MOO_REGS.length; i++) {
        if (mask & (1 << i)) {
          regs[i] = dv.getUint16(q, true);
          q += 2;
        }
      }
    } else if (t === 'RAM ') {
      const n = dv.getUint32(p, true);
      ram = new Uint32Array(n * 2);
      for (let i = 0; i < n; i++) {
        ram[i * 2] = dv.getUint32(p + 4 + i * 5, true);
        ram[i * 2 + 1] = b[p + 8 + i * 5];
      }
    }
    o = p + len;
  }
  return { regs, ram };
}

export function parseMoo(gz: Uint8Array): MooFile {
  const b = gunzipSync(gz);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tests: MooTest[] = [];
  let cpu = '';
  let o = 0;
  while (o + 8 <= b.length) {
    const t = tag(b, o);
    const len = dv.getUint32(o + 4, true);
    const p = o + 8;
    if (t === 'MOO ') {
      cpu = String.fromCharCode(...b.subarray(p + 8, p + 12)).trim();
    } else if (t === 'TEST') {
      const test: MooTest = {
        idx: dv.getUint32(p, true), name: '', bytes: new Uint8Array(0),
        initial: { regs: new Int32Array(0), ram: new Uint32Array(0) },
        final: { regs: new Int32Array(0), ram: new Uint32Array(0) },
        hash: null, exception: null,
      };
      let q = p + 4;
      const end = p + len;
      while (q + 8 <= end) {
        const st = tag(b, q);
        const sl = dv.getUint32(q + 4, true);
        const sp = q + 8;
        switch (st) {
          case 'NAME': {
            const n = dv.getUint32(sp, true);
            test.name = Buffer.from(b.buffer, b.byteOffset + sp + 4, n).toString('utf8');
            break;
          }
          case 'BYTS': {
            const n = dv.getUint32(sp, true);
            test.bytes = b.slice(sp + 4, sp + 4 + n);
            break;
          }
          case 'INIT': test.initial = readState(b, dv, sp, sp + sl); break;
          case 'FINA': test.final = readState(b, dv, sp, sp + sl); break;
          case 'HASH': test.hash = Buffer.from(b.buffer, b.byteOffset + sp, 20).toString('hex'); break;
          case 'EXCP': test.exception = { vector: b[sp], flagAddress: dv.getUint32(sp + 1, true) }; break;
        }
        q = sp + sl;
      }
      tests.push(test);
    }
    o = p + len;
  }
  return { cpu, tests };
}
