import { describe, expect, it } from 'vitest';
import { I8042, KBC_STATUS } from './i8042.ts';

function setup() {
  const irqs: boolean[] = [];
  const a20: boolean[] = [];
  let resets = 0;
  const k = new I8042({ irq: (l) => irqs.push(l), onA20: (e) => a20.push(e), onReset: () => resets++ });
  const cmd = (c: number) => k.write(4, 1, c);
  const data = (d: number) => k.write(0, 1, d);
  const read = () => k.read(0, 1);
  const status = () => k.read(4, 1);
  return { k, irqs, a20, resets: () => resets, cmd, data, read, status, level: () => irqs.at(-1) ?? false };
}

describe('8042 keyboard controller', () => {
  it('self test answers 55h and sets the system flag; interface test answers 00h', () => {
    const t = setup();
    t.cmd(0xaa);
    expect(t.status() & (KBC_STATUS.OBF | KBC_STATUS.SYS)).toBe(KBC_STATUS.OBF | KBC_STATUS.SYS);
    expect(t.read()).toBe(0x55);
    expect(t.status() & KBC_STATUS.OBF).toBe(0);
    t.cmd(0xab);
    expect(t.read()).toBe(0x00);
  });

  it('command byte read/write; keyboard IRQ follows bit 0', () => {
    const t = setup();
    t.cmd(0x60);
    t.data(0x44); // no IRQ
    t.cmd(0x20);
    expect(t.read()).toBe(0x44);
    t.k.pressKeys([0x1e]);
    expect(t.level()).toBe(false);
    expect(t.read()).toBe(0x1e);
    t.cmd(0x60);
    t.data(0x45);
    t.k.pressKeys([0x1e, 0x9e]);
    expect(t.level()).toBe(true);
    expect(t.read()).toBe(0x1e);
    // the next byte is loaded at once: the line drops and rises again (a new edge)
    expect(t.irqs.slice(-2)).toEqual([false, true]);
    expect(t.read()).toBe(0x9e);
    expect(t.level()).toBe(false);
  });

  it('A20 through the output port (D1h) and reset through FEh or output port bit 0', () => {
    const t = setup();
    t.cmd(0xd1);
    t.data(0x01); // A20 off, not reset
    expect(t.a20).toEqual([false]);
    expect(t.k.a20).toBe(false);
    t.cmd(0xd0);
    expect(t.read() & 0x03).toBe(0x01);
    t.cmd(0xdf);
    expect(t.k.a20).toBe(true);
    expect(t.resets()).toBe(0);
    t.cmd(0xfe);
    expect(t.resets()).toBe(1);
    t.cmd(0xd1);
    t.data(0x02); // bit 0 low: reset
    expect(t.resets()).toBe(2);
  });

  it('keyboard commands: reset, identify, echo, LEDs, unknown → resend', () => {
    const t = setup();
    t.data(0xff);
    expect([t.read(), t.read()]).toEqual([0xfa, 0xaa]);
    t.data(0xf2);
    expect([t.read(), t.read(), t.read()]).toEqual([0xfa, 0xab, 0x83]);
    t.data(0xee);
    expect(t.read()).toBe(0xee);
    t.data(0xed);
    expect(t.read()).toBe(0xfa);
    t.data(0x07);
    expect(t.read()).toBe(0xfa);
    t.data(0x12);
    expect(t.read()).toBe(0xfe);
  });

  it('disabled keyboard interface holds keys back until enabled; replies still flow', () => {
    const t = setup();
    t.cmd(0xad);
    t.k.pressKeys([0x10]);
    expect(t.status() & KBC_STATUS.OBF).toBe(0);
    t.cmd(0xae);
    expect(t.read()).toBe(0x10);
    t.data(0xf5); // keyboard: stop scanning
    expect(t.read()).toBe(0xfa);
    t.k.pressKeys([0x11]);
    expect(t.status() & KBC_STATUS.OBF).toBe(0);
    t.data(0xf4);
    expect(t.read()).toBe(0xfa);
    expect(t.read()).toBe(0x11);
  });

  it('garbage: unknown commands ignored, reads with nothing pending repeat the last byte, full queue drops', () => {
    const t = setup();
    for (const c of [0x00, 0x13, 0xb7, 0xc5]) t.cmd(c);
    expect(t.status() & KBC_STATUS.OBF).toBe(0);
    t.k.pressKeys([0x2c]);
    expect(t.read()).toBe(0x2c);
    expect(t.read()).toBe(0x2c);
    t.k.pressKeys(new Array(300).fill(0x1f));
    expect(t.k.counters.keysDropped).toBe(300 - 256);
    t.cmd(0xd4); // to the (absent) mouse
    t.data(0xf4);
    // the aux reply waits behind nothing: OBF with the aux bit
    t.read(); // the key that was already in the buffer
    expect(t.status() & KBC_STATUS.AUX_OBF).toBe(KBC_STATUS.AUX_OBF);
    expect(t.read()).toBe(0xfe);
  });

  it('snapshot and restore keep queued keys and the command byte', () => {
    const t = setup();
    t.cmd(0x60);
    t.data(0x47);
    t.k.pressKeys([1, 2, 3]);
    const snap = JSON.parse(JSON.stringify(t.k.snapshot()));
    const u = setup();
    u.k.restore(snap);
    u.cmd(0x20);
    expect([u.read(), u.read(), u.read(), u.read()]).toEqual([1, 0x47, 2, 3]);
  });
});
