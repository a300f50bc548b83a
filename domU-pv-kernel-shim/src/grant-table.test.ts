import { DomId, Gfn, GrantFrame, GTF } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { GuestGrantTable } from './grant-table.ts';

describe('GuestGrantTable', () => {
  it('fills v1 entries after the reserved ones and revokes them', () => {
    const frame = new GrantFrame(new ArrayBuffer(4096), 0);
    const t = new GuestGrantTable([frame]);
    const ref = t.grantAccess(DomId(0), Gfn(0x1234), true)!;
    expect(ref).toBe(8);
    expect([frame.flags(8), frame.domid(8), frame.frame(8)]).toEqual([GTF.permit_access | GTF.readonly, 0, 0x1234]);
    expect(t.endAccess(ref)).toBe(true);
    expect(frame.flags(8)).toBe(0);
    expect(t.grantAccess(DomId(0), Gfn(1), false)).toBe(8);
  });

  it('does not revoke an entry the hypervisor has pinned, and retires it later', () => {
    const frame = new GrantFrame(new ArrayBuffer(4096), 0);
    const t = new GuestGrantTable([frame], 510);
    const a = t.grantAccess(DomId(0), Gfn(1), false)!;
    const b = t.grantAccess(DomId(0), Gfn(2), false)!;
    expect(t.grantAccess(DomId(0), Gfn(3), false)).toBeNull();
    frame.casFlags(a, GTF.permit_access, GTF.permit_access | GTF.writing);
    expect(t.endAccess(a)).toBe(false);
    expect(t.endAccess(b)).toBe(true);
    expect(t.grantAccess(DomId(0), Gfn(4), false)).toBe(b);
    expect(t.grantAccess(DomId(0), Gfn(5), false)).toBeNull();
    frame.casFlags(a, GTF.permit_access | GTF.writing, GTF.permit_access);
    expect(t.grantAccess(DomId(0), Gfn(6), false)).toBe(a);
    expect(t.counters).toMatchObject({ endBusy: 1, exhausted: 2 });
  });
});
