/**
 * @xenlab/x86-cpu — the x86 software CPU (8086 / 80186 real mode) and its disassembler: the
 * "silicon" xenlab's hypervisor drives on its pCPU threads. Dependency-free.
 *
 * Using it (see docs/x86-cpu.md for the full walk-through):
 *
 *   const { pages } = flatMemory(0x100000);            // or frames from the P2M:
 *   //   pages[gfn] = new Uint8Array(machineMemory, mfn * 4096, 4096), null = MMIO
 *   const cpu = new Cpu({ model: '80186', memory: { pages }, ports: { in, out } });
 *   cpu.setInterruptExit(0x13, true);                  // PV trap table: INT 13h exits
 *   for (;;) {
 *     const exit = cpu.run(100_000);                   // budget in instructions
 *     switch (exit.reason) {
 *       case 'io':   ... cpu.completeIo(valueOrCount); break;   // IN / OUT / (REP) INS/OUTS
 *       case 'mmio': ... if (exit.dir === 'read') cpu.completeMmioRead(v); break;
 *       case 'interrupt-exit': ... serve exit.vector with getReg/setReg/setCarry; break;
 *       case 'hlt':  ... block the vCPU until an interrupt: cpu.raiseIrq(vector); break;
 *       case 'budget': ... time slice used up; exit.executed says how many ran;
 *     }
 *   }
 *
 * Other controls: `step()` runs exactly one instruction; `interrupt(vector)` vectors through the
 * IVT now (e.g. a PV kernel reflecting a trap it chose not to serve); `getReg/setReg/setCarry`,
 * `getFlags/setFlags` and the `regs`/`sregs`/`ip` fields give the register file.
 * State for save/restore/migration: `getState()` / `setState()` (plain JSON data; complete any
 * outstanding exit first). Reset: `reset()` puts CS:IP at F000:FFF0.
 *
 * Memory contract: `pages[i]` covers linear addresses i*4096 .. i*4096+4095 and is read and
 * written in place; addresses wrap at 1 MiB (or 2 MiB with `a20: true`). Ports and null pages
 * are offered to the synchronous handlers first and exit only when those decline.
 */
export { Cpu, AX, CX, DX, BX, SP, BP, SI, DI, ES, CS, SS, DS } from './cpu.ts';
export type { CpuExit, CpuModel, CpuOptions, CpuState, PendingState, RegName } from './cpu.ts';
export { flatMemory, PAGE_SIZE, PAGE_SHIFT } from './memory.ts';
export type { MemoryInterface, Page, PortInterface } from './memory.ts';
export { CF, PF, AF, ZF, SF, TF, IF, DF, OF } from './flags.ts';
export { opcodeTable } from './opcode-table.ts';
export type { Family, Operand, OpcodeDef, OpcodeEntry, OpcodeTable } from './opcode-table.ts';
export { decode } from './decoder.ts';
export type { Decoded } from './decoder.ts';
export { disassemble, disassembleAt, disassembleBytes, traceLine } from './disasm.ts';
export type { Disassembly, TraceableCpu } from './disasm.ts';
