import { describe, expect, it } from 'vitest';
import { CMOS, CmosRtc } from './cmos-rtc.ts';

const WHEN = Date.UTC(2026, 10, 21, 15, 4, 9); // Saturday
function setup(memoryBytes = 640 * 1024, now = WHEN) {
  let t = now;
  const c = new CmosRtc({ memoryBytes, clock: () => t, bootOrder: ['disk', 'cdrom', 'floppy'], biosFlags: 1 });
  const rd = (i: number) => {
    c.write(0, 1, i);
    return c.read(1, 1);
  };
  const wr = (i: number, v: number) => {
    c.write(0, 1, i);
    c.write(1, 1, v);
  };
  return { c, rd, wr, advance: (ms: number) => (t += ms) };
}

describe('CMOS RAM and RTC', () => {
  it('time and date from the host clock in BCD, 24-hour (register B default)', () => {
    const { rd } = setup();
    expect([rd(CMOS.HOURS), rd(CMOS.MINUTES), rd(CMOS.SECONDS)]).toEqual([0x15, 0x04, 0x09]);
    expect([rd(CMOS.DAY_OF_MONTH), rd(CMOS.MONTH), rd(CMOS.YEAR), rd(CMOS.CENTURY)]).toEqual([0x21, 0x11, 0x26, 0x20]);
    expect(rd(CMOS.DAY_OF_WEEK)).toBe(7); // Saturday, 1 = Sunday
  });

  it('binary and 12-hour modes follow register B', () => {
    const { rd, wr } = setup();
    wr(CMOS.REG_B, 0x04); // binary, 12-hour
    expect(rd(CMOS.HOURS)).toBe(0x80 | 3); // 3 PM
    expect(rd(CMOS.MINUTES)).toBe(4);
    wr(CMOS.REG_B, 0x00); // BCD, 12-hour
    expect(rd(CMOS.HOURS)).toBe(0x83);
  });

  it('the guest sets the clock: an offset that keeps running with the host', () => {
    const { rd, wr, advance } = setup();
    wr(CMOS.HOURS, 0x09);
    wr(CMOS.MINUTES, 0x30);
    wr(CMOS.YEAR, 0x99);
    wr(CMOS.CENTURY, 0x19);
    expect([rd(CMOS.HOURS), rd(CMOS.MINUTES), rd(CMOS.YEAR), rd(CMOS.CENTURY)]).toEqual([0x09, 0x30, 0x99, 0x19]);
    advance(61_000);
    expect([rd(CMOS.MINUTES), rd(CMOS.SECONDS)]).toEqual([0x31, 0x10]);
    // nonsense values are ignored
    wr(CMOS.MINUTES, 0x75);
    wr(CMOS.MONTH, 0x13);
    expect([rd(CMOS.MINUTES), rd(CMOS.MONTH)]).toEqual([0x31, 0x11]);
  });

  it('status registers: A without UIP, C clears on read, D battery good and read-only', () => {
    const { rd, wr, c } = setup();
    expect(rd(CMOS.REG_A)).toBe(0x26);
    c.poke(CMOS.REG_C, 0x90);
    expect(rd(CMOS.REG_C)).toBe(0x90);
    expect(rd(CMOS.REG_C)).toBe(0);
    wr(CMOS.REG_D, 0);
    expect(rd(CMOS.REG_D)).toBe(0x80);
  });

  it('memory sizes, disk type, boot order, xenlab flags and the checksum', () => {
    const { rd } = setup(32 * 1024 * 1024);
    expect(rd(CMOS.BASE_MEM_LO) | (rd(CMOS.BASE_MEM_HI) << 8)).toBe(640);
    expect(rd(CMOS.EXT_MEM_LO) | (rd(CMOS.EXT_MEM_HI) << 8)).toBe(31 * 1024);
    expect(rd(CMOS.EXT_MEM2_LO) | (rd(CMOS.EXT_MEM2_HI) << 8)).toBe(31 * 1024);
    expect(rd(CMOS.MEM_ABOVE_16M_LO) | (rd(CMOS.MEM_ABOVE_16M_HI) << 8)).toBe(256);
    expect(rd(CMOS.DISK_TYPES)).toBe(0xf0);
    expect(rd(CMOS.BOOT_ORDER_12)).toBe(0x32); // disk, then CD-ROM
    expect(rd(CMOS.BOOT_ORDER_3) >> 4).toBe(1); // then floppy
    expect(rd(CMOS.XENLAB_BIOS_FLAGS)).toBe(1);
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += rd(i);
    expect((rd(CMOS.CHECKSUM_HI) << 8) | rd(CMOS.CHECKSUM_LO)).toBe(sum);
  });

  it('index port: bit 7 is NMI disable, index wraps to 7 bits, reading it gives FFh', () => {
    const { c, rd } = setup();
    c.write(0, 1, 0x80 | CMOS.SECONDS);
    expect(c.nmiDisabled).toBe(true);
    expect(c.read(1, 1)).toBe(0x09);
    expect(c.read(0, 1)).toBe(0xff);
    c.write(0, 1, 0x7f);
    c.write(1, 1, 0x42);
    expect(rd(0x7f)).toBe(0x42);
  });

  it('snapshot and restore keep RAM and the guest clock offset', () => {
    const a = setup();
    a.wr(CMOS.HOURS, 0x01);
    a.wr(0x50, 0xaa);
    const b = setup();
    b.c.restore(JSON.parse(JSON.stringify(a.c.snapshot())));
    expect([b.rd(CMOS.HOURS), b.rd(0x50)]).toEqual([0x01, 0xaa]);
  });
});
