/**
 * INT 10h, video, as a PV console: the guest's text goes to a byte sink (the console frontend's
 * ring), the cursor is tracked so AH=03h answers what AH=02h set and teletype moved, and the
 * cursor position is mirrored to the BIOS data area (40:50) for programs that read it there.
 * Served: 00h set mode (clears, cursor home), 01h cursor shape, 02h/03h set/get cursor,
 * 05h page, 06h/07h scroll (acknowledged), 08h read char (a blank), 09h/0Ah write char (emitted
 * once per count), 0Eh teletype (CR, LF, BS, BEL, wrap and scroll), 0Fh get mode, 13h write string.
 */
import { linear, readGuest, writeU16, type GuestMemory, type RegisterFile } from './machine.ts';

export const TEXT_COLUMNS = 80;
export const TEXT_ROWS = 25;
const BDA_CURSOR = 0x450;
const BDA_MODE = 0x449;
const BDA_COLUMNS = 0x44a;

export interface ConsoleSink {
  write(bytes: Uint8Array): void;
}

export class VideoService {
  row = 0;
  col = 0;
  mode = 0x03;
  cursorShape = 0x0607;
  page = 0;

  constructor(private readonly sink: ConsoleSink, private readonly mem?: GuestMemory) {}

  handle(regs: RegisterFile): void {
    const ah = regs.getReg('ah');
    switch (ah) {
      case 0x00:
        this.mode = regs.getReg('al') & 0x7f;
        this.row = this.col = 0;
        this.sync();
        break;
      case 0x01:
        this.cursorShape = regs.getReg('cx');
        break;
      case 0x02:
        this.row = Math.min(regs.getReg('dh'), TEXT_ROWS - 1);
        this.col = Math.min(regs.getReg('dl'), TEXT_COLUMNS - 1);
        this.sync();
        break;
      case 0x03:
        regs.setReg('dh', this.row);
        regs.setReg('dl', this.col);
        regs.setReg('cx', this.cursorShape);
        break;
      case 0x05:
        this.page = regs.getReg('al');
        break;
      case 0x06:
      case 0x07:
        break;
      case 0x08:
        regs.setReg('ax', 0x0720);
        break;
      case 0x09:
      case 0x0a: {
        const n = Math.min(regs.getReg('cx'), TEXT_COLUMNS * TEXT_ROWS);
        this.sink.write(new Uint8Array(n).fill(regs.getReg('al')));
        break;
      }
      case 0x0e:
        this.teletype(regs.getReg('al'));
        break;
      case 0x0f:
        regs.setReg('al', this.mode);
        regs.setReg('ah', TEXT_COLUMNS);
        regs.setReg('bh', this.page);
        break;
      case 0x13: {
        const al = regs.getReg('al');
        const len = regs.getReg('cx');
        const withAttr = (al & 2) !== 0;
        if (!this.mem || len === 0) break;
        const raw = readGuest(this.mem, linear(regs.getReg('es'), regs.getReg('bp')), withAttr ? len * 2 : len);
        const chars = withAttr ? raw.filter((_, i) => i % 2 === 0) : raw;
        const [saveRow, saveCol] = [this.row, this.col];
        this.row = Math.min(regs.getReg('dh'), TEXT_ROWS - 1);
        this.col = Math.min(regs.getReg('dl'), TEXT_COLUMNS - 1);
        for (const c of chars) this.teletype(c);
        if ((al & 1) === 0) [this.row, this.col] = [saveRow, saveCol];
        this.sync();
        break;
      }
      default:
        break;
    }
  }

  /** AH=0Eh: emits the byte and moves the cursor like a teletype. */
  teletype(c: number): void {
    this.sink.write(Uint8Array.of(c));
    switch (c) {
      case 0x0d:
        this.col = 0;
        break;
      case 0x0a:
        this.row = Math.min(this.row + 1, TEXT_ROWS - 1);
        break;
      case 0x08:
        if (this.col > 0) this.col--;
        break;
      case 0x07:
        break;
      default:
        if (++this.col >= TEXT_COLUMNS) {
          this.col = 0;
          this.row = Math.min(this.row + 1, TEXT_ROWS - 1);
        }
    }
    this.sync();
  }

  private sync(): void {
    if (!this.mem?.pages[0]) return;
    writeU16(this.mem, BDA_CURSOR + this.page * 2, (this.row << 8) | this.col);
    this.mem.pages[0][BDA_MODE] = this.mode;
    writeU16(this.mem, BDA_COLUMNS, TEXT_COLUMNS);
  }
}
