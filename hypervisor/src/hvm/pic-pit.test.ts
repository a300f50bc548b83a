import { describe, expect, it } from 'vitest';
import { Pic8259 } from './pic.ts';
import { PIT_HZ, Pit8254 } from './pit.ts';

/** The BIOS's PIC set-up: ICW1 11h, ICW2 base, ICW3 cascade, ICW4 01h; then masks. */
function initPic(p: Pic8259, masterBase = 0x08, slaveBase = 0x70): void {
  p.write(0x20, 0x11);
  p.write(0x21, masterBase);
  p.write(0x21, 0x04);
  p.write(0x21, 0x01);
  p.write(0xa0, 0x11);
  p.write(0xa1, slaveBase);
  p.write(0xa1, 0x02);
  p.write(0xa1, 0x01);
  p.write(0x21, 0x00);
  p.write(0xa1, 0x00);
}

describe('8259A PIC', () => {
  it('delivers by priority, holds lower ones while one is in service, EOI releases', () => {
    const p = new Pic8259();
    initPic(p);
    p.pulse(1);
    p.pulse(0);
    expect(p.acknowledge()).toBe(0x08); // IRQ0 first
    expect(p.acknowledge()).toBeUndefined(); // IRQ1 waits: IRQ0 in service
    p.write(0x20, 0x20); // EOI
    expect(p.acknowledge()).toBe(0x09);
    p.write(0x20, 0x20);
    expect(p.acknowledge()).toBeUndefined();
  });

  it('masks, cascades the slave through IRQ2, reads IRR/ISR', () => {
    const p = new Pic8259();
    initPic(p);
    p.write(0x21, 0x01); // mask IRQ0
    p.pulse(0);
    expect(p.acknowledge()).toBeUndefined();
    p.setIrq(14, true); // the disk controller raises its line
    expect(p.acknowledge()).toBe(0x76);
    p.write(0xa0, 0x0b); // OCW3: read ISR
    expect(p.read(0xa0)).toBe(1 << 6);
    p.write(0xa0, 0x20);
    p.write(0x20, 0x20);
    p.write(0x21, 0x00);
    expect(p.acknowledge()).toBe(0x08); // the masked tick was remembered in IRR
  });

  it('is reset to all-masked', () => {
    expect(new Pic8259().acknowledge()).toBeUndefined();
  });
});

describe('8254 PIT', () => {
  it('channel 0 reload 0 runs at 18.2 Hz, a programmed divisor changes the period', () => {
    let t = 0;
    const pit = new Pit8254(() => t);
    const periods: number[] = [];
    pit.onPeriod = (ns) => periods.push(ns);
    expect(pit.periodNs).toBe(0);
    pit.write(0x43, 0x36); // ch0, lo/hi, mode 3
    pit.write(0x40, 0);
    pit.write(0x40, 0);
    expect(pit.periodNs).toBe(Math.round((65536 * 1e9) / PIT_HZ)); // ~54.9 ms
    pit.write(0x43, 0x34);
    pit.write(0x40, 1193 & 0xff);
    pit.write(0x40, 1193 >> 8);
    expect(periods).toHaveLength(2);
    expect(periods[1]).toBeCloseTo(1e6, -4); // ~1 ms
    // the count runs down
    t += 0.5e6;
    pit.write(0x43, 0x00); // latch ch0
    const lo = pit.read(0x40);
    const hi = pit.read(0x40);
    const count = lo | (hi << 8);
    expect(count).toBeGreaterThan(500);
    expect(count).toBeLessThan(700);
  });
});
