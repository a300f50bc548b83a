import { BLKIF_OP, BLKIF_RSP, blkifResponse } from '@xenlab/ring-buffers';
import { Gfn, GTF } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { BlkfrontError } from './blkfront.ts';
import { guestWithDisk } from './testing/fixture.ts';

/** Reads 14 sectors from `lba` into sectors 1-6 of frame 20h and all of frame 21h, and checks them against the disk. */
async function readIntoFrames20h21h(g: ReturnType<typeof guestWithDisk>, lba: number): Promise<void> {
  const p = g.front.queueRw('read', lba, [{ gfn: Gfn(0x20), firstSect: 1, lastSect: 6 }, { gfn: Gfn(0x21), firstSect: 0, lastSect: 7 }]);
  g.front.push();
  expect(await p).toBe(BLKIF_RSP.OKAY);
  expect(g.ram.subarray(0x20000 + 512, 0x20000 + 3584)).toEqual(g.backend.disk.subarray(lba * 512, (lba + 6) * 512));
  expect(g.ram.subarray(0x21000, 0x22000)).toEqual(g.backend.disk.subarray((lba + 6) * 512, (lba + 14) * 512));
}

describe('blkfront', () => {
  it('reads into granted pages and ends the grants afterwards', async () => {
    const g = guestWithDisk();
    const p = g.front.queueRw('read', 10, [{ gfn: Gfn(0x20), firstSect: 2, lastSect: 7 }, { gfn: Gfn(0x21), firstSect: 0, lastSect: 1 }]);
    g.front.push();
    expect(await p).toBe(BLKIF_RSP.OKAY);
    expect(g.ram.subarray(0x20000 + 1024, 0x21000)).toEqual(g.backend.disk.subarray(10 * 512, 16 * 512));
    expect(g.ram.subarray(0x21000, 0x21000 + 1024)).toEqual(g.backend.disk.subarray(16 * 512, 18 * 512));
    expect(g.ram.subarray(0x20000, 0x20000 + 1024).every((b) => b === 0)).toBe(true);
    expect(g.grants.counters).toMatchObject({ granted: 2, ended: 2 });
    expect(g.frame.flags(8)).toBe(0);
    expect(g.front.counters).toMatchObject({ requests: 1, responses: 1, segments: 2, bytes: 4096, notificationsSent: 1 });
  });

  it('grants pages read-only for writes', async () => {
    const g = guestWithDisk();
    g.pages[0x30]!.fill(0x42);
    let flagsSeen = -1;
    const kick = g.backend.kick.bind(g.backend);
    g.backend.kick = () => {
      flagsSeen = g.frame.flags(8);
      kick();
    };
    const p = g.front.queueRw('write', 0, [{ gfn: Gfn(0x30), firstSect: 0, lastSect: 7 }]);
    g.front.push();
    expect(await p).toBe(0);
    expect(flagsSeen).toBe(GTF.permit_access | GTF.readonly);
    expect(g.backend.disk.subarray(0, 4096).every((b) => b === 0x42)).toBe(true);
  });

  it('batches: many requests, one push, one kick; the ring overflows into a backlog', async () => {
    const g = guestWithDisk();
    const ps = Array.from({ length: 40 }, (_, i) => g.front.queueRw('read', i, [{ gfn: Gfn(0x40), firstSect: 0, lastSect: 0 }]));
    expect(g.front.counters.backlogged).toBe(8);
    g.front.push();
    expect(await Promise.all(ps)).toEqual(new Array(40).fill(0));
    expect(g.front.counters.notificationsSent).toBeLessThanOrEqual(2);
    expect(g.backend.seen.map((s) => s.sector)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(g.grants.counters.granted).toBe(g.grants.counters.ended);
  });

  it('flush and discard requests; error statuses are passed on', async () => {
    const g = guestWithDisk();
    g.backend.failNext = [0, BLKIF_RSP.ERROR];
    const f = g.front.queueFlush();
    const d = g.front.queueDiscard(8, 16);
    g.front.push();
    expect(await Promise.all([f, d])).toEqual([0, BLKIF_RSP.ERROR]);
    expect(g.backend.seen.map((s) => s.operation)).toEqual([BLKIF_OP.FLUSH_DISKCACHE, BLKIF_OP.DISCARD]);
    expect(g.front.counters.errors).toBe(1);
  });

  it('refuses malformed requests from its caller', () => {
    const g = guestWithDisk();
    expect(() => g.front.queueRw('read', 0, [])).toThrow(BlkfrontError);
    expect(() => g.front.queueRw('read', 0, Array.from({ length: 12 }, () => ({ gfn: Gfn(1), firstSect: 0, lastSect: 0 })))).toThrow(/12 segments/);
    expect(() => g.front.queueRw('read', 0, [{ gfn: Gfn(1), firstSect: 3, lastSect: 8 }])).toThrow(/not within a page/);
  });

  it('ignores responses for ids it never issued and fails outstanding requests on disconnect', async () => {
    const g = guestWithDisk();
    const p = g.front.queueRw('read', 0, [{ gfn: Gfn(0x50), firstSect: 0, lastSect: 0 }]);
    // A hostile backend answers an unknown id first (without serving the real request).
    blkifResponse.write(g.ring.view, g.ring.slotOffset(0), { id: 999n, operation: 0, status: 0 });
    new Uint32Array(g.ram.buffer, 0x9f000, 4)[2] = 1; // rsp_prod = 1
    expect(g.front.handleResponses()).toBe(1);
    expect(g.front.counters.bogusResponses).toBe(1);
    g.front.failAll();
    expect(await p).toBe(BLKIF_RSP.ERROR);
    expect(g.grants.counters.ended).toBe(1);
  });

  it('a backend publishing more responses than requests breaks the ring; nothing throws', async () => {
    const g = guestWithDisk();
    const p = g.front.queueRw('read', 0, [{ gfn: Gfn(0x50), firstSect: 0, lastSect: 0 }]);
    new Uint32Array(g.ram.buffer, 0x9f000, 4)[2] = 5; // rsp_prod = 5 with one request outstanding
    expect(g.front.handleResponses()).toBe(0);
    expect(g.front.broken).toContain('5 responses for 1 outstanding');
    g.front.failAll();
    expect(await p).toBe(BLKIF_RSP.ERROR);
  });

  describe('persistent grants', () => {
    it('grants pool pages once and reuses the same grefs; data is copied in and out of the pool', async () => {
      const g = guestWithDisk(2048, { persistent: true });
      expect(g.front.isPersistent).toBe(true);
      const seen = new Set<number>();
      for (let i = 0; i < 6; i++) {
        await readIntoFrames20h21h(g, i * 8);
        for (let r = 8; r < 64; r++) if (g.frame.flags(r) !== 0) seen.add(r);
      }
      // Sectors outside a segment's range are never written into the caller's page.
      expect(g.ram.subarray(0x20000, 0x20000 + 512).every((b) => b === 0)).toBe(true);
      expect(g.grants.counters).toMatchObject({ granted: 2, ended: 0 });
      expect(seen.size).toBe(2);
      expect(g.front.counters).toMatchObject({ persistentGrants: 2, persistentSegments: 12 });
      // Pool pages are granted writable (they carry READs and WRITEs), to the backend.
      for (const r of seen) expect(g.frame.flags(r)).toBe(GTF.permit_access);
      g.pages[0x30]!.fill(0x42);
      const w = g.front.queueRw('write', 100, [{ gfn: Gfn(0x30), firstSect: 0, lastSect: 7 }]);
      g.front.push();
      expect(await w).toBe(0);
      expect(g.backend.disk.subarray(100 * 512, 108 * 512).every((b) => b === 0x42)).toBe(true);
      expect(g.grants.counters.granted).toBe(2);
    });

    it('requests wait for free pool pages; all complete; releasePersistent ends the grants', async () => {
      const g = guestWithDisk(2048, { persistent: true }, 11);
      const segs = (base: number) => Array.from({ length: 11 }, (_, i) => ({ gfn: Gfn(base + i), firstSect: 0, lastSect: 7 }));
      const ps = [0x20, 0x30, 0x40].map((b, k) => g.front.queueRw('read', k * 88, segs(b)));
      expect(g.front.counters.backlogged).toBe(2);
      g.front.push();
      expect(await Promise.all(ps)).toEqual([0, 0, 0]);
      for (const [k, b] of [0x20, 0x30, 0x40].entries()) expect(g.ram.subarray(b * 4096, (b + 11) * 4096)).toEqual(g.backend.disk.subarray(k * 88 * 512, (k + 1) * 88 * 512));
      expect(g.grants.counters.granted).toBe(11);
      g.front.releasePersistent();
      expect(g.grants.counters.ended).toBe(11);
      for (let r = 8; r < 19; r++) expect(g.frame.flags(r)).toBe(0);
    });

    it('an error response or a failed connection gives the pool pages back without copying into the caller', async () => {
      const g = guestWithDisk(2048, { persistent: true }, 11);
      g.backend.failNext = [BLKIF_RSP.ERROR];
      g.pages[0x20]!.fill(0x77);
      const p = g.front.queueRw('read', 0, [{ gfn: Gfn(0x20), firstSect: 0, lastSect: 7 }]);
      g.front.push();
      expect(await p).toBe(BLKIF_RSP.ERROR);
      expect(g.pages[0x20]!.every((b) => b === 0x77)).toBe(true);
      const q = g.front.queueRw('read', 0, [{ gfn: Gfn(0x99), firstSect: 0, lastSect: 7 }]);
      g.front.failAll();
      expect(await q).toBe(BLKIF_RSP.ERROR);
      // All 11 pool pages are free again: a full request can be placed.
      const r = g.front.queueRw('read', 0, Array.from({ length: 11 }, (_, i) => ({ gfn: Gfn(0x30 + i), firstSect: 0, lastSect: 7 })));
      expect(g.front.counters.backlogged).toBe(0);
      g.front.push();
      expect(await r).toBe(0);
    });

    it('direct: the caller\'s own frames are granted once, in place, and named in requests; nothing is copied', async () => {
      const g = guestWithDisk(2048, { persistent: true }, 11, 2);
      for (let i = 0; i < 3; i++) {
        await readIntoFrames20h21h(g, i * 16);
      }
      // Two grants in all, of frames 20h and 21h themselves (writable), never ended while connected.
      expect(g.grants.counters).toMatchObject({ granted: 2, ended: 0 });
      expect(g.front.counters).toMatchObject({ directGrants: 2, directSegments: 6, persistentSegments: 0, persistentGrants: 0 });
      expect(g.backend.seen.map((r) => r.frames)).toEqual([[0x20, 0x21], [0x20, 0x21], [0x20, 0x21]]);
      // Past the limit of 2, a third frame goes through the pool (copied), as without `direct`.
      g.pages[0x30]!.fill(0x42);
      const w = g.front.queueRw('write', 300, [{ gfn: Gfn(0x30), firstSect: 0, lastSect: 7 }]);
      g.front.push();
      expect(await w).toBe(0);
      expect(g.backend.disk.subarray(300 * 512, 308 * 512).every((b) => b === 0x42)).toBe(true);
      expect(g.front.counters).toMatchObject({ directGrants: 2, persistentSegments: 1, persistentGrants: 1 });
      g.front.releasePersistent();
      expect(g.grants.counters.ended).toBe(3);
    });

    it('a pool smaller than one request, or a negotiation without a pool, is refused', () => {
      expect(() => guestWithDisk(2048, { persistent: true }, 10)).toThrow(BlkfrontError);
    });
  });
});
