import { describe, expect, it } from 'vitest';
import { defineLayout, describeLayout } from './layout.ts';
import { sringHeader } from './ring.ts';
import {
  blkifRequest,
  blkifResponse,
  blkifSegment,
  blkifRequestDiscard,
  blkifRequestIndirect,
  BLKIF_ENTRY_BYTES,
  BLKIF_RING_ENTRIES_PER_PAGE,
  BLKIF_OP,
  BLKIF_RSP,
} from './io/blkif.ts';
import {
  netifTxRequest,
  netifTxResponse,
  netifRxRequest,
  netifRxResponse,
  NETIF_TX_ENTRY_BYTES,
  NETIF_RX_ENTRY_BYTES,
  NETIF_TX_RING_ENTRIES_PER_PAGE,
  NETIF_RX_RING_ENTRIES_PER_PAGE,
} from './io/netif.ts';
import { xenconsInterface } from './io/console.ts';
import { xenstoreDomainInterface } from './io/xenstore.ts';

// Every number here is from the fact sheet (shared/reference/xen-abi.md), printed by C programs
// compiled against Xen 4.17's public headers.
describe("Xen's numbers", () => {
  it('ring header is 64 bytes with the producer/event words first', () => {
    expect(sringHeader.size).toBe(64);
    expect([0, 4, 8, 12, 16].map((_, i) => Object.values(sringHeader.fields)[i]!.offset)).toEqual([0, 4, 8, 12, 16]);
  });

  it('blkif: 8-byte segment, 112-byte request, 16-byte response, 32 entries per page', () => {
    expect(blkifSegment.size).toBe(8);
    expect(blkifRequest.size).toBe(112);
    expect(blkifResponse.size).toBe(16);
    expect(BLKIF_ENTRY_BYTES).toBe(112);
    expect(BLKIF_RING_ENTRIES_PER_PAGE).toBe(32);
    expect(blkifRequest.offsetOf('id')).toBe(8);
    expect(blkifRequest.offsetOf('sectorNumber')).toBe(16);
    expect(blkifRequest.offsetOf('seg', 0)).toBe(24);
    expect(blkifRequest.offsetOf('seg', 10)).toBe(104);
    expect(blkifResponse.offsetOf('operation')).toBe(8);
    expect(blkifResponse.offsetOf('status')).toBe(10);
    expect(blkifRequestDiscard.size).toBe(32);
    expect(blkifRequestDiscard.offsetOf('nrSectors')).toBe(24);
    expect(blkifRequestIndirect.size).toBe(64);
    expect(blkifRequestIndirect.offsetOf('handle')).toBe(24);
    expect(blkifRequestIndirect.offsetOf('indirectGrefs', 7)).toBe(56);
    expect(BLKIF_OP).toMatchObject({ READ: 0, WRITE: 1, FLUSH_DISKCACHE: 3, DISCARD: 5, INDIRECT: 6 });
    expect(BLKIF_RSP).toEqual({ OKAY: 0, ERROR: -1, EOPNOTSUPP: -2 });
  });

  it('netif: tx 12/4 bytes, rx 8/8 bytes, 256 entries each', () => {
    expect(netifTxRequest.size).toBe(12);
    expect(netifTxResponse.size).toBe(4);
    expect(netifRxRequest.size).toBe(8);
    expect(netifRxResponse.size).toBe(8);
    expect(NETIF_TX_ENTRY_BYTES).toBe(12);
    expect(NETIF_RX_ENTRY_BYTES).toBe(8);
    expect(NETIF_TX_RING_ENTRIES_PER_PAGE).toBe(256);
    expect(NETIF_RX_RING_ENTRIES_PER_PAGE).toBe(256);
    expect(netifTxRequest.offsetOf('id')).toBe(8);
    expect(netifTxRequest.offsetOf('size')).toBe(10);
    expect(netifRxRequest.offsetOf('gref')).toBe(4);
    expect(netifRxResponse.offsetOf('status')).toBe(6);
  });

  it('xencons_interface: in[1024], out[2048], indices at 3072..3084', () => {
    expect(xenconsInterface.size).toBe(3088);
    expect(xenconsInterface.offsetOf('out')).toBe(1024);
    expect(xenconsInterface.offsetOf('inCons')).toBe(3072);
    expect(xenconsInterface.offsetOf('inProd')).toBe(3076);
    expect(xenconsInterface.offsetOf('outCons')).toBe(3080);
    expect(xenconsInterface.offsetOf('outProd')).toBe(3084);
  });

  it('xenstore_domain_interface: req/rsp[1024], indices at 2048.., 2076 bytes used', () => {
    expect(xenstoreDomainInterface.size).toBe(2076);
    expect(xenstoreDomainInterface.offsetOf('rsp')).toBe(1024);
    expect(xenstoreDomainInterface.offsetOf('reqCons')).toBe(2048);
    expect(xenstoreDomainInterface.offsetOf('reqProd')).toBe(2052);
    expect(xenstoreDomainInterface.offsetOf('rspCons')).toBe(2056);
    expect(xenstoreDomainInterface.offsetOf('rspProd')).toBe(2060);
    expect(xenstoreDomainInterface.offsetOf('serverFeatures')).toBe(2064);
    expect(xenstoreDomainInterface.offsetOf('connection')).toBe(2068);
    expect(xenstoreDomainInterface.offsetOf('error')).toBe(2072);
  });
});

describe('layout accessors', () => {
  it('round-trips every type little-endian, id64 exactly', () => {
    const l = defineLayout('t', 32, {
      a: { offset: 0, type: 'u8', writer: 'front' },
      b: { offset: 2, type: 'i16', writer: 'front' },
      c: { offset: 4, type: 'u32', writer: 'front' },
      d: { offset: 8, type: 'u64', writer: 'front' },
      e: { offset: 16, type: 'id64', writer: 'front' },
      f: { offset: 24, type: 'i32', writer: 'front' },
    });
    const dv = new DataView(new ArrayBuffer(32));
    l.write(dv, 0, { a: 255, b: -2, c: 0xdeadbeef, d: 2 ** 40 + 5, e: 0xfedcba9876543210n, f: -7 });
    expect(l.read(dv, 0)).toEqual({ a: 255, b: -2, c: 0xdeadbeef, d: 2 ** 40 + 5, e: 0xfedcba9876543210n, f: -7 });
    expect(dv.getUint32(4, true)).toBe(0xdeadbeef);
    expect(dv.getUint8(4)).toBe(0xef);
    l.write(dv, 0, { a: 1 }); // partial write leaves the rest
    expect(l.read(dv, 0).c).toBe(0xdeadbeef);
  });

  it('rejects fields that overlap or overflow the structure', () => {
    expect(() =>
      defineLayout('bad', 8, { a: { offset: 0, type: 'u32', writer: 'front' }, b: { offset: 2, type: 'u16', writer: 'front' } }),
    ).toThrow(/overlap/);
    expect(() => defineLayout('bad', 4, { a: { offset: 2, type: 'u32', writer: 'front' } })).toThrow(/does not fit/);
  });

  it('describes itself for docs and dumps', () => {
    const rows = describeLayout(blkifRequest);
    expect(rows.find((r) => r.field === 'seg[11]')).toMatchObject({ offset: 24, size: 88 });
    expect(rows.find((r) => r.field === 'sectorNumber')).toMatchObject({ offset: 16, size: 8, unit: 'sectors' });
  });
});
