import { describe, expect, it } from 'vitest';
import { DOMID_SELF, GNTCOPY, GNTMAP, GNTST, GTF, GrantFrame, Gfn, type DomId } from '@xenlab/xen-public';
import type { Domain } from './domain.ts';
import type { Hypervisor } from './hypervisor.ts';
import { populatePhysmap } from './mm/memory.ts';
import { makeGuest, makeHost } from './test-helpers.ts';

function setup() {
  const { hv, dom0 } = makeHost(512);
  const guest = makeGuest(hv);
  populatePhysmap(hv, guest, { domid: DOMID_SELF, extent_start: [0, 1, 2, 3] });
  populatePhysmap(hv, dom0, { domid: DOMID_SELF, extent_start: [0, 1] });
  const other = makeGuest(hv);
  return { hv, dom0, guest, other };
}

/** The guest's view of its own grant table, as a frontend fills it. */
function table(hv: Hypervisor, d: Domain): GrantFrame {
  return new GrantFrame(hv.mem.buffer, hv.mem.addr(d.gnttab.frames[0]!));
}
const grant = (hv: Hypervisor, d: Domain, ref: number, to: DomId, gfn: number, ro = false) =>
  table(hv, d).grant(ref, to, Gfn(gfn), ro);

describe('grant tables', () => {
  it('setup_table grows the table up to its limit; query_size reports it', () => {
    const { hv, guest, other, dom0 } = setup();
    expect(hv.gnttab.querySize(guest, DOMID_SELF)).toEqual({ nr_frames: 1, max_nr_frames: 64, status: GNTST.okay });
    const r = hv.gnttab.setupTable(guest, DOMID_SELF, 4);
    expect(r.status).toBe(GNTST.okay);
    expect(r.frame_list).toHaveLength(4);
    for (const mfn of r.frame_list) expect(hv.frames.ownerOf(mfn as never)).toBe(guest.domid);
    expect(hv.gnttab.setupTable(guest, DOMID_SELF, 65).status).toBe(GNTST.general_error);
    expect(hv.gnttab.setupTable(guest, other.domid, 1).status).toBe(GNTST.permission_denied);
    expect(hv.gnttab.setupTable(dom0, 4242, 1).status).toBe(GNTST.bad_domain);
    expect(hv.gnttab.querySize(dom0, guest.domid).nr_frames).toBe(4);
  });

  it('map sets GTF_reading/writing, revoke is refused while mapped, unmap clears', () => {
    const { hv, guest, dom0 } = setup();
    grant(hv, guest, 8, dom0.domid, 2);
    hv.mem.frame(guest.p2m.lookup(Gfn(2))!).fill(0x5a);
    const [m] = [hv.gnttab.mapOne(dom0, { flags: GNTMAP.host_map, ref: 8, dom: guest.domid })];
    expect(m!.status).toBe(GNTST.okay);
    expect(m!.dev_bus_addr).toBe(hv.mem.addr(guest.p2m.lookup(Gfn(2))!));
    expect(hv.mem.u8[m!.dev_bus_addr]).toBe(0x5a);
    const t = table(hv, guest);
    expect(t.flags(8) & (GTF.reading | GTF.writing)).toBe(GTF.reading | GTF.writing);
    expect(t.endAccess(8)).toBe(false); // still mapped: revoke refused
    // a second, read-only mapping keeps GTF_writing from the first
    const m2 = hv.gnttab.mapOne(dom0, { flags: GNTMAP.host_map | GNTMAP.readonly, ref: 8, dom: guest.domid });
    expect(m2.status).toBe(GNTST.okay);
    expect(hv.gnttab.unmapOne(dom0, m!.handle)).toBe(GNTST.okay);
    expect(t.flags(8) & (GTF.reading | GTF.writing)).toBe(GTF.reading);
    expect(hv.gnttab.unmapOne(dom0, m2.handle)).toBe(GNTST.okay);
    expect(t.flags(8) & (GTF.reading | GTF.writing)).toBe(0);
    expect(t.endAccess(8)).toBe(true);
    expect(hv.gnttab.unmapOne(dom0, m2.handle)).toBe(GNTST.bad_handle);
  });

  it('refusal cases give Xen statuses per element', () => {
    const { hv, guest, dom0, other } = setup();
    grant(hv, guest, 9, dom0.domid, 1, true);
    grant(hv, guest, 10, dom0.domid, 77); // gfn not populated
    const map = (d: Domain, flags: number, ref: number, dom: number) => hv.gnttab.mapOne(d, { flags, ref, dom }).status;
    expect(map(dom0, GNTMAP.host_map, 9, guest.domid)).toBe(GNTST.general_error); // write map of r/o grant
    expect(map(dom0, GNTMAP.host_map | GNTMAP.readonly, 9, guest.domid)).toBe(GNTST.okay);
    expect(map(other, GNTMAP.host_map | GNTMAP.readonly, 9, guest.domid)).toBe(GNTST.general_error); // not granted to other
    expect(map(dom0, GNTMAP.host_map, 11, guest.domid)).toBe(GNTST.general_error); // invalid entry
    expect(map(dom0, GNTMAP.host_map, 1 << 20, guest.domid)).toBe(GNTST.bad_gntref);
    expect(map(dom0, GNTMAP.host_map, -1, guest.domid)).toBe(GNTST.bad_gntref);
    expect(map(dom0, 0, 9, guest.domid)).toBe(GNTST.bad_gntref); // neither host_map nor device_map
    expect(map(dom0, GNTMAP.host_map, 9, 3000)).toBe(GNTST.bad_domain);
    expect(map(dom0, GNTMAP.host_map, 10, guest.domid)).toBe(GNTST.bad_page);
    expect(table(hv, guest).flags(10) & (GTF.reading | GTF.writing)).toBe(0);
    expect(hv.gnttab.unmapOne(dom0, 12345)).toBe(GNTST.bad_handle);
  });

  it('copy through grants in both directions, with bounds and permission checks', () => {
    const { hv, guest, dom0, other } = setup();
    grant(hv, guest, 8, dom0.domid, 0);
    grant(hv, guest, 9, dom0.domid, 1, true);
    const src = hv.mem.frame(dom0.p2m.lookup(Gfn(0))!);
    src.set([1, 2, 3, 4], 100);
    const copy = (d: Domain, op: Parameters<typeof hv.gnttab.copyOne>[1]) => hv.gnttab.copyOne(d, op);
    // dom0 gmfn 0 -> guest gref 8 (writable)
    expect(copy(dom0, { source: { gmfn: 0, domid: DOMID_SELF, offset: 100 }, dest: { ref: 8, domid: guest.domid, offset: 10 }, len: 4, flags: GNTCOPY.dest_gref })).toBe(GNTST.okay);
    expect([...hv.mem.frame(guest.p2m.lookup(Gfn(0))!).subarray(10, 14)]).toEqual([1, 2, 3, 4]);
    // flags were transient
    expect(table(hv, guest).flags(8) & (GTF.reading | GTF.writing)).toBe(0);
    // write into a read-only grant: refused
    expect(copy(dom0, { source: { gmfn: 0, domid: DOMID_SELF, offset: 0 }, dest: { ref: 9, domid: guest.domid, offset: 0 }, len: 4, flags: GNTCOPY.dest_gref })).toBe(GNTST.general_error);
    // crossing a page boundary
    expect(copy(dom0, { source: { ref: 9, domid: guest.domid, offset: 4090 }, dest: { gmfn: 1, domid: DOMID_SELF, offset: 0 }, len: 10, flags: GNTCOPY.source_gref })).toBe(GNTST.bad_copy_arg);
    // by-frame access to another domain is not allowed
    expect(copy(dom0, { source: { gmfn: 0, domid: guest.domid, offset: 0 }, dest: { gmfn: 1, domid: DOMID_SELF, offset: 0 }, len: 4, flags: 0 })).toBe(GNTST.permission_denied);
    // not granted to `other`
    populatePhysmap(hv, other, { domid: DOMID_SELF, extent_start: [0] });
    expect(copy(other, { source: { ref: 9, domid: guest.domid, offset: 0 }, dest: { gmfn: 0, domid: DOMID_SELF, offset: 0 }, len: 4, flags: GNTCOPY.source_gref })).toBe(GNTST.general_error);
    expect(copy(dom0, { source: { ref: 9, domid: guest.domid, offset: 0 }, dest: { gmfn: 55, domid: DOMID_SELF, offset: 0 }, len: 4, flags: GNTCOPY.source_gref })).toBe(GNTST.bad_page);
  });

  it('a mapped frame outlives its granter; the mapper dying releases its mappings', () => {
    const { hv, guest, dom0 } = setup();
    grant(hv, guest, 8, dom0.domid, 3);
    const mfn = guest.p2m.lookup(Gfn(3))!;
    const m = hv.gnttab.mapOne(dom0, { flags: GNTMAP.host_map, ref: 8, dom: guest.domid });
    hv.destroyDomain(guest);
    expect(hv.frames.isInUse(mfn)).toBe(true);
    expect(hv.domains.get(guest.domid)?.dying).toBe('dead');
    expect(hv.gnttab.unmapOne(dom0, m.handle)).toBe(GNTST.okay);
    expect(hv.frames.isInUse(mfn)).toBe(false);
    expect(hv.domains.has(guest.domid)).toBe(false);

    const g2 = makeGuest(hv);
    populatePhysmap(hv, g2, { domid: DOMID_SELF, extent_start: [0] });
    grant(hv, g2, 8, dom0.domid, 0);
    const b = makeGuest(hv);
    grant(hv, g2, 9, b.domid, 0);
    hv.gnttab.mapOne(b, { flags: GNTMAP.host_map, ref: 9, dom: g2.domid });
    expect(table(hv, g2).flags(9) & GTF.writing).toBeTruthy();
    hv.processDied(b, 'killed');
    expect(table(hv, g2).flags(9) & (GTF.reading | GTF.writing)).toBe(0);
  });
});

describe('grant-mapped frames and the balloon', () => {
  it('decrease_reservation of a page another domain maps keeps the frame until the unmap', async () => {
    const { decreaseReservation } = await import('./mm/memory.ts');
    const { hv, guest, dom0 } = setup();
    grant(hv, guest, 8, dom0.domid, 2);
    const mfn = guest.p2m.lookup(Gfn(2))!;
    const m = hv.gnttab.mapOne(dom0, { flags: GNTMAP.host_map, ref: 8, dom: guest.domid });
    const free = hv.frames.freeFrames;
    expect(decreaseReservation(hv, guest, { domid: DOMID_SELF, extent_start: [2] }).nr_done).toBe(1);
    expect(guest.totPages).toBe(3);
    expect(hv.frames.freeFrames).toBe(free); // still mapped by dom0
    expect(hv.frames.isInUse(mfn)).toBe(true);
    expect(hv.gnttab.unmapOne(dom0, m.handle)).toBe(GNTST.okay);
    expect(hv.frames.freeFrames).toBe(free + 1);
  });
});
