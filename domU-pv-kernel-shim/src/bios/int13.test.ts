import { BLKIF_RSP } from '@xenlab/ring-buffers';
import { describe, expect, it } from 'vitest';
import { guestWithDisk } from '../blkfront/testing/fixture.ts';
import { biosGeometry, DISK_STATUS, Int13Service } from './int13.ts';
import { readU16, Registers, writeU16, writeU32 } from './machine.ts';

function setup(sectors = 8192, info = {}) {
  const g = guestWithDisk(sectors, info);
  const svc = new Int13Service(g.mem, { drives: [{ drive: 0x80, front: g.front }], bounce: g.bounce });
  const call = async (init: ConstructorParameters<typeof Registers>[0]) => {
    const r = new Registers(init);
    await svc.handle(r);
    return r;
  };
  const dap = (at: number, count: number, seg: number, off: number, lba: number, size = 16) => {
    g.ram[at] = size;
    g.ram[at + 1] = 0;
    writeU16(g.mem, at + 2, count);
    writeU16(g.mem, at + 4, off);
    writeU16(g.mem, at + 6, seg);
    writeU32(g.mem, at + 8, lba % 2 ** 32);
    writeU32(g.mem, at + 12, Math.floor(lba / 2 ** 32));
  };
  const sector = (lba: number, n = 1) => g.backend.disk.subarray(lba * 512, (lba + n) * 512);
  return { ...g, svc, call, dap, sector };
}

describe('biosGeometry', () => {
  it.each([
    [8192, { cylinders: 8, heads: 16, spt: 63 }],
    [2048, { cylinders: 2, heads: 16, spt: 63 }],
    [512, { cylinders: 1, heads: 8, spt: 63 }],
    [40, { cylinders: 1, heads: 1, spt: 40 }],
    [1024 * 16 * 63 + 1, { cylinders: 512, heads: 32, spt: 63 }],
    [2 ** 32, { cylinders: 1024, heads: 255, spt: 63 }],
  ])('%i sectors', (n, geo) => expect(biosGeometry(n)).toEqual(geo));
});

