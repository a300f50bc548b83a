/** The xenstore ring page's byte streams: wrap-around, fullness, and indices written by an enemy. */
import { describe, expect, it } from 'vitest';
import { xenstoreDomainInterface as L } from '@xenlab/ring-buffers';
import { RING_BAD_INDEX, XenstoreRing } from './ring.ts';

function page(): { buf: ArrayBuffer; ring: XenstoreRing; dv: DataView } {
  const buf = new ArrayBuffer(4096);
  return { buf, ring: new XenstoreRing(buf), dv: new DataView(buf) };
}

describe('XenstoreRing', () => {
  it('pins the page layout to xs_wire.h', () => {
    expect([L.fields.req.offset, L.fields.rsp.offset, L.fields.reqCons.offset, L.fields.rspProd.offset, L.fields.error.offset, L.size]).toEqual([
      0, 1024, 2048, 2060, 2072, 2076,
    ]);
  });

  it('carries bytes across the wrap with free-running indices', () => {
    const { ring, dv } = page();
    // Indices near 2^32 must wrap like u32s.
    for (const f of ['reqCons', 'reqProd'] as const) dv.setUint32(L.fields[f].offset, 0xffffff00, true);
    let sent = 0;
    let got: number[] = [];
    for (let round = 0; round < 10; round++) {
      const chunk = Uint8Array.from({ length: 700 }, (_, i) => (sent + i) & 0xff);
      expect(ring.writeRequest(chunk)).toBe(700);
      sent += 700;
      got = got.concat([...ring.readRequest()!]);
    }
    expect(got).toEqual(Array.from({ length: sent }, (_, i) => i & 0xff));
    expect(dv.getUint32(L.fields.reqProd.offset, true)).toBe((0xffffff00 + sent) >>> 0);
  });

  it('stops at 1024 bytes in flight', () => {
    const { ring } = page();
    expect(ring.writeResponse(new Uint8Array(1500))).toBe(1024);
    expect(ring.writeResponse(new Uint8Array(1))).toBe(0);
    expect(ring.readResponse(100)!.length).toBe(100);
    expect(ring.writeResponse(new Uint8Array(200))).toBe(100);
  });

  it('reports inconsistent indices instead of trusting them', () => {
    const { ring, dv } = page();
    dv.setUint32(L.fields.reqProd.offset, 5000, true);
    expect(ring.readRequest()).toBeNull();
    expect(ring.requestBytes()).toBe(RING_BAD_INDEX);
    dv.setUint32(L.fields.rspCons.offset, 10, true);
    expect(ring.writeResponse(new Uint8Array(4))).toBe(RING_BAD_INDEX);
    ring.resetIndices();
    expect(ring.requestBytes()).toBe(0);
    expect(ring.writeResponse(new Uint8Array(4))).toBe(4);
  });
});
