import { describe, expect, it } from 'vitest';
import { guestWithDisk } from '../blkfront/testing/fixture.ts';
import { Int13Service } from './int13.ts';
import { keyWord, KeyboardService } from './keyboard.ts';
import { FLAG_ZF, readU16, readU32, Registers } from './machine.ts';
import { BiosServices } from './services.ts';
import { APM_VERSION, SystemService } from './system.ts';
import { TICK_HZ, TICKS_PER_DAY, TimeService } from './time.ts';
import { VideoService } from './video.ts';

function bios(nowMs = Date.UTC(2026, 0, 1, 0, 0, 0)) {
  const g = guestWithDisk(64);
  let out = '';
  const clock = { t: nowMs, now() { return this.t; } };
  const services = new BiosServices({
    video: new VideoService({ write: (b) => (out += Buffer.from(b).toString('latin1')) }, g.mem),
    disk: new Int13Service(g.mem, { drives: [{ drive: 0x80, front: g.front }], bounce: g.bounce }),
    keyboard: new KeyboardService(),
    time: new TimeService(clock, g.mem),
    system: new SystemService({ memoryKib: 576 }),
  });
  const call = async (vector: number, init: ConstructorParameters<typeof Registers>[0]) => {
    const r = new Registers(init);
    const outcome = await services.serve(vector, r);
    return { r, outcome };
  };
  return { g, services, call, out: () => out, clock };
}

describe('BIOS services table', () => {
  it('traps exactly the served vectors and reports the rest as unhandled', async () => {
    const b = bios();
    expect(b.services.vectors.sort((x, y) => x - y)).toEqual([0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x1a]);
    expect((await b.call(0x21, {})).outcome).toBe('unhandled');
    await b.call(0x10, { ax: 0x0e41 });
    expect(b.services.counters).toEqual({ int21: 1, int10: 1 });
  });
});

describe('INT 10h', () => {
  it('teletype writes bytes and moves the cursor (CR, LF, BS, wrap), mirrored to 40:50', async () => {
    const b = bios();
    for (const c of 'ab\r\nxyz\b') await b.call(0x10, { ax: 0x0e00 | c.charCodeAt(0) });
    expect(b.out()).toBe('ab\r\nxyz\b');
    const { r } = await b.call(0x10, { ax: 0x0300 });
    expect([r.getReg('dh'), r.getReg('dl')]).toEqual([1, 2]);
    expect(readU16(b.g.mem, 0x450)).toBe(0x0102);
    await b.call(0x10, { ax: 0x0200, dx: 0x184f });
    await b.call(0x10, { ax: 0x0e21 });
    const after = (await b.call(0x10, { ax: 0x0300 })).r;
    expect([after.getReg('dh'), after.getReg('dl')]).toEqual([24, 0]);
  });

  it('AH=0Fh mode, AH=13h string, AH=09h repeat', async () => {
    const b = bios();
    const m = (await b.call(0x10, { ax: 0x0f00 })).r;
    expect([m.getReg('al'), m.getReg('ah'), m.getReg('bh')]).toEqual([3, 80, 0]);
    b.g.ram.set(Buffer.from('hi!'), 0x700);
    await b.call(0x10, { ax: 0x1301, cx: 3, es: 0, bp: 0x700, dx: 0x0000 });
    await b.call(0x10, { ax: 0x092d, cx: 3 });
    expect(b.out()).toBe('hi!---');
  });
});

describe('INT 16h', () => {
  it('maps console bytes to scan code and ASCII, peeks with ZF, waits for input', async () => {
    const b = bios();
    const kb = b.services.parts.keyboard;
    let r = (await b.call(0x16, { ax: 0x0100 })).r;
    expect(r.getFlags() & FLAG_ZF).toBe(FLAG_ZF);
    const waiting = b.call(0x16, { ax: 0x0000 });
    kb.feed(Buffer.from('a\r\x1b[A'));
    expect((await waiting).r.getReg('ax')).toBe(0x1e61);
    r = (await b.call(0x16, { ax: 0x0100 })).r;
    expect([r.getFlags() & FLAG_ZF, r.getReg('ax')]).toEqual([0, 0x1c0d]);
    expect((await b.call(0x16, { ax: 0x0000 })).r.getReg('ax')).toBe(0x1c0d);
    expect((await b.call(0x16, { ax: 0x1000 })).r.getReg('ax')).toBe(0x4800);
    expect(kb.pending).toBe(0);
    expect([keyWord(0x1b), keyWord(0x08), keyWord('A'.charCodeAt(0)), keyWord(' '.charCodeAt(0)), keyWord(3)]).toEqual([0x011b, 0x0e08, 0x1e41, 0x3920, 0x2e03]);
  });
});

