import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  GrantFrame,
  GTF,
  SharedInfoPage,
  encodeFrame,
  gnttab_copy,
  gnttab_map_grant_ref,
  grant_entry_v1,
  ioreq,
  shared_info,
  vcpu_info,
  xen_domctl,
  xen_domctl_getdomaininfo,
  xen_memory_reservation,
  DomId,
  Gfn,
  XenError,
  MAX_FRAME_BYTES,
  WireError,
} from './index.ts';

describe('layouts pin Xen sizes', () => {
  it('matches the fact sheet', () => {
    expect(grant_entry_v1.size).toBe(8);
    expect(gnttab_map_grant_ref.size).toBe(32);
    expect(gnttab_copy.size).toBe(40);
    expect(vcpu_info.size).toBe(64);
    expect(shared_info.size).toBe(3136);
    expect(shared_info.fields.evtchn_mask.offset).toBe(2560);
    expect(ioreq.size).toBe(32);
    expect(xen_domctl.size).toBe(144);
    expect(xen_domctl_getdomaininfo.size).toBe(112);
    expect(xen_domctl_getdomaininfo.fields.cpu_time.offset).toBe(56);
    expect(xen_memory_reservation.fields.domid.offset).toBe(24);
  });
  it('XenError carries -errno', () => {
    expect(new XenError('EINVAL').ret).toBe(-22);
    expect(new XenError('ESRCH').ret).toBe(-3);
  });
});

describe('2-level event channel bits', () => {
  it('set pending raises selector and upcall once; masked ports do not', () => {
    const page = new SharedInfoPage(new ArrayBuffer(4096), 0);
    expect(page.setPending(0, 70)).toBe(true);
    expect(page.upcallPending(0)).toBe(1);
    expect(page.pendingSel(0)).toBe(1n << 1n);
    expect(page.setPending(0, 70)).toBe(false); // already pending
    expect(page.setPending(0, 71)).toBe(false); // selector already set
    page.setMask(5, true);
    expect(page.setPending(0, 5)).toBe(false);
    expect(page.isPending(5)).toBe(true);
    expect(page.scan(0).sort((a, b) => a - b)).toEqual([70, 71]);
    expect(page.upcallPending(0)).toBe(0);
    expect(page.unmask(0, 5)).toBe(true);
    expect(page.scan(0)).toEqual([5]);
  });
  it('uses Xen byte positions (bit p of the u64 bitmap)', () => {
    const buf = new ArrayBuffer(4096);
    const page = new SharedInfoPage(buf, 0);
    page.setPending(3, 64 * 33 + 1);
    const dv = new DataView(buf);
    expect(dv.getBigUint64(2048 + 33 * 8, true)).toBe(2n);
    expect(dv.getBigUint64(3 * 64 + 8, true)).toBe(1n << 33n);
    expect(dv.getUint8(3 * 64)).toBe(1);
  });
});

describe('grant frame', () => {
  it('fills entries in Xen layout and refuses revoking in-use entries', () => {
    const buf = new ArrayBuffer(4096);
    const f = new GrantFrame(buf, 0);
    f.grant(9, DomId(3), Gfn(0x1234), true);
    const dv = new DataView(buf);
    expect(dv.getUint16(72, true)).toBe(GTF.permit_access | GTF.readonly);
    expect(dv.getUint16(74, true)).toBe(3);
    expect(dv.getUint32(76, true)).toBe(0x1234);
    f.casFlags(9, f.flags(9), f.flags(9) | GTF.reading);
    expect(f.endAccess(9)).toBe(false);
    f.casFlags(9, f.flags(9), f.flags(9) & ~GTF.reading);
    expect(f.endAccess(9)).toBe(true);
    expect(f.flags(9)).toBe(0);
  });
});

