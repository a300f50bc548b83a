import { describe, expect, it } from 'vitest';
import { DomId, DOMID_INVALID, Gfn, XEN_PAGE_SIZE } from '@xenlab/xen-public';
import { FrameKind, FrameTable } from './frame-table.ts';
import { MachineMemory } from './machine-memory.ts';
import { P2m } from './p2m.ts';

describe('frame table', () => {
  const make = (n = 8) => new FrameTable(new MachineMemory(new ArrayBuffer(n * XEN_PAGE_SIZE)));

  it('allocates lowest frames first, records owner and kind, exhausts cleanly', () => {
    const ft = make(3);
    const a = ft.alloc(DomId(1), FrameKind.ram)!;
    const b = ft.alloc(DomId(2), FrameKind.shared_info)!;
    expect([a, b]).toEqual([0, 1]);
    expect(ft.ownerOf(b)).toBe(2);
    expect(ft.kindOf(b)).toBe(FrameKind.shared_info);
    expect(ft.freeFrames).toBe(1);
    ft.alloc(DomId(1), FrameKind.ram);
    expect(ft.alloc(DomId(1), FrameKind.ram)).toBeUndefined();
  });

  it('a released frame stays alive while mapped, then returns scrubbed', () => {
    const ft = make(2);
    const freed: number[] = [];
    ft.onFreed = (ev) => freed.push(ev.mfn);
    const m = ft.alloc(DomId(1), FrameKind.ram)!;
    ft.mem.frame(m).fill(0xaa);
    expect(ft.get(m)).toBe(true); // someone maps it
    ft.release(m); // owner gives it up
    expect(ft.isInUse(m)).toBe(true);
    expect(ft.isAllocated(m)).toBe(false);
    expect(freed).toEqual([]);
    ft.put(m); // last mapping gone
    expect(freed).toEqual([m]);
    expect(ft.ownerOf(m)).toBe(DOMID_INVALID);
    expect(ft.mem.frame(m).every((x) => x === 0)).toBe(true);
    expect(ft.freeFrames).toBe(2);
    expect(ft.get(m)).toBe(false); // free frames cannot be referenced
  });

  it('release is idempotent; put on a free frame is a bug', () => {
    const ft = make(1);
    const m = ft.alloc(DomId(1), FrameKind.ram)!;
    ft.release(m);
    ft.release(m);
    expect(ft.freeFrames).toBe(1);
    expect(() => ft.put(m)).toThrow();
  });

  it('tracks m2p', () => {
    const ft = make(1);
    const m = ft.alloc(DomId(1), FrameKind.ram)!;
    ft.setGfn(m, Gfn(42));
    expect(ft.gfnOf(m)).toBe(42);
    ft.release(m);
    expect(ft.gfnOf(m)).toBeUndefined();
  });
});

describe('p2m', () => {
  it('maps, removes and tracks the maximum gpfn', () => {
    const p = new P2m();
    p.set(Gfn(5), 9 as never);
    p.set(Gfn(2), 3 as never);
    expect(p.lookup(Gfn(5))).toBe(9);
    expect(p.maximumGpfn).toBe(5);
    expect(p.remove(Gfn(5))).toBe(9);
    expect(p.lookup(Gfn(5))).toBeUndefined();
    expect(p.size).toBe(1);
  });
});
