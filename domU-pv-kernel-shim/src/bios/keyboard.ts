/**
 * INT 16h, keyboard, fed from the PV console's input bytes: each byte (or ANSI escape sequence
 * for the arrow and editing keys) becomes a BIOS key word, scan code in the high byte and ASCII
 * in the low byte, queued like the BIOS's 16-entry buffer at 40:1E (here unbounded but capped).
 * Served: 00h/10h read (waits for a key), 01h/11h peek (ZF=1 when empty), 02h/12h shift flags.
 */
import { setZero, type RegisterFile } from './machine.ts';

/** Scan codes of the US keyboard's unshifted and shifted rows, by ASCII character. */
const SCAN: Record<string, number> = {};
const rows: Array<[string, string, number]> = [
  ['1234567890-=', '!@#$%^&*()_+', 0x02],
  ['qwertyuiop[]', 'QWERTYUIOP{}', 0x10],
  ["asdfghjkl;'`", 'ASDFGHJKL:"~', 0x1e],
  ['\\zxcvbnm,./', '|ZXCVBNM<>?', 0x2b],
];
for (const [lower, upper, first] of rows) {
  for (let i = 0; i < lower.length; i++) {
    SCAN[lower[i]!] = first + i;
    SCAN[upper[i]!] = first + i;
  }
}
SCAN[' '] = 0x39;

const ESCAPES: Record<string, number> = {
  '[A': 0x4800, '[B': 0x5000, '[C': 0x4d00, '[D': 0x4b00,
  '[H': 0x4700, '[F': 0x4f00, '[2~': 0x5200, '[3~': 0x5300, '[5~': 0x4900, '[6~': 0x5100,
};

/** The BIOS key word for one input byte. */
export function keyWord(byte: number): number {
  switch (byte) {
    case 0x0d: case 0x0a: return 0x1c0d;
    case 0x1b: return 0x011b;
    case 0x08: case 0x7f: return 0x0e08;
    case 0x09: return 0x0f09;
  }
  const ch = String.fromCharCode(byte);
  const scan = SCAN[ch];
  if (scan !== undefined) return (scan << 8) | byte;
  if (byte >= 1 && byte <= 26) return ((SCAN[String.fromCharCode(byte + 96)] ?? 0) << 8) | byte;
  return byte;
}

export class KeyboardService {
  private readonly queue: number[] = [];
  private waiters: Array<() => void> = [];
  static readonly MAX_QUEUED = 256;

  /** Console input arrived (from the console frontend's `in` ring). */
  feed(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b === 0x1b && bytes[i + 1] === 0x5b) {
        const rest = String.fromCharCode(...bytes.subarray(i + 1, i + 4));
        const seq = Object.keys(ESCAPES).find((k) => rest.startsWith(k));
        if (seq) {
          this.enqueue(ESCAPES[seq]!);
          i += seq.length;
          continue;
        }
      }
      this.enqueue(keyWord(b));
    }
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once a key is queued (at once if one is). */
  whenKey(): Promise<void> {
    if (this.queue.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async handle(regs: RegisterFile): Promise<void> {
    const ah = regs.getReg('ah');
    switch (ah) {
      case 0x00:
      case 0x10:
        while (this.queue.length === 0) await this.whenKey();
        regs.setReg('ax', this.queue.shift()!);
        break;
      case 0x01:
      case 0x11:
        if (this.queue.length === 0) setZero(regs, true);
        else {
          setZero(regs, false);
          regs.setReg('ax', this.queue[0]!);
        }
        break;
      case 0x02:
      case 0x12:
        regs.setReg('al', 0);
        if (ah === 0x12) regs.setReg('ah', 0);
        break;
      default:
        break;
    }
  }

  private enqueue(word: number): void {
    if (this.queue.length < KeyboardService.MAX_QUEUED) this.queue.push(word);
  }
}