describe('wire frames', () => {
  it('round-trips split and coalesced frames', () => {
    const a = encodeFrame({ id: 1, hypercall: 'sched_op', cmd: 'yield', arg: null });
    const b = encodeFrame({ id: 2, ok: true, ret: [1, 2, 3] });
    const both = Buffer.concat([a, b]);
    const dec = new FrameDecoder();
    const out = [...dec.push(both.subarray(0, 5)), ...dec.push(both.subarray(5, a.length + 3)), ...dec.push(both.subarray(a.length + 3))];
    expect(out).toEqual([
      { id: 1, hypercall: 'sched_op', cmd: 'yield', arg: null },
      { id: 2, ok: true, ret: [1, 2, 3] },
    ]);
  });
  it('frames stay intact while later ones are encoded (they may wait in a socket queue)', () => {
    const frames = Array.from({ length: 2000 }, (_, i) => encodeFrame({ id: i, ok: true, ret: 'x'.repeat(i % 50) }));
    const dec = new FrameDecoder();
    const out = dec.push(Buffer.concat(frames));
    expect(out).toHaveLength(2000);
    out.forEach((m, i) => expect(m).toEqual({ id: i, ok: true, ret: 'x'.repeat(i % 50) }));
  });
  it('decodes big frames split in small chunks, and decoded bytes are not views of its reused buffer', () => {
    const big = new Uint8Array(100_000).map((_, i) => i & 255);
    const dec = new FrameDecoder();
    const stream = Buffer.concat([encodeFrame({ id: 1, ret: big }), encodeFrame({ id: 2, ret: new Uint8Array([1, 2, 3]) })]);
    const out: unknown[] = [];
    for (let o = 0; o < stream.length; o += 1000) out.push(...dec.push(stream.subarray(o, o + 1000)));
    expect(out).toHaveLength(2);
    const first = (out[0] as { ret: Uint8Array }).ret;
    const small = (out[1] as { ret: Uint8Array }).ret;
    for (let i = 0; i < 50; i++) dec.push(encodeFrame({ id: 3 + i, ret: new Uint8Array(64).fill(0xee) }));
    const [again] = dec.push(encodeFrame({ id: 60, ret: new Uint8Array([4, 5, 6]) })) as { ret: Uint8Array }[];
    for (let i = 0; i < 50; i++) dec.push(encodeFrame({ id: 61 + i, ret: new Uint8Array(64).fill(0xee) }));
    expect([...small]).toEqual([1, 2, 3]);
    expect([...again!.ret]).toEqual([4, 5, 6]);
    expect(Buffer.compare(first, big)).toBe(0);
  });
  it('rejects oversize frames', () => {
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(MAX_FRAME_BYTES + 1);
    expect(() => new FrameDecoder().push(hdr)).toThrow(WireError);
  });
});

describe('WireConnection', () => {
  it('times out requests that get no reply, and fails pending ones when the peer closes', async () => {
    const { createServer } = await import('node:net');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { WireConnection } = await import('./wire.ts');
    const dir = mkdtempSync(join(tmpdir(), 'xenlab-wire-'));
    const path = join(dir, 's');
    const sockets: import('node:net').Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(path, () => r()));
    try {
      const c = await WireConnection.connect(path, 100);
      const t0 = Date.now();
      await expect(c.request({ hello: 1 })).rejects.toThrow(/no reply/);
      expect(Date.now() - t0).toBeLessThan(2000);
      const p = c.request({ again: 1 });
      for (const s of sockets) s.destroy();
      await expect(p).rejects.toThrow();
      c.close();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('several consumers of one domain (dom0 processes)', () => {
  it('markPending reports newly-pending even when the upcall is already due; consume takes only its own ports', async () => {
    const { MarkResult } = await import('./shared-info.ts');
    const page = new SharedInfoPage(new ArrayBuffer(4096), 0);
    expect(page.markPending(0, 3)).toBe(MarkResult.upcall);
    expect(page.markPending(0, 4)).toBe(MarkResult.newly); // selector already set: still a new event
    expect(page.markPending(0, 4)).toBe(MarkResult.already);
    expect(page.consume([4, 9])).toEqual([4]);
    expect(page.isPending(3)).toBe(true); // someone else's port untouched
    page.setMask(3, true);
    expect(page.consume([3])).toEqual([]);
    expect(page.isPending(3)).toBe(true);
  });
});
