/**
 * FLAGS register bits and the parity table, as laid out in the 8086 Family User's Manual
 * (chapter 2, "Flags"). Shared by the executor, the lazy-flags evaluator and the disassembler.
 */
export const CF = 0x0001;
export const PF = 0x0004;
export const AF = 0x0010;
export const ZF = 0x0040;
export const SF = 0x0080;
export const TF = 0x0100;
export const IF = 0x0200;
export const DF = 0x0400;
export const OF = 0x0800;

/** The six arithmetic status flags every ALU operation recomputes. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** Bits a program can change with POPF/IRET/SAHF in real mode (everything else is fixed). */
export const WRITABLE_FLAGS = ARITH_FLAGS | TF | IF | DF;

/** PARITY[b] is PF when the low byte b has an even number of set bits, else 0. */
export const PARITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let n = 0;
    for (let b = i; b; b >>= 1) n += b & 1;
    t[i] = n & 1 ? 0 : PF;
  }
  return t;
})();
