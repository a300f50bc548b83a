/**
 * VGA colour text mode as the guest sees it: 32 KiB of text memory at B8000-BFFFF (MMIO; eight
 * 4000-byte pages of 80×25 character/attribute pairs) and the CRT controller's index/data pair at
 * 3D4h/3D5h with the cursor and start-address registers (IBM VGA Technical Reference; QEMU
 * hw/display/vga.c). Two windows, each an `IoDevice` facet of this one device:
 *
 *   text   B8000-BFFFF  offset = byte in text memory (even: character, odd: attribute)
 *   ports  3C0-3DF      offset = port − 3C0h: 14h/15h CRTC index/data (3D4h/3D5h),
 *                       1Ah input status 1 (3DAh: retrace bits toggle so polling loops end),
 *                       0Ch misc output read (3CCh: colour, RAM enabled); others are latched
 *
 * `screen()` renders the visible page as 25 lines of text (code page 437 → Unicode for the
 * printable range), which the console and the tests read.
 */
import { b64ToBytes, bytesToB64 } from './memory.ts';
import type { AccessSize, IoDevice } from './types.ts';

export const VGA_TEXT_BASE = 0xb8000;
export const VGA_TEXT_SIZE = 0x8000;
export const VGA_PORT_BASE = 0x3c0;
export const VGA_PORT_COUNT = 0x20;
export const VGA_COLS = 80;
export const VGA_ROWS = 25;
/** CRTC register numbers (3D5h via index 3D4h). */
export const CRTC = { CURSOR_START: 0x0a, CURSOR_END: 0x0b, START_HI: 0x0c, START_LO: 0x0d, CURSOR_HI: 0x0e, CURSOR_LO: 0x0f } as const;

interface VgaState {
  text: string;
  crtcIndex: number;
  crtc: number[];
  latched: number[];
  status1: number;
}

export class VgaText {
  readonly text: IoDevice;
  readonly ports: IoDevice;
  readonly counters = { textWrites: 0, textReads: 0 };
  private mem: Uint8Array = new Uint8Array(VGA_TEXT_SIZE);
  private crtcIndex = 0;
  private crtc = new Array<number>(0x19).fill(0);
  private latched = new Array<number>(VGA_PORT_COUNT).fill(0);
  private status1 = 0;

  constructor() {
    this.crtc[CRTC.CURSOR_START] = 0x06;
    this.crtc[CRTC.CURSOR_END] = 0x07;
    for (let i = 0; i < VGA_TEXT_SIZE; i += 2) {
      this.mem[i] = 0x20;
      this.mem[i + 1] = 0x07;
    }
    const self = this;
    this.text = {
      name: 'vga-text',
      read: (o, s) => this.readText(o, s),
      write: (o, s, v) => this.writeText(o, s, v),
      snapshot: () => self.snapshot(),
      restore: (st) => self.restore(st),
    };
    this.ports = {
      name: 'vga-ports',
      read: (o) => this.readPort(o),
      write: (o, s, v) => this.writePort(o, s, v),
      snapshot: () => self.snapshot(),
      restore: (st) => self.restore(st),
    };
  }

  /** Cursor position as (row, column) from the CRTC cursor location relative to the start address. */
  get cursor(): { row: number; col: number } {
    const pos = (((this.crtc[CRTC.CURSOR_HI] << 8) | this.crtc[CRTC.CURSOR_LO]) - this.startAddress) & 0xffff;
    return { row: Math.floor(pos / VGA_COLS), col: pos % VGA_COLS };
  }

  /** Character cell offset (in cells) of the first visible character. */
  get startAddress(): number {
    return (this.crtc[CRTC.START_HI] << 8) | this.crtc[CRTC.START_LO];
  }

  /** One cell of the visible page. */
  cell(row: number, col: number): { char: number; attr: number } {
    const at = ((this.startAddress + row * VGA_COLS + col) * 2) & (VGA_TEXT_SIZE - 1);
    return { char: this.mem[at], attr: this.mem[at + 1] };
  }

  /** The visible 80×25 page as text, trailing spaces trimmed on each line. */
  screen(): string[] {
    const lines: string[] = [];
    for (let r = 0; r < VGA_ROWS; r++) {
      let line = '';
      for (let c = 0; c < VGA_COLS; c++) line += cp437(this.cell(r, c).char);
      lines.push(line.replace(/\s+$/, ''));
    }
    return lines;
  }

  snapshot(): VgaState {
    return { text: bytesToB64(this.mem), crtcIndex: this.crtcIndex, crtc: [...this.crtc], latched: [...this.latched], status1: this.status1 };
  }

  restore(state: unknown): void {
    const st = state as VgaState;
    this.mem = b64ToBytes(st.text);
    this.crtcIndex = st.crtcIndex;
    this.crtc = [...st.crtc];
    this.latched = [...st.latched];
    this.status1 = st.status1;
  }

  private readText(offset: number, size: AccessSize): number {
    this.counters.textReads++;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.mem[(offset + i) & (VGA_TEXT_SIZE - 1)];
    return v;
  }

  private writeText(offset: number, size: AccessSize, value: number): void {
    this.counters.textWrites++;
    for (let i = 0; i < size; i++) this.mem[(offset + i) & (VGA_TEXT_SIZE - 1)] = (value >>> (8 * i)) & 0xff;
  }

  private readPort(offset: number): number {
    switch (offset) {
      case 0x14: return this.crtcIndex;
      case 0x15: return this.crtcIndex < this.crtc.length ? this.crtc[this.crtcIndex] : 0xff;
      case 0x1a:
        // Input status 1: display-enable and vertical-retrace toggle on every read.
        this.status1 ^= 0x09;
        return this.status1;
      case 0x0c: return 0x67; // misc output: colour (3Dx) addressing, RAM enabled
      default: return this.latched[offset] ?? 0xff;
    }
  }

  private writePort(offset: number, size: AccessSize, value: number): void {
    if (size === 2) {
      // A word OUT to an index port writes index (low byte) then data (high byte).
      this.writePort(offset, 1, value & 0xff);
      this.writePort(offset + 1, 1, (value >> 8) & 0xff);
      return;
    }
    value &= 0xff;
    switch (offset) {
      case 0x14: this.crtcIndex = value & 0x1f; return;
      case 0x15:
        if (this.crtcIndex < this.crtc.length) this.crtc[this.crtcIndex] = value;
        return;
      default:
        if (offset < VGA_PORT_COUNT) this.latched[offset] = value;
    }
  }
}

/** Code page 437 for the cells people look at; other control glyphs show as '.'. */
function cp437(c: number): string {
  if (c === 0) return ' ';
  if (c >= 0x20 && c < 0x7f) return String.fromCharCode(c);
  const hi = '\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0';
  if (c >= 0x80) return hi[c - 0x80];
  return '.';
}
