import { describe, expect, it } from 'vitest';
import { guestWithDisk } from '../blkfront/testing/fixture.ts';
import { BootError, initBiosDataArea, loadBootSector, loadFlatKernel, setBootRegisters } from './boot.ts';
import { Int13Service } from './int13.ts';
import { readU16, Registers } from './machine.ts';

describe('boot', () => {
  it('loads a flat kernel at 7C00h and refuses one that does not fit', () => {
    const g = guestWithDisk();
    loadFlatKernel(g.mem, Uint8Array.of(0xea, 1, 2, 3));
    expect([...g.ram.subarray(0x7c00, 0x7c04)]).toEqual([0xea, 1, 2, 3]);
    expect(() => loadFlatKernel(g.mem, new Uint8Array(0x10000), 64)).toThrow(BootError);
    expect(() => loadFlatKernel(g.mem, new Uint8Array(0))).toThrow(/empty/);
  });

  it('boots the disk only with a 55AA signature', async () => {
    const g = guestWithDisk();
    const disk = new Int13Service(g.mem, { drives: [{ drive: 0x80, front: g.front }], bounce: g.bounce });
    await expect(loadBootSector(disk, g.front, g.mem)).rejects.toThrow(/no boot signature/);
    g.backend.disk[510] = 0x55;
    g.backend.disk[511] = 0xaa;
    await loadBootSector(disk, g.front, g.mem);
    expect(g.ram.subarray(0x7c00, 0x7e00)).toEqual(g.backend.disk.subarray(0, 512));
  });

  it('fills the BIOS data area and the hand-off registers', () => {
    const g = guestWithDisk();
    initBiosDataArea(g.mem, { memoryKib: 576, equipment: 0x20, hardDisks: 1 });
    expect([readU16(g.mem, 0x410), readU16(g.mem, 0x413), g.ram[0x475], readU16(g.mem, 0x44a)]).toEqual([0x20, 576, 1, 80]);
    const r = new Registers({ ax: 5, cs: 0x1234 });
    setBootRegisters(r);
    expect([r.getReg('cs'), r.getReg('ip'), r.getReg('dl'), r.getReg('sp'), r.getReg('ax'), r.getFlags() & 0x200]).toEqual([0, 0x7c00, 0x80, 0x7c00, 0, 0x200]);
  });
});
