import { describe, expect, it } from 'vitest';
import { DebugPort, PowerControl } from './power.ts';

describe('PM1a power-off and the E9h debug port', () => {
  it('SLP_EN with SLP_TYP=S5 powers off once; other sleep types are ignored', () => {
    let offs = 0;
    const p = new PowerControl(() => offs++);
    p.write(0, 2, 0x2000 | (1 << 10)); // S1-ish: ignored
    expect(offs).toBe(0);
    p.write(0, 2, 0x0001); // no SLP_EN
    expect(offs).toBe(0);
    expect(p.read(0, 2)).toBe(0x0001);
    p.write(1, 1, 0x20); // SLP_EN via the high byte, type 0
    expect(offs).toBe(1);
    expect(p.poweredOff).toBe(true);
    p.write(0, 2, 0x2000);
    expect(offs).toBe(1);
    expect(p.read(0, 2) & 0x2000).toBe(0); // SLP_EN is write-only
  });

  it('debug port collects lines; reads identify the port', () => {
    const lines: string[] = [];
    const d = new DebugPort((l) => lines.push(l));
    for (const c of 'BIOS\r\nok\n') d.write(0, 1, c.charCodeAt(0));
    d.writeRep(0, 1, new TextEncoder().encode('x\n'));
    expect(lines).toEqual(['BIOS', 'ok', 'x']);
    expect(d.read()).toBe(0xe9);
    expect(d.text).toBe('BIOS\r\nok\nx\n');
  });
});