describe('INT 13h', () => {
  it('AH=02h reads by C/H/S into ES:BX and reports AL', async () => {
    const t = setup();
    // C=1 H=2 S=3 -> LBA (1*16+2)*63+2 = 1136
    const r = await t.call({ ax: 0x0204, cx: 0x0103, dx: 0x0280, es: 0x1000, bx: 0x0000 });
    expect(r.carry).toBe(false);
    expect(r.getReg('ah')).toBe(0);
    expect(r.getReg('al')).toBe(4);
    expect(t.ram.subarray(0x10000, 0x10000 + 2048)).toEqual(t.sector(1136, 4));
  });

  it('AH=03h writes by C/H/S and flushes before returning', async () => {
    const t = setup();
    t.ram.fill(0x99, 0x20000, 0x20000 + 1024);
    const r = await t.call({ ax: 0x0302, cx: 0x0001, dx: 0x0080, es: 0x2000, bx: 0 });
    expect(r.carry).toBe(false);
    expect(t.sector(0, 2).every((b) => b === 0x99)).toBe(true);
    expect(t.backend.seen.map((s) => s.operation)).toEqual([1, 3]);
  });

  it('rejects impossible C/H/S and a zero count', async () => {
    const t = setup();
    for (const regs of [{ ax: 0x0201, cx: 0x0000, dx: 0x0080 }, { ax: 0x0201, cx: 0x0040, dx: 0x0080 }, { ax: 0x0201, cx: 0x0801, dx: 0x0080 }, { ax: 0x0201, cx: 0x0001, dx: 0x1080 }]) {
      const r = await t.call({ ...regs, es: 0x1000 });
      expect(r.carry).toBe(true);
      expect(r.getReg('ah')).toBe(DISK_STATUS.SECTOR_NOT_FOUND);
    }
    expect((await t.call({ ax: 0x0200, cx: 1, dx: 0x80 })).getReg('ah')).toBe(DISK_STATUS.BAD_COMMAND);
    const st = await t.call({ ax: 0x0100, dx: 0x80 });
    expect([st.getReg('ah'), st.carry]).toEqual([DISK_STATUS.BAD_COMMAND, true]);
    expect(t.backend.seen).toHaveLength(0);
  });

  it('AH=41h/48h/08h/15h describe the disk', async () => {
    const t = setup();
    const e = await t.call({ ax: 0x4100, bx: 0x55aa, dx: 0x80 });
    expect([e.carry, e.getReg('ah'), e.getReg('bx'), e.getReg('cx')]).toEqual([false, 0x21, 0xaa55, 1]);
    expect((await t.call({ ax: 0x4100, bx: 0x1234, dx: 0x80 })).carry).toBe(true);
    writeU16(t.mem, 0x600, 0x1e);
    const p = await t.call({ ax: 0x4800, dx: 0x80, ds: 0, si: 0x600 });
    expect(p.carry).toBe(false);
    expect([readU16(t.mem, 0x600), readU16(t.mem, 0x602), readU16(t.mem, 0x604), readU16(t.mem, 0x608), readU16(t.mem, 0x60c), readU16(t.mem, 0x610), readU16(t.mem, 0x618)]).toEqual([0x1e, 2, 8, 16, 63, 8192, 512]);
    writeU16(t.mem, 0x600, 0x10);
    expect((await t.call({ ax: 0x4800, dx: 0x80, ds: 0, si: 0x600 })).carry).toBe(true);
    const g = await t.call({ ax: 0x0800, dx: 0x80 });
    expect([g.getReg('ch'), g.getReg('cl'), g.getReg('dh'), g.getReg('dl'), g.carry]).toEqual([7, 63, 15, 1, false]);
    const ty = await t.call({ ax: 0x1500, dx: 0x80 });
    expect([ty.getReg('ah'), ty.getReg('cx'), ty.getReg('dx')]).toEqual([3, 0, 8192]);
    const none = await t.call({ ax: 0x1500, dx: 0x81 });
    expect([none.getReg('ah'), none.carry]).toEqual([0, false]);
    expect((await t.call({ ax: 0x0800, dx: 0x81 })).carry).toBe(true);
  });

  it('AH=42h: sector-aligned buffers are granted directly, 127 sectors in two requests', async () => {
    const t = setup();
    t.dap(0x500, 127, 0x2000, 0, 100);
    const r = await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 });
    expect(r.carry).toBe(false);
    expect(readU16(t.mem, 0x502)).toBe(127);
    expect(t.ram.subarray(0x20000, 0x20000 + 127 * 512)).toEqual(t.sector(100, 127));
    expect(t.backend.seen.map((s) => [s.sector, s.segments])).toEqual([[100, 11], [188, 5]]);
    expect(t.svc.counters.bounced).toBe(0);
  });

  it('AH=42h/43h: odd buffers bounce through the shim frames, data intact both ways', async () => {
    const t = setup();
    t.dap(0x500, 20, 0x3000, 0x0007, 5);
    expect((await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 })).carry).toBe(false);
    expect(t.ram.subarray(0x30007, 0x30007 + 20 * 512)).toEqual(t.sector(5, 20));
    expect(t.ram[0x30006]).toBe(0);
    for (let i = 0; i < 3 * 512; i++) t.ram[0x40001 + i] = i & 0xff;
    t.dap(0x520, 3, 0x4000, 0x0001, 50);
    expect((await t.call({ ax: 0x4300, dx: 0x80, ds: 0, si: 0x520 })).carry).toBe(false);
    expect(t.sector(50, 3)).toEqual(t.ram.subarray(0x40001, 0x40001 + 1536));
    expect(t.svc.counters.bounced).toBe(2);
  });

  it('AH=42h: the FFFF:FFFF form takes the flat 64-bit address', async () => {
    const t = setup();
    t.dap(0x500, 1, 0xffff, 0xffff, 9, 0x18);
    writeU32(t.mem, 0x510, 0x50000);
    writeU32(t.mem, 0x514, 0);
    expect((await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 })).carry).toBe(false);
    expect(t.ram.subarray(0x50000, 0x50200)).toEqual(t.sector(9));
    writeU32(t.mem, 0x514, 1);
    expect((await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 })).getReg('ah')).toBe(DISK_STATUS.BAD_DMA_ADDRESS);
  });

  it('AH=42h: past the end, over 127 sectors, a bad DAP: errors with the count zeroed', async () => {
    const t = setup();
    t.dap(0x500, 2, 0x2000, 0, 8191);
    let r = await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 });
    expect([r.carry, r.getReg('ah'), readU16(t.mem, 0x502)]).toEqual([true, DISK_STATUS.SECTOR_NOT_FOUND, 0]);
    t.dap(0x500, 128, 0x2000, 0, 0);
    r = await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 });
    expect([r.carry, r.getReg('ah')]).toEqual([true, DISK_STATUS.BAD_COMMAND]);
    t.dap(0x500, 1, 0x2000, 0, 0, 8);
    expect((await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 })).carry).toBe(true);
    expect(t.backend.seen).toHaveLength(0);
  });

  it('backend errors become AH=04h (read) / CCh (write) with the sectors moved before it', async () => {
    const t = setup();
    t.backend.failNext = [0, BLKIF_RSP.ERROR];
    t.dap(0x500, 127, 0x2000, 0, 0);
    const r = await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 });
    expect([r.carry, r.getReg('ah'), readU16(t.mem, 0x502)]).toEqual([true, 0x04, 88]);
    t.backend.failNext = [BLKIF_RSP.ERROR];
    t.dap(0x500, 1, 0x2000, 0, 0);
    expect((await t.call({ ax: 0x4300, dx: 0x80, ds: 0, si: 0x500 })).getReg('ah')).toBe(DISK_STATUS.WRITE_FAULT);
    expect((await t.call({ ax: 0x0100, dx: 0x80 })).getReg('ah')).toBe(DISK_STATUS.WRITE_FAULT);
  });

  it('a read-only disk refuses writes with AH=03h; unknown drives and functions are AH=01h', async () => {
    const t = setup(8192, { readOnly: true });
    t.dap(0x500, 1, 0x2000, 0, 0);
    expect((await t.call({ ax: 0x4300, dx: 0x80, ds: 0, si: 0x500 })).getReg('ah')).toBe(DISK_STATUS.WRITE_PROTECTED);
    expect((await t.call({ ax: 0x0201, cx: 1, dx: 0x81, es: 0x2000 })).getReg('ah')).toBe(DISK_STATUS.BAD_COMMAND);
    expect((await t.call({ ax: 0x4b00, dx: 0x80 })).getReg('ah')).toBe(DISK_STATUS.BAD_COMMAND);
    const reset = await t.call({ ax: 0x0000, dx: 0x80 });
    expect([reset.carry, reset.getReg('ah')]).toEqual([false, 0]);
  });

  it('a buffer in a memory hole fails with AH=09h and moves nothing', async () => {
    const t = setup();
    (t.pages as Array<Uint8Array | null>)[0xb8] = null;
    t.dap(0x500, 1, 0xb800, 0, 0);
    expect((await t.call({ ax: 0x4200, dx: 0x80, ds: 0, si: 0x500 })).getReg('ah')).toBe(DISK_STATUS.BAD_DMA_ADDRESS);
    expect(t.backend.seen).toHaveLength(0);
  });
});
