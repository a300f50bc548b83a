import { describe, expect, it } from 'vitest';
import { FlatDmaMemory, MemoryBlockImage } from './memory.ts';
import { PcPlatform } from './pc-platform.ts';
import { NO_MEMORY } from './io-bus.ts';

function platform() {
  const lines: [number, boolean][] = [];
  const serial: number[] = [];
  const p = new PcPlatform({
    image: new MemoryBlockImage(1024),
    dma: new FlatDmaMemory(new Uint8Array(0x10000)),
    memoryBytes: 640 * 1024,
    irq: (n, l) => lines.push([n, l]),
    serialSink: (b) => serial.push(b),
    clock: () => Date.UTC(2026, 0, 1),
  });
  return { p, lines, serial };
}

describe('PcPlatform: the port map and whole-machine snapshots', () => {
  it('maps every device at its documented port', () => {
    const { p } = platform();
    const at = (port: number) => p.bus.deviceAt('pio', port)?.name;
    expect([at(0x1f0), at(0x1f7), at(0x3f6), at(0xc000), at(0xc007)]).toEqual(['ata0', 'ata0', 'ata0-ctl', 'ata0-bmide', 'ata0-bmide']);
    expect([at(0x3f8), at(0x3ff), at(0x60), at(0x64), at(0x70), at(0x71)]).toEqual(['com1', 'com1', 'i8042', 'i8042', 'cmos', 'cmos']);
    expect([at(0x3d4), at(0x3d5), at(0x3da), at(0xb004), at(0xe9)]).toEqual(['vga-ports', 'vga-ports', 'vga-ports', 'pm1a', 'debug-e9']);
    expect([at(0x20), at(0x40), at(0x61), at(0x80)]).toEqual([undefined, undefined, undefined, undefined]); // the hypervisor's
    expect(p.bus.deviceAt('mmio', 0xb8000)?.name).toBe('vga-text');
  });

  it('IRQ numbers: keyboard 1, COM1 4, disk 14', () => {
    const { p, lines } = platform();
    p.kbc.pressKeys([0x1e]);
    p.bus.out(0x3f8 + 4, 1, 0x08);
    p.bus.out(0x3f8 + 1, 1, 0x02);
    p.bus.out(0x1f7, 1, 0xec);
    expect(lines.filter(([, l]) => l).map(([n]) => n)).toEqual([1, 4, 14]);
  });

  it('snapshot → JSON → restore reproduces every device', () => {
    const a = platform();
    a.p.bus.out(0x1f6, 1, 0xe0);
    a.p.bus.out(0x1f2, 1, 2);
    a.p.bus.out(0x1f7, 1, 0x20);
    a.p.bus.in(0x1f0, 2);
    a.p.bus.out(0x3ff, 1, 0x77);
    a.p.kbc.pressKeys([0x30]);
    a.p.bus.out(0x70, 1, 0x40);
    a.p.bus.out(0x71, 1, 0x99);
    a.p.bus.handle({ space: 'mmio', dir: 'write', addr: 0xb8000, size: 2, count: 1, dataIsPtr: false, df: false, data: 0x4e41 }, NO_MEMORY);
    const json = JSON.stringify(a.p.snapshot());
    const b = platform();
    b.p.restore(JSON.parse(json));
    expect(JSON.stringify(b.p.snapshot())).toBe(json);
    expect(b.p.bus.in(0x3ff, 1)).toBe(0x77);
    expect(b.p.bus.in(0x60, 1)).toBe(0x30);
    expect(b.p.vga.screen()[0]).toBe('A');
    expect(() => b.p.restore({ ...JSON.parse(json), version: 2 })).toThrow(/version 2/);
  });

  it('random requests to every device (plain and string, good and bad pointers) never throw', () => {
    const { p } = platform();
    const mem = new FlatDmaMemory(new Uint8Array(0x10000));
    const ports = [0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6, 0xc000, 0xc002, 0xc004, 0xc006, 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x60, 0x64, 0x70, 0x71, 0x3d4, 0x3d5, 0x3da, 0x3c0, 0xb004, 0xb005, 0xe9, 0x1234];
    let seed = 99;
    const rnd = (n: number) => (seed = (seed * 1664525 + 1013904223) >>> 0) % n;
    for (let i = 0; i < 30_000; i++) {
      const mmio = rnd(10) === 0;
      const req = {
        space: mmio ? ('mmio' as const) : ('pio' as const),
        dir: rnd(2) ? ('read' as const) : ('write' as const),
        addr: mmio ? 0xb8000 + rnd(0x9000) : ports[rnd(ports.length)],
        size: ([1, 2, 4] as const)[rnd(3)],
        count: 1 + rnd(64),
        dataIsPtr: rnd(4) === 0,
        df: rnd(2) === 0,
        data: rnd(3) === 0 ? 0xfffff000 + rnd(0x2000) : rnd(0x10000),
      };
      expect(() => p.bus.handle(req, mem)).not.toThrow();
    }
    expect(() => JSON.stringify(p.snapshot())).not.toThrow();
  });
});

