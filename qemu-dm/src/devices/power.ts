/**
 * Power and debug ports the virtual BIOS uses.
 *
 * PowerControl — an ACPI PM1a control register at B004h (the address QEMU's PIIX4 power
 * management gives PM1a_CNT; ACPI 6.x §4.8.3.2.1). Writing a word with SLP_EN (bit 13) and
 * SLP_TYP (bits 12-10) = 0 enters S5: soft-off. The BIOS's APM "set power state: off"
 * (INT 15h AX=5307h, CX=3) does exactly that write. Other sleep types are ignored (no S1-S4).
 * Reads return the last value with SLP_EN clear (it is write-only).
 *
 * DebugPort — Bochs/QEMU's port E9h: every byte written goes to a sink (qemu-dm's log, one line
 * per newline). Reading it returns E9h, the convention guests use to detect the port.
 */
import type { AccessSize, IoDevice } from './types.ts';

export const PM1A_CNT_PORT = 0xb004;
export const PM1_SLP_EN = 0x2000;
export const PM1_SLP_TYP_SHIFT = 10;
export const SLP_TYP_S5 = 0;
export const DEBUG_PORT = 0xe9;

export class PowerControl implements IoDevice {
  readonly name = 'pm1a';
  private value = 0;
  private off = false;

  constructor(private readonly onPowerOff: () => void) {}

  get poweredOff(): boolean {
    return this.off;
  }

  read(offset: number, size: AccessSize): number {
    const v = (this.value & ~PM1_SLP_EN) >>> (offset * 8);
    return size === 1 ? v & 0xff : v & 0xffff;
  }

  write(offset: number, size: AccessSize, value: number): void {
    // A byte write to the high half (B005h) carries SLP_TYP/SLP_EN on its own.
    if (size === 1) this.value = offset === 0 ? (this.value & 0xff00) | (value & 0xff) : (this.value & 0x00ff) | ((value & 0xff) << 8);
    else this.value = value & 0xffff;
    if (this.value & PM1_SLP_EN) {
      const typ = (this.value >> PM1_SLP_TYP_SHIFT) & 7;
      this.value &= ~PM1_SLP_EN;
      if (typ === SLP_TYP_S5 && !this.off) {
        this.off = true;
        this.onPowerOff();
      }
    }
  }

  snapshot(): { value: number; off: boolean } {
    return { value: this.value, off: this.off };
  }

  restore(state: unknown): void {
    const st = state as { value: number; off: boolean };
    this.value = st.value;
    this.off = st.off;
  }
}

export class DebugPort implements IoDevice {
  readonly name = 'debug-e9';
  private line: number[] = [];
  /** Every byte ever written, for tests and `xl dmesg`-style dumps (bounded). */
  private log = '';
  private static readonly LOG_MAX = 64 * 1024;

  constructor(private readonly sink: (line: string) => void = () => {}) {}

  get text(): string {
    return this.log;
  }

  read(): number {
    return 0xe9;
  }

  write(_offset: number, _size: AccessSize, value: number): void {
    const b = value & 0xff;
    if (this.log.length < DebugPort.LOG_MAX) this.log += String.fromCharCode(b);
    if (b === 0x0a) {
      this.sink(String.fromCharCode(...this.line));
      this.line = [];
    } else if (b !== 0x0d && this.line.length < 1024) this.line.push(b);
  }

  writeRep(offset: number, size: AccessSize, data: Uint8Array): void {
    for (let i = 0; i < data.length; i += size) this.write(offset, 1, data[i]);
  }

  snapshot(): { line: number[]; log: string } {
    return { line: [...this.line], log: this.log };
  }

  restore(state: unknown): void {
    const st = state as { line: number[]; log: string };
    this.line = [...st.line];
    this.log = st.log;
  }
}
