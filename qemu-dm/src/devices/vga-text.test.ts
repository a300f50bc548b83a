import { describe, expect, it } from 'vitest';
import { VgaText } from './vga-text.ts';

describe('VGA text memory and CRTC', () => {
  it('text memory holds char/attr pairs and renders the visible page', () => {
    const v = new VgaText();
    const put = (row: number, col: number, s: string) => {
      for (let i = 0; i < s.length; i++) v.text.write((row * 80 + col + i) * 2, 2, 0x1f00 | s.charCodeAt(i));
    };
    put(0, 0, 'hello');
    put(24, 75, 'world');
    const screen = v.screen();
    expect(screen).toHaveLength(25);
    expect(screen[0]).toBe('hello');
    expect(screen[24]).toBe(' '.repeat(75) + 'world');
    expect(v.cell(0, 1)).toEqual({ char: 'e'.charCodeAt(0), attr: 0x1f });
    expect(v.text.read(0, 2)).toBe(0x1f68);
    expect(v.text.read(1, 1)).toBe(0x1f);
  });

  it('CRTC cursor and start address registers through 3D4h/3D5h', () => {
    const v = new VgaText();
    const crtc = (r: number, val: number) => {
      v.ports.write(0x14, 1, r);
      v.ports.write(0x15, 1, val);
    };
    crtc(0x0e, 0x00);
    crtc(0x0f, 80 * 3 + 7);
    expect(v.cursor).toEqual({ row: 3, col: 7 });
    // a word OUT writes index and data together
    v.ports.write(0x14, 2, (0x08 << 8) | 0x0c);
    v.ports.write(0x14, 2, (0x00 << 8) | 0x0d);
    expect(v.startAddress).toBe(0x800);
    v.text.write(0x1000, 1, 0x41);
    expect(v.screen()[0]).toBe('A');
    v.ports.write(0x14, 1, 0x0a);
    expect(v.ports.read(0x15, 1)).toBe(0x06);
  });

  it('status register 1 toggles so retrace polling loops finish; bad indexes are harmless', () => {
    const v = new VgaText();
    const a = v.ports.read(0x1a, 1);
    const b = v.ports.read(0x1a, 1);
    expect(a ^ b).toBe(0x09);
    v.ports.write(0x14, 1, 0x1f);
    v.ports.write(0x15, 1, 0x55);
    expect(v.ports.read(0x15, 1)).toBe(0xff);
    v.text.write(0x7fff, 2, 0xabcd); // wraps inside the 32 KiB window
    expect(v.text.read(0, 1)).toBe(0xab);
  });

  it('snapshot and restore', () => {
    const v = new VgaText();
    v.text.write(0, 1, 0x5a);
    v.ports.write(0x14, 1, 0x0f);
    v.ports.write(0x15, 1, 5);
    const w = new VgaText();
    w.restore(JSON.parse(JSON.stringify(v.snapshot())));
    expect(w.screen()[0]).toBe('Z');
    expect(w.cursor).toEqual({ row: 0, col: 5 });
  });
});
