import { readFileSync } from 'node:fs';
import { BackRing, BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP } from '@xenlab/ring-buffers';
import { DomId, Gfn, GTF, GrantRef } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { BlkbackDevice, DiskImage, PersistentGrants } from './index.ts';
import type { BlockDisk } from './disk-image.ts';
import type { GrantMapInterface, GrantMapOp } from './grant-copy.ts';
import { InMemoryGrantCopy, InMemoryGrantMap } from './testing/in-memory-grant-table.ts';
import { DOM0, FakeGuest, GUEST, patternedImage, RawFront } from './testing/raw-front.ts';

const SECTORS = 256;

/** Counts map calls and the grefs asked for, around the in-memory double. */
class CountingMap implements GrantMapInterface {
  calls: GrantMapOp[][] = [];
  constructor(readonly inner: InMemoryGrantMap) {}
  map(ops: readonly GrantMapOp[]) {
    this.calls.push([...ops]);
    return this.inner.map(ops);
  }
  unmap(handles: readonly number[]) {
    return this.inner.unmap(handles);
  }
}

function setup(opts: { limit?: number; persistent?: boolean; pollUs?: number; disk?: (d: DiskImage) => BlockDisk } = {}) {
  const img = patternedImage(SECTORS);
  const image = DiskImage.open(img.path);
  const disk = opts.disk ? opts.disk(image) : image;
  const guest = new FakeGuest(32);
  const domains = new Map([[GUEST, guest]]);
  const grants = new InMemoryGrantCopy(DOM0, domains);
  const inner = new InMemoryGrantMap(DOM0, domains);
  const gm = new CountingMap(inner);
  const persistent = opts.persistent === false ? undefined : new PersistentGrants(gm, GUEST, opts.limit ?? 256);
  const page = new ArrayBuffer(4096);
  const front = new RawFront(page);
  const logs: string[] = [];
  const dev = new BlkbackDevice({
    ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES),
    frontendDomid: GUEST,
    disk,
    grants,
    persistent,
    notify: () => {},
    inFlight: 8,
    pollUs: opts.pollUs,
    log: (l) => logs.push(l),
    logLimit: 100,
  });
  const imageBytes = () => new Uint8Array(readFileSync(img.path));
  const sector = (s: number, n = 1) => img.bytes.subarray(s * 512, (s + n) * 512);
  const read = async (id: bigint, sectorNo: number, gref: number) => {
    front.put({ operation: BLKIF_OP.READ, id, sector: sectorNo, segs: [{ gref, firstSect: 0, lastSect: 7 }] });
    front.push();
    await dev.kick();
    return front.responses();
  };
  return { img, guest, grants, inner, gm, persistent: persistent!, front, dev, logs, image: imageBytes, sector, read };
}

