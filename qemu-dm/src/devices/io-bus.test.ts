import { describe, expect, it } from 'vitest';
import { IoBus } from './io-bus.ts';
import { FlatDmaMemory, MemoryBlockImage } from './memory.ts';
import { PcPlatform } from './pc-platform.ts';
import type { AccessSize, IoDevice } from './types.ts';

/** A device that records accesses and returns offset + 0x10 on reads. */
function recorder(name: string): IoDevice & { log: string[] } {
  const log: string[] = [];
  return {
    name,
    log,
    read: (o: number, s: AccessSize) => {
      log.push(`r${o}/${s}`);
      return o + 0x10;
    },
    write: (o: number, s: AccessSize, v: number) => {
      log.push(`w${o}/${s}=${v.toString(16)}`);
    },
    snapshot: () => null,
    restore: () => {},
  };
}

describe('IoBus (the ioreq dispatch table)', () => {
  it('routes ports to devices with offsets; unassigned ports float high and swallow writes', () => {
    const bus = new IoBus();
    const a = recorder('a');
    bus.mapPorts(0x100, 4, a);
    expect(bus.in(0x102, 1)).toBe(0x12);
    bus.out(0x103, 2, 0xbeef);
    expect(a.log).toEqual(['r2/1', 'w3/2=beef']);
    expect(bus.in(0x200, 1)).toBe(0xff);
    expect(bus.in(0x200, 2)).toBe(0xffff);
    bus.out(0x200, 1, 1);
    expect(bus.deviceStats()).toMatchObject({ a: { exits: 2 }, unassigned: { exits: 3 } });
    expect(() => bus.mapPorts(0x103, 2, recorder('b'))).toThrow(/already mapped to a/);
  });

  it('rep ins/outs: one request, count elements, buffer stepping up or down (DF)', () => {
    const bus = new IoBus();
    const a = recorder('a');
    bus.mapPorts(0x100, 4, a);
    const ram = new Uint8Array(64);
    const mem = new FlatDmaMemory(ram);
    expect(bus.handle({ space: 'pio', dir: 'read', addr: 0x101, size: 2, count: 3, dataIsPtr: true, df: false, data: 8 }, mem)).toBe(3);
    expect(Array.from(ram.subarray(8, 14))).toEqual([0x11, 0, 0x11, 0, 0x11, 0]);
    ram.set([1, 2, 3], 20);
    bus.handle({ space: 'pio', dir: 'write', addr: 0x100, size: 1, count: 3, dataIsPtr: true, df: true, data: 22 }, mem);
    expect(a.log.slice(-3)).toEqual(['w0/1=3', 'w0/1=2', 'w0/1=1']);
    const s = bus.portStats()['pio:100'];
    expect(s).toEqual({ exits: 1, elements: 3, reads: 0, writes: 1 });
  });

  it('a string request whose buffer is outside RAM moves nothing and is counted, never throws', () => {
    const bus = new IoBus();
    bus.mapPorts(0x100, 1, recorder('a'));
    const mem = new FlatDmaMemory(new Uint8Array(16));
    expect(bus.handle({ space: 'pio', dir: 'read', addr: 0x100, size: 2, count: 100, dataIsPtr: true, df: false, data: 0 }, mem)).toBe(100);
    bus.handle({ space: 'pio', dir: 'write', addr: 0x100, size: 2, count: 100, dataIsPtr: true, df: false, data: 1e9 }, mem);
    expect(bus.badPointer).toBe(2);
  });

  it('MMIO windows: offsets from the window base, overlaps refused, unassigned reads all ones', () => {
    const bus = new IoBus();
    const v = recorder('v');
    bus.mapMmio(0xb8000, 0x8000, v);
    const mem = new FlatDmaMemory(new Uint8Array(16));
    expect(bus.handle({ space: 'mmio', dir: 'read', addr: 0xb8010, size: 2, count: 1, dataIsPtr: false, df: false, data: 0 }, mem)).toBe(0x20);
    expect(bus.handle({ space: 'mmio', dir: 'read', addr: 0xa0000, size: 1, count: 1, dataIsPtr: false, df: false, data: 0 }, mem)).toBe(0xff);
    expect(() => bus.mapMmio(0xbf000, 0x2000, recorder('w'))).toThrow(/overlaps v/);
    expect(bus.deviceAt('mmio', 0xbffff)?.name).toBe('v');
  });
});

describe('IoBus.claimedRanges (what qemu-dm claims from the hypervisor)', () => {
  it('merges adjacent ports of one device, keeps neighbours of other devices apart, lists MMIO windows', () => {
    const p = new PcPlatform({ image: new MemoryBlockImage(16), dma: new FlatDmaMemory(new Uint8Array(4096)), memoryBytes: 0xa0000, irq: () => {} });
    const r = p.bus.claimedRanges().map((x) => `${x.space}:${x.start.toString(16)}-${x.end.toString(16)}:${x.device}`);
    expect(r).toContain('pio:1f0-1f7:ata0');
    expect(r).toContain('pio:3f8-3ff:com1');
    expect(r).toContain('pio:70-71:cmos');
    expect(r).toContain('pio:60-60:i8042');
    expect(r).toContain('pio:64-64:i8042');
    expect(r).toContain('mmio:b8000-bffff:vga-text');
    // nothing the hypervisor emulates itself (PIC, PIT) is claimed
    for (const port of [0x20, 0x21, 0x40, 0x43, 0xa0]) expect(p.bus.claimedRanges().some((x) => x.space === 'pio' && x.start <= port && port <= x.end)).toBe(false);
  });
});