describe('INT 1Ah', () => {
  it('counts 18.2 ticks a second from midnight, rolls over with AL=1, mirrors 40:6C', async () => {
    const b = bios(new Date(2026, 0, 1, 23, 59, 59).getTime());
    let r = (await b.call(0x1a, { ax: 0 })).r;
    const t0 = r.getReg('cx') * 65536 + r.getReg('dx');
    expect(t0).toBe(Math.floor(86399 * TICK_HZ));
    expect(readU32(b.g.mem, 0x46c)).toBe(t0);
    b.clock.t += 550;
    r = (await b.call(0x1a, { ax: 0 })).r;
    expect(r.getReg('cx') * 65536 + r.getReg('dx') - t0).toBe(10);
    b.clock.t += 2000;
    r = (await b.call(0x1a, { ax: 0 })).r;
    expect(r.getReg('al')).toBe(1);
    expect(r.getReg('cx') * 65536 + r.getReg('dx')).toBeLessThan(100);
    expect((await b.call(0x1a, { ax: 0 })).r.getReg('al')).toBe(0);
    await b.call(0x1a, { ax: 0x0100, cx: 0x0018, dx: 0x00b0 + 5 });
    r = (await b.call(0x1a, { ax: 0 })).r;
    expect(r.getReg('cx') * 65536 + r.getReg('dx')).toBe((0x1800b5) % TICKS_PER_DAY);
  });

  it('RTC time and date in BCD', async () => {
    const b = bios(new Date(2026, 10, 21, 13, 45, 9).getTime());
    const t = (await b.call(0x1a, { ax: 0x0200 })).r;
    expect([t.getReg('ch'), t.getReg('cl'), t.getReg('dh'), t.carry]).toEqual([0x13, 0x45, 0x09, false]);
    const d = (await b.call(0x1a, { ax: 0x0400 })).r;
    expect([d.getReg('ch'), d.getReg('cl'), d.getReg('dh'), d.getReg('dl')]).toEqual([0x20, 0x26, 0x11, 0x21]);
  });
});

describe('INT 11h, 12h, 15h', () => {
  it('equipment and memory', async () => {
    const b = bios();
    expect((await b.call(0x11, {})).r.getReg('ax')).toBe(0x0020);
    expect((await b.call(0x12, {})).r.getReg('ax')).toBe(576);
  });

  it('APM: install check, connect, power off (AX=5307h BX=1 CX=3)', async () => {
    const b = bios();
    const chk = (await b.call(0x15, { ax: 0x5300, bx: 0 })).r;
    expect([chk.carry, chk.getReg('ax'), chk.getReg('bx')]).toEqual([false, APM_VERSION, 0x504d]);
    let off = await b.call(0x15, { ax: 0x5307, bx: 1, cx: 3 });
    expect([off.outcome, off.r.carry, off.r.getReg('ah')]).toEqual(['resume', true, 0x03]);
    expect((await b.call(0x15, { ax: 0x5301, bx: 0 })).r.carry).toBe(false);
    expect((await b.call(0x15, { ax: 0x5301, bx: 0 })).r.getReg('ah')).toBe(0x02);
    expect((await b.call(0x15, { ax: 0x5307, bx: 1, cx: 1 })).outcome).toBe('resume');
    off = await b.call(0x15, { ax: 0x5307, bx: 1, cx: 3 });
    expect(off.outcome).toBe('poweroff');
  });

  it('unknown INT 15h functions are CF=1 AH=86h', async () => {
    const b = bios();
    const r = (await b.call(0x15, { ax: 0xe820 })).r;
    expect([r.carry, r.getReg('ah')]).toEqual([true, 0x86]);
    expect((await b.call(0x15, { ax: 0x8800 })).r.getReg('ax')).toBe(0);
  });
});

describe('trap frames', () => {
  it('a frame in, a service, a frame out', async () => {
    const { Registers: R } = await import('./machine.ts');
    const b = bios();
    const frame = { ax: 0x0e41, bx: 7, cx: 0, dx: 0, sp: 0x7bfe, bp: 0, si: 0, di: 0, cs: 0, ds: 0, es: 0, ss: 0, ip: 0x7c10, flags: 0x0203 };
    const regs = R.fromFrame(frame);
    expect(await b.services.serve(0x10, regs)).toBe('resume');
    expect(regs.toFrame()).toEqual(frame);
    const apm = R.fromFrame({ ...frame, ax: 0x5300, bx: 0 });
    await b.services.serve(0x15, apm);
    expect(apm.toFrame()).toMatchObject({ ax: 0x0102, bx: 0x504d, flags: 0x0202, ip: 0x7c10 });
  });
});