describe('blkback persistent grants', () => {
  it('maps a gref once and serves later requests through the mapping, with no copy or map per request', async () => {
    const t = setup();
    const g = t.guest.grant(3);
    for (let i = 0; i < 5; i++) {
      expect(await t.read(BigInt(i), i * 8, g)).toEqual([{ id: BigInt(i), operation: BLKIF_OP.READ, status: BLKIF_RSP.OKAY }]);
      expect(t.guest.page(3)).toEqual(t.sector(i * 8, 8));
    }
    expect(t.gm.calls.length).toBe(1);
    expect(t.grants.log).toEqual([]);
    expect(t.persistent.counters).toMatchObject({ mapped: 1, mapCalls: 1, hits: 5, mapFailures: 0 });
    // The same page carries a WRITE (the mapping is writable).
    t.guest.page(3)!.fill(0xab);
    t.front.put({ operation: BLKIF_OP.WRITE, id: 9n, sector: 100, segs: [{ gref: g, firstSect: 2, lastSect: 3 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.image().subarray(100 * 512, 102 * 512).every((b) => b === 0xab)).toBe(true);
    expect(t.gm.calls.length).toBe(1);
  });

  it('two requests in one pass naming the same new gref map it once', async () => {
    const t = setup();
    const g = t.guest.grant(4);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    t.front.put({ operation: BLKIF_OP.READ, id: 2n, sector: 1, segs: [{ gref: g, firstSect: 1, lastSect: 1 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => r.status)).toEqual([0, 0]);
    expect(t.gm.calls.flat().length).toBe(1);
    expect(t.guest.page(4)!.subarray(0, 1024)).toEqual(t.sector(0, 2));
  });

  it('a gref never granted, revoked, or out of range gets BLKIF_RSP_ERROR and is not remembered', async () => {
    const t = setup();
    const revoked = t.guest.grant(5);
    expect(t.guest.frames[0]!.endAccess(revoked)).toBe(true);
    expect((await t.read(1n, 0, 200))[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect((await t.read(2n, 0, revoked))[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect((await t.read(3n, 0, 0xfffffff0))[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect(t.persistent.size).toBe(0);
    expect(t.persistent.counters.mapFailures).toBe(3);
    expect(t.guest.page(5)!.every((b) => b === 0)).toBe(true);
    // Granted later, the same gref works (a failure is not cached).
    t.guest.frames[0]!.grant(revoked, DOM0, Gfn(5), false);
    expect((await t.read(4n, 8, revoked))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.guest.page(5)).toEqual(t.sector(8, 8));
  });

  it('a page granted read-only or to another domain is never mapped writable; a WRITE from a read-only grant still works by copy', async () => {
    const t = setup();
    const ro = t.guest.grant(6, true);
    const other = t.guest.grant(7, false, DomId(9));
    expect((await t.read(1n, 0, ro))[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect((await t.read(2n, 0, other))[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect(t.guest.page(6)!.every((b) => b === 0) && t.guest.page(7)!.every((b) => b === 0)).toBe(true);
    t.guest.page(6)!.fill(0x5c);
    t.front.put({ operation: BLKIF_OP.WRITE, id: 3n, sector: 40, segs: [{ gref: ro, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.image().subarray(40 * 512, 41 * 512).every((b) => b === 0x5c)).toBe(true);
    expect(t.persistent.size).toBe(0);
  });

  it('keeps at most `limit` mappings and serves the rest by the per-request path', async () => {
    const t = setup({ limit: 2 });
    const grefs = [10, 11, 12, 13].map((gfn) => t.guest.grant(gfn));
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 16, segs: grefs.map((gref) => ({ gref, firstSect: 0, lastSect: 7 })) });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()[0]!.status).toBe(BLKIF_RSP.OKAY);
    for (let i = 0; i < 4; i++) expect(t.guest.page(10 + i)).toEqual(t.sector(16 + i * 8, 8));
    expect(t.persistent.size).toBe(2);
    expect(t.inner.active).toBe(2);
    expect(t.grants.log.length).toBe(2);
    // Again: the two mapped are hits, the two others are copied again, no new map.
    expect((await t.read(2n, 0, grefs[3]!))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.persistent.counters.overLimit).toBeGreaterThanOrEqual(3);
    expect(t.inner.active).toBe(2);
    expect(t.gm.calls.length).toBe(1);
  });

  it('close() waits for the requests under way, then unmaps everything: the frontend can end its grants', async () => {
    const t = setup();
    const grefs = [14, 15, 16].map((gfn) => t.guest.grant(gfn));
    for (const [i, g] of grefs.entries()) await t.read(BigInt(i), i, g);
    expect(t.inner.active).toBe(3);
    // While mapped, the frontend cannot revoke (the hypervisor holds the entry).
    expect(t.guest.frames[0]!.endAccess(grefs[0]!)).toBe(false);
    t.front.put({ operation: BLKIF_OP.READ, id: 7n, sector: 0, segs: [{ gref: grefs[1]!, firstSect: 0, lastSect: 7 }] });
    t.front.push();
    const serving = t.dev.kick();
    const calls = t.gm.calls.length;
    await t.dev.close();
    await serving;
    expect(t.inner.active).toBe(0);
    expect(t.persistent.counters).toMatchObject({ mapped: 0, released: 3, unmapFailures: 0 });
    for (const g of grefs) {
      expect(t.guest.frames[0]!.flags(g) & (GTF.reading | GTF.writing)).toBe(0);
      expect(t.guest.frames[0]!.endAccess(g)).toBe(true);
    }
    // A closed device serves nothing and maps nothing more.
    t.front.put({ operation: BLKIF_OP.READ, id: 8n, sector: 0, segs: [{ gref: 200, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.gm.calls.length).toBe(calls);
    expect(t.inner.active).toBe(0);
  });

  it('a map still on its way when the table is released is given straight back', async () => {
    const guest = new FakeGuest(4);
    const inner = new InMemoryGrantMap(DOM0, new Map([[GUEST, guest]]));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: GrantMapInterface = { map: async (ops) => (await gate, inner.map(ops)), unmap: (h) => inner.unmap(h) };
    const pg = new PersistentGrants(slow, GUEST, 8);
    const acquiring = pg.acquire([guest.grant(1)]);
    const releasing = pg.release();
    release();
    await acquiring;
    await releasing;
    expect(inner.active).toBe(0);
    expect(pg.size).toBe(0);
  });

  it('a hostile frontend rewriting a mapped grant entry cannot redirect blkback: the validated frame stays the one used', async () => {
    const t = setup();
    const g = t.guest.grant(20);
    await t.read(1n, 0, g);
    // Point the entry at another frame and drop the permission, behind the hypervisor's back.
    t.guest.frames[0]!.grant(g, DOM0, Gfn(21), false);
    expect((await t.read(2n, 64, g))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.guest.page(20)).toEqual(t.sector(64, 8));
    expect(t.guest.page(21)!.every((b) => b === 0)).toBe(true);
    // Garbage segments next to a mapped one: bounds still checked before anything is touched.
    t.front.put({ operation: BLKIF_OP.READ, id: 3n, sector: SECTORS - 1, segs: [{ gref: g, firstSect: 0, lastSect: 7 }] });
    t.front.put({ operation: BLKIF_OP.READ, id: 4n, sector: 0, segs: [{ gref: g, firstSect: 7, lastSect: 9 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => r.status)).toEqual([BLKIF_RSP.ERROR, BLKIF_RSP.ERROR]);
    expect(t.guest.page(20)).toEqual(t.sector(64, 8));
  });

  it('finds a mapping by gref whether the gref is small (array) or large (hash), and forgets both on release', async () => {
    const pages = new Map<number, Uint8Array>();
    let handle = 0;
    const gm: GrantMapInterface = {
      map: async (ops) => ops.map((o) => {
        const page = new Uint8Array(4096);
        pages.set(o.gref, page);
        return { status: 0, handle: ++handle, page };
      }),
      unmap: async (handles) => handles.map(() => 0),
    };
    const pg = new PersistentGrants(gm, GUEST, 8);
    await pg.acquire([GrantRef(5), GrantRef(0xffff), GrantRef(0x10000), GrantRef(0xfffffff0)]);
    for (const g of [5, 0xffff, 0x10000, 0xfffffff0]) {
      const m = pg.mapping(g)!;
      expect(m.page).toBe(pages.get(g));
      expect(m.buffer).toBe(pages.get(g)!.buffer);
      expect(m.offset).toBe(0);
      expect(pg.page(GrantRef(g))).toBe(m.page);
    }
    expect(pg.mapping(6)).toBeUndefined();
    expect(pg.mapping(0x10001)).toBeUndefined();
    await pg.release();
    for (const g of [5, 0xffff, 0x10000, 0xfffffff0]) expect(pg.mapping(g)).toBeUndefined();
    expect(pg.counters.released).toBe(4);
  });

  it('without persistent grants nothing is mapped (the per-request path as before)', async () => {
    const t = setup({ persistent: false });
    const g = GrantRef(t.guest.grant(3));
    expect((await t.read(1n, 0, g))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.gm.calls.length).toBe(0);
    expect(t.grants.log.length).toBe(1);
  });
});

describe('blkback polling a busy ring', () => {
  it('requests pushed while it polls are served without a kick; then it re-arms and goes idle', async () => {
    const t = setup({ pollUs: 1_000_000 });
    const g = t.guest.grant(3);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    expect(t.front.push()).toBe(true);
    const serving = t.dev.kick();
    // The first request is answered; the device is now polling, req_event not re-armed.
    const answered = async () => {
      for (let i = 0; i < 1000; i++) {
        const r = t.front.responses();
        if (r.length > 0) return r;
        await new Promise((res) => setImmediate(res));
      }
      return [];
    };
    expect((await answered()).map((r) => r.id)).toEqual([1n]);
    t.front.put({ operation: BLKIF_OP.READ, id: 2n, sector: 8, segs: [{ gref: g, firstSect: 0, lastSect: 7 }] });
    // No kick needed: the backend did not ask.
    expect(t.front.push()).toBe(false);
    expect((await answered()).map((r) => [r.id, r.status])).toEqual([[2n, BLKIF_RSP.OKAY]]);
    expect(t.dev.counters.pollHits).toBe(1);
    // Closing ends the poll at once (no 1 s wait) and nothing is served afterwards.
    await t.dev.close();
    await serving;
    expect(t.dev.counters.requests).toBe(2);
  });

  it('a short poll runs out, re-arms req_event and goes idle: the next push kicks', async () => {
    const t = setup({ pollUs: 50 });
    const g = t.guest.grant(3);
    expect((await t.read(1n, 0, g))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.dev.counters).toMatchObject({ pollMisses: 1, idles: 1 });
    t.front.put({ operation: BLKIF_OP.READ, id: 2n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    expect(t.front.push()).toBe(true);
  });
});

describe('blkback\'s merged hot path (persistent grants)', () => {
  /** Maps grefs for guest frames `gfns` (one request each, to warm the table), returns them. */
  const warm = async (t: ReturnType<typeof setup>, gfns: number[]) => {
    const grefs = gfns.map((g) => t.guest.grant(g));
    for (const [i, g] of grefs.entries()) await t.read(BigInt(1000 + i), 0, g);
    return grefs;
  };

  it('consecutive READs of adjacent sectors are one disk call; ids (all 64 bits) and order are kept', async () => {
    const t = setup();
    const grefs = await warm(t, [10, 11, 12, 13, 14, 15]);
    const before = { ...t.dev.counters };
    const ids = [0xdeadbeef00000001n, 2n, 0xffffffffffffffffn];
    // Three requests, 2 pages each, sectors 40..87 back to back (frames 10..15 are adjacent).
    for (let k = 0; k < 3; k++) {
      t.front.put({ operation: BLKIF_OP.READ, id: ids[k]!, sector: 40 + k * 16, segs: [0, 1].map((j) => ({ gref: grefs[k * 2 + j]!, firstSect: 0, lastSect: 7 })) });
    }
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()).toEqual(ids.map((id) => ({ id, operation: BLKIF_OP.READ, status: BLKIF_RSP.OKAY })));
    for (let i = 0; i < 6; i++) expect(t.guest.page(10 + i)).toEqual(t.sector(40 + i * 8, 8));
    expect(t.dev.counters.mergedIos - before.mergedIos).toBe(1);
    expect(t.dev.counters.mergedRequests - before.mergedRequests).toBe(3);
    expect(t.dev.counters.reads - before.reads).toBe(3);
    expect(t.dev.counters.bytesRead - before.bytesRead).toBe(3 * 8192);
    expect(t.gm.calls.length).toBe(6); // the warm-up's maps only
  });

  it('a gap in sectors, a change of direction or a partial segment splits the run; a WRITE then a READ of it sees the new data', async () => {
    const t = setup();
    const [a, b, c] = await warm(t, [20, 21, 22]);
    const before = t.dev.counters.mergedIos;
    t.guest.page(21)!.fill(0x3c);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 8, segs: [{ gref: a!, firstSect: 0, lastSect: 7 }] });
    t.front.put({ operation: BLKIF_OP.WRITE, id: 2n, sector: 16, segs: [{ gref: b!, firstSect: 0, lastSect: 7 }] });
    t.front.put({ operation: BLKIF_OP.READ, id: 3n, sector: 16, segs: [{ gref: c!, firstSect: 2, lastSect: 3 }] });
    t.front.put({ operation: BLKIF_OP.READ, id: 4n, sector: 100, segs: [{ gref: a!, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => [r.id, r.operation, r.status])).toEqual([[1n, 0, 0], [2n, 1, 0], [3n, 0, 0], [4n, 0, 0]]);
    expect(t.dev.counters.mergedIos - before).toBe(4);
    // Request 3 read sectors 16..17 (just written) into bytes 1024..2047 of frame 22 only.
    expect(t.guest.page(22)!.subarray(1024, 2048).every((x) => x === 0x3c)).toBe(true);
    expect(t.guest.page(22)!.subarray(0, 1024)).toEqual(t.sector(0, 2));
    expect(t.image().subarray(16 * 512, 24 * 512).every((x) => x === 0x3c)).toBe(true);
  });

  it('a failed merged I/O is retried request by request, so only the request that fails gets an error', async () => {
    const BAD = 60;
    const t = setup({
      disk: (d) => ({
        sectors: d.sectors,
        readOnly: false,
        readv: (bufs, sector) => {
          const n = bufs.reduce((x, b) => x + b.byteLength / 512, 0);
          if (sector <= BAD && BAD < sector + n) throw new Error('EIO (test: bad sector 60)');
          d.readv(bufs, sector);
        },
        writev: (bufs, sector) => d.writev(bufs, sector),
        flush: () => d.flush(),
        discard: (s, n) => d.discard(s, n),
      }),
    });
    const grefs = await warm(t, [10, 11, 12]);
    for (let k = 0; k < 3; k++) t.front.put({ operation: BLKIF_OP.READ, id: BigInt(k + 1), sector: 48 + k * 8, segs: [{ gref: grefs[k]!, firstSect: 0, lastSect: 7 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => r.status)).toEqual([BLKIF_RSP.OKAY, BLKIF_RSP.ERROR, BLKIF_RSP.OKAY]);
    expect(t.guest.page(10)).toEqual(t.sector(48, 8));
    expect(t.guest.page(12)).toEqual(t.sector(64, 8));
    expect(t.logs.some((l) => l.includes('id 2') && l.includes('bad sector 60'))).toBe(true);
  });

  it('a request naming a gref not mapped yet leaves the hot path (mapped once by the general path), then joins it', async () => {
    const t = setup();
    const g = t.guest.grant(9);
    const before = t.dev.counters.mergedIos;
    expect((await t.read(1n, 0, g))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.dev.counters.mergedIos).toBe(before);
    expect((await t.read(2n, 8, g))[0]!.status).toBe(BLKIF_RSP.OKAY);
    expect(t.dev.counters.mergedIos).toBe(before + 1);
    expect(t.guest.page(9)).toEqual(t.sector(8, 8));
  });
});
