import { describe, expect, it } from 'vitest';
import { DOMID_SELF, XenError } from '@xenlab/xen-public';
import { makeGuest, makeHost } from '../test-helpers.ts';
import { decreaseReservation, populatePhysmap } from './memory.ts';

describe('memory_op', () => {
  it('populates up to max_pages and returns MFNs; stops at the first failure', () => {
    const { hv } = makeHost(256);
    const d = makeGuest(hv, {}, 4);
    const r = populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2, 3, 4, 5] });
    expect(r.nr_done).toBe(4);
    expect(r.extent_start).toHaveLength(4);
    expect(d.totPages).toBe(4);
    expect(hv.frames.ownerOf(d.p2m.lookup(2 as never)!)).toBe(d.domid);
    // populating an already-populated gfn stops the batch
    d.maxPages = 10;
    expect(populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [3, 6] }).nr_done).toBe(0);
  });

  it('handles extents of order > 0 and rejects misaligned ones', () => {
    const { hv } = makeHost(256);
    const d = makeGuest(hv, {}, 16);
    expect(populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [8, 3], extent_order: 2 }).nr_done).toBe(1);
    expect(d.totPages).toBe(4);
    expect(() => populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0], extent_order: 40 })).toThrow(XenError);
  });

  it('decrease_reservation gives frames back to the pool', () => {
    const { hv } = makeHost(256);
    const d = makeGuest(hv, {}, 8);
    populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: [0, 1, 2] });
    const free = hv.frames.freeFrames;
    expect(decreaseReservation(hv, d, { domid: DOMID_SELF, extent_start: [1, 7] }).nr_done).toBe(1);
    expect(hv.frames.freeFrames).toBe(free + 1);
    expect(d.totPages).toBe(2);
  });

  it('another domain: privileged only, ESRCH for none', () => {
    const { hv, dom0 } = makeHost(256);
    const a = makeGuest(hv);
    const b = makeGuest(hv);
    expect(() => populatePhysmap(hv, a, { domid: b.domid, extent_start: [0] })).toThrow(/EPERM/);
    expect(() => populatePhysmap(hv, dom0, { domid: 999, extent_start: [0] })).toThrow(/ESRCH/);
    expect(populatePhysmap(hv, dom0, { domid: b.domid, extent_start: [0] }).nr_done).toBe(1);
  });

  it('stops when machine memory runs out', () => {
    const { hv } = makeHost(16);
    const d = makeGuest(hv, {}, 100);
    const before = hv.frames.freeFrames;
    const r = populatePhysmap(hv, d, { domid: DOMID_SELF, extent_start: Array.from({ length: 20 }, (_, i) => i) });
    expect(r.nr_done).toBe(before);
    expect(hv.frames.freeFrames).toBe(0);
  });
});
