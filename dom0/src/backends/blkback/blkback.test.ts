import { readFileSync } from 'node:fs';
import { BackRing, BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP, blkifRequest } from '@xenlab/ring-buffers';
import { GNTST } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { BlkbackDevice, DiskImage, parseRequest, type BlockDisk } from './index.ts';
import { InMemoryGrantCopy, InMemoryGrantMap } from './testing/in-memory-grant-table.ts';
import { DOM0, FakeGuest, GUEST, patternedImage, RawFront } from './testing/raw-front.ts';

const SECTORS = 256;

function setup(opts: { readOnly?: boolean; features?: { flush?: boolean; discard?: boolean }; disk?: BlockDisk; map?: boolean } = {}) {
  const img = patternedImage(SECTORS);
  const disk = opts.disk ?? DiskImage.open(img.path, { readOnly: opts.readOnly });
  const guest = new FakeGuest(32);
  const grants = new InMemoryGrantCopy(DOM0, new Map([[GUEST, guest]]));
  const grantMap = opts.map ? new InMemoryGrantMap(DOM0, new Map([[GUEST, guest]])) : undefined;
  const page = new ArrayBuffer(4096);
  const front = new RawFront(page);
  let kicks = 0;
  const logs: string[] = [];
  const dev = new BlkbackDevice({
    ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES),
    frontendDomid: GUEST,
    disk,
    grants,
    grantMap,
    notify: () => kicks++,
    features: opts.features,
    log: (l) => logs.push(l),
  });
  const image = () => new Uint8Array(readFileSync(img.path));
  return { img, disk, guest, grants, grantMap, front, dev, logs, image, kicks: () => kicks };
}

const sector = (bytes: Uint8Array, s: number, n = 1) => bytes.subarray(s * 512, (s + n) * 512);

describe('parseRequest', () => {
  const limits = { sectors: 100, readOnly: false, flush: true, discard: true };
  const slot = (fill: (v: DataView) => void) => {
    const v = new DataView(new ArrayBuffer(112));
    fill(v);
    return v;
  };
  const rw = (op: number, nr: number, sector: number, segs: Array<[number, number]>) =>
    slot((v) => {
      blkifRequest.write(v, 0, { operation: op, nrSegments: nr, id: 0xfedcba9876543210n, sectorNumber: sector });
      segs.forEach(([f, l], i) => { v.setUint8(24 + i * 8 + 4, f); v.setUint8(24 + i * 8 + 5, l); v.setUint32(24 + i * 8, 100 + i, true); });
    });

  it('accepts a well-formed read and keeps the 64-bit id exactly', () => {
    const r = parseRequest(rw(BLKIF_OP.READ, 2, 10, [[0, 7], [2, 3]]), limits);
    expect(r).toMatchObject({ kind: 'rw', op: 'read', id: 0xfedcba9876543210n, sector: 10, nrSectors: 10 });
    expect(r.kind === 'rw' && r.segments).toEqual([{ gref: 100, firstSect: 0, lastSect: 7 }, { gref: 101, firstSect: 2, lastSect: 3 }]);
  });

  it.each([
    ['nr_segments 0', rw(BLKIF_OP.READ, 0, 0, []), BLKIF_RSP.ERROR, 'nr_segments 0'],
    ['nr_segments 12', rw(BLKIF_OP.WRITE, 12, 0, []), BLKIF_RSP.ERROR, 'nr_segments 12'],
    ['last_sect 8', rw(BLKIF_OP.READ, 1, 0, [[0, 8]]), BLKIF_RSP.ERROR, 'not within a page'],
    ['first > last', rw(BLKIF_OP.READ, 1, 0, [[5, 4]]), BLKIF_RSP.ERROR, 'not within a page'],
    ['past the end', rw(BLKIF_OP.READ, 1, 96, [[0, 7]]), BLKIF_RSP.ERROR, 'past the end'],
    ['sector 2^60', rw(BLKIF_OP.READ, 1, 2 ** 60, [[0, 0]]), BLKIF_RSP.ERROR, 'past the end'],
    ['unknown op', rw(200, 1, 0, [[0, 0]]), BLKIF_RSP.ERROR, 'unknown operation 200'],
    ['barrier', rw(BLKIF_OP.WRITE_BARRIER, 1, 0, [[0, 0]]), BLKIF_RSP.EOPNOTSUPP, 'not supported'],
    ['indirect', rw(BLKIF_OP.INDIRECT, 1, 0, [[0, 0]]), BLKIF_RSP.EOPNOTSUPP, 'not supported'],
  ])('rejects %s', (_, v, status, reason) => {
    const r = parseRequest(v, limits);
    expect(r).toMatchObject({ kind: 'rejected', status, id: 0xfedcba9876543210n });
    expect(r.kind === 'rejected' && r.reason).toContain(reason);
  });

  it('exactly at the end is fine; read-only devices refuse writes and discards; unadvertised ops are EOPNOTSUPP', () => {
    expect(parseRequest(rw(BLKIF_OP.READ, 1, 92, [[0, 7]]), limits).kind).toBe('rw');
    const ro = { ...limits, readOnly: true };
    expect(parseRequest(rw(BLKIF_OP.WRITE, 1, 0, [[0, 0]]), ro)).toMatchObject({ status: BLKIF_RSP.ERROR });
    expect(parseRequest(rw(BLKIF_OP.DISCARD, 0, 0, []), ro)).toMatchObject({ status: BLKIF_RSP.ERROR });
    expect(parseRequest(rw(BLKIF_OP.FLUSH_DISKCACHE, 0, 0, []), { ...limits, flush: false })).toMatchObject({ status: BLKIF_RSP.EOPNOTSUPP });
    expect(parseRequest(rw(BLKIF_OP.DISCARD, 0, 0, []), { ...limits, discard: false })).toMatchObject({ status: BLKIF_RSP.EOPNOTSUPP });
  });
});

describe.each([['grant copy', false], ['grant map', true]] as const)('BlkbackDevice by %s', (_mode, map) => {
  it('reads sectors into exactly the granted ranges', async () => {
    const t = setup({ map });
    t.guest.memory.fill(0xee);
    const g1 = t.guest.grant(3);
    const g2 = t.guest.grant(4);
    t.front.put({ operation: BLKIF_OP.READ, id: 11n, sector: 5, segs: [{ gref: g1, firstSect: 1, lastSect: 7 }, { gref: g2, firstSect: 0, lastSect: 2 }] });
    expect(t.front.push()).toBe(true);
    await t.dev.kick();
    expect(t.front.responses()).toEqual([{ id: 11n, operation: BLKIF_OP.READ, status: BLKIF_RSP.OKAY }]);
    const mem = t.guest.memory;
    expect(mem.subarray(3 * 4096 + 512, 4 * 4096)).toEqual(sector(t.img.bytes, 5, 7));
    expect(mem.subarray(4 * 4096, 4 * 4096 + 1536)).toEqual(sector(t.img.bytes, 12, 3));
    // Everything else untouched.
    expect(mem.subarray(3 * 4096, 3 * 4096 + 512).every((b) => b === 0xee)).toBe(true);
    expect(mem.subarray(4 * 4096 + 1536, 5 * 4096).every((b) => b === 0xee)).toBe(true);
    expect(t.dev.counters).toMatchObject({ requests: 1, reads: 1, bytesRead: 5120, segments: 2, errors: 0, notificationsSent: 1 });
    expect(t.kicks()).toBe(1);
    expect(t.grantMap?.active ?? 0).toBe(0);
    expect(t.guest.frames[0]!.flags(8)).toBe(1);
  });

  it('writes granted data to the right sectors and nothing else; flush and discard', async () => {
    const t = setup({ map });
    const before = t.image();
    t.guest.memory.subarray(2 * 4096, 3 * 4096).fill(0x5a);
    const g = t.guest.grant(2, true);
    t.front.put({ operation: BLKIF_OP.WRITE, id: 1n, sector: 40, segs: [{ gref: g, firstSect: 2, lastSect: 3 }] });
    t.front.put({ operation: BLKIF_OP.FLUSH_DISKCACHE, id: 2n });
    t.front.putDiscard(3n, 100, 4);
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => [r.id, r.status])).toEqual([[1n, 0], [2n, 0], [3n, 0]]);
    const after = t.image();
    expect(sector(after, 40, 2).every((b) => b === 0x5a)).toBe(true);
    expect(sector(after, 100, 4).every((b) => b === 0)).toBe(true);
    const expected = before.slice();
    expected.fill(0x5a, 40 * 512, 42 * 512);
    expected.fill(0, 100 * 512, 104 * 512);
    expect(after).toEqual(expected);
    expect(t.dev.counters).toMatchObject({ writes: 1, flushes: 1, discards: 1, bytesWritten: 1024 });
  });

  it('a bad grant anywhere in a write means nothing reaches the disk', async () => {
    const t = setup({ map });
    const before = t.image();
    const good = t.guest.grant(1, true);
    t.front.put({ operation: BLKIF_OP.WRITE, id: 9n, sector: 0, segs: [{ gref: good, firstSect: 0, lastSect: 7 }, { gref: 400, firstSect: 0, lastSect: 7 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()).toEqual([{ id: 9n, operation: BLKIF_OP.WRITE, status: BLKIF_RSP.ERROR }]);
    expect(t.image()).toEqual(before);
    expect(t.dev.counters.grantErrors).toBe(1);
    expect(t.logs.join('\n')).toMatch(/gref 400: grant (copy|map) failed \(general_error\)/);
    expect(t.grantMap?.active ?? 0).toBe(0);
    expect(t.guest.frames[0]!.flags(good)).toBe(1 | 4);
  });

  it('a read into a read-only grant fails without writing the page', async () => {
    const t = setup({ map });
    const g = t.guest.grant(5, true);
    t.front.put({ operation: BLKIF_OP.READ, id: 4n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()[0]!.status).toBe(BLKIF_RSP.ERROR);
    expect(t.guest.memory.subarray(5 * 4096, 6 * 4096).every((b) => b === 0)).toBe(true);
    if (!map) expect(t.grants.log.map((l) => l.status)).toEqual([GNTST.permission_denied]);
    expect(t.logs.join('\n')).toContain('permission_denied');
  });

  it('maps the same page twice in one request without unpinning it early', async () => {
    const t = setup({ map });
    const g = t.guest.grant(6);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 3 }, { gref: g, firstSect: 4, lastSect: 7 }] });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses()[0]!.status).toBe(0);
    expect(t.guest.memory.subarray(6 * 4096, 7 * 4096)).toEqual(sector(t.img.bytes, 0, 8));
    expect(t.guest.frames[0]!.flags(g)).toBe(1);
  });
});

describe('BlkbackDevice', () => {
  it('holds off notifications: one kick for a batch, none while the frontend has not re-armed', async () => {
    const t = setup();
    const g = t.guest.grant(0);
    for (let i = 0; i < 10; i++) t.front.put({ operation: BLKIF_OP.READ, id: BigInt(i), sector: i, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    await t.dev.kick();
    // rsp_event was 1: only the first response crossed it.
    expect(t.dev.counters).toMatchObject({ requests: 10, notificationsSent: 1, notificationsSuppressed: 9 });
    expect(t.front.responses()).toHaveLength(10);
    expect(t.front.ring.finalCheckForResponses()).toBe(false);
    // After re-arming, the next response notifies again; the backend re-armed req_event too.
    t.front.put({ operation: BLKIF_OP.READ, id: 10n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    expect(t.front.push()).toBe(true);
    await t.dev.kick();
    expect(t.dev.counters.notificationsSent).toBe(2);
  });

  it('a kick during service is not lost', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = setup();
    const slow = { ...t.grants, scratch: t.grants.scratch.bind(t.grants), copy: async (ops: Parameters<typeof t.grants.copy>[0]) => { await gate; return t.grants.copy(ops); } };
    const page = new ArrayBuffer(4096);
    const front = new RawFront(page);
    const dev = new BlkbackDevice({ ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES), frontendDomid: GUEST, disk: t.disk, grants: slow, notify: () => {} });
    const g = t.guest.grant(0);
    front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    front.push();
    const first = dev.kick();
    front.put({ operation: BLKIF_OP.READ, id: 2n, sector: 1, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    front.push();
    const second = dev.kick();
    release();
    await Promise.all([first, second]);
    expect(front.responses().map((r) => r.id)).toEqual([1n, 2n]);
  });

  it('a kick from a microtask that runs just as the serving loop ends is not lost', async () => {
    // The loop ends a few microtasks after its last look at the ring; a kick arriving from a
    // microtask in that window (the event-channel dispatcher runs in one) must still be served.
    // Each depth puts the kick one microtask later; one of them used to fall in the window, and
    // its request was never answered (the frontend, having notified, waited for ever).
    const t = setup();
    const g = t.guest.grant(0);
    for (let depth = 0; depth < 16; depth++) {
      const id = BigInt(depth + 1);
      const first = t.dev.kick(); // an empty ring: serve, re-arm, go idle
      let late: Promise<void> | undefined;
      const kickLater = (n: number): void => {
        if (n > 0) return queueMicrotask(() => kickLater(n - 1));
        t.front.put({ operation: BLKIF_OP.READ, id, sector: depth, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
        expect(t.front.push()).toBe(true); // past req_event: the frontend notifies, once
        late = t.dev.kick();
      };
      kickLater(depth);
      await first;
      for (let i = 0; i < 4 && !late; i++) await new Promise((r) => setImmediate(r));
      await late;
      await new Promise((r) => setImmediate(r));
      expect(t.front.responses().map((r) => r.id), `kick ${depth} microtasks after the first`).toEqual([id]);
    }
  });

  it('an I/O error from the disk becomes BLKIF_RSP_ERROR, not a throw', async () => {
    const broken: BlockDisk = {
      sectors: 64, readOnly: false,
      readv: () => { throw new Error('EIO'); }, writev: () => { throw new Error('EIO'); }, flush: () => { throw new Error('EIO'); }, discard: () => {},
    };
    const t = setup({ disk: broken });
    const g = t.guest.grant(0);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    t.front.put({ operation: BLKIF_OP.FLUSH_DISKCACHE, id: 2n });
    t.front.push();
    await t.dev.kick();
    expect(t.front.responses().map((r) => r.status)).toEqual([BLKIF_RSP.ERROR, BLKIF_RSP.ERROR]);
    expect(t.logs[0]).toContain('I/O error: EIO');
  });

  it('an unexpected failure stops only this device, it does not throw out of kick()', async () => {
    const t = setup();
    const g = t.guest.grant(0);
    t.front.put({ operation: BLKIF_OP.READ, id: 1n, sector: 0, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    t.front.push();
    (t.dev as unknown as { respond: () => never }).respond = () => {
      throw new TypeError('detached ArrayBuffer');
    };
    await expect(t.dev.kick()).resolves.toBeUndefined();
    expect(t.dev.stopped).toContain('internal error: detached ArrayBuffer');
    expect(t.logs.at(-1)).toContain('ring stopped');
  });
});

describe('blkback with requests in flight (inFlight > 1)', () => {
  it('serves a batch concurrently with separate scratch, answers every id, and orders a flush after the writes before it', async () => {
    const img = patternedImage(SECTORS);
    const disk = DiskImage.open(img.path);
    const guest = new FakeGuest(32);
    const order: string[] = [];
    const inner = new InMemoryGrantCopy(DOM0, new Map([[GUEST, guest]]));
    // Copies complete out of order (later ones first), so a shared scratch would mix data up.
    let n = 0;
    const grants = {
      scratch: (p: number) => inner.scratch(p),
      copy: async (ops: Parameters<typeof inner.copy>[0]) => {
        const delay = 8 - (n++ % 8);
        await new Promise((r) => setTimeout(r, delay));
        order.push(`copy ${ops[0]!.dir}`);
        return inner.copy(ops);
      },
    };
    const flushDisk = { ...disk, sectors: disk.sectors, readOnly: false, readv: disk.readv.bind(disk), writev: (b: Uint8Array[], s: number) => (order.push('writev'), disk.writev(b, s)), flush: () => (order.push('flush'), disk.flush()), discard: disk.discard.bind(disk) } as BlockDisk;
    const page = new ArrayBuffer(4096);
    const front = new RawFront(page);
    const dev = new BlkbackDevice({ ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES), frontendDomid: GUEST, disk: flushDisk, grants, notify: () => {}, inFlight: 4 });
    const reads = Array.from({ length: 6 }, (_, i) => ({ gfn: i, ref: guest.grant(i) }));
    reads.forEach((r, i) => front.put({ operation: BLKIF_OP.READ, id: BigInt(i + 1), sector: i * 8, segs: [{ gref: r.ref, firstSect: 0, lastSect: 7 }] }));
    const w = guest.grant(10, true);
    guest.page(10)!.fill(0xab);
    front.put({ operation: BLKIF_OP.WRITE, id: 7n, sector: 100, segs: [{ gref: w, firstSect: 0, lastSect: 0 }] });
    front.put({ operation: BLKIF_OP.FLUSH_DISKCACHE, id: 8n });
    front.push();
    await dev.kick();
    const rsp = front.responses();
    expect(rsp.map((r) => r.id)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(rsp.every((r) => r.status === BLKIF_RSP.OKAY)).toBe(true);
    for (let i = 0; i < 6; i++) expect(Buffer.compare(Buffer.from(guest.page(i)!), Buffer.from(sector(img.bytes, i * 8, 8)))).toBe(0);
    expect(order.indexOf('flush')).toBeGreaterThan(order.indexOf('writev'));
    expect(sector(new Uint8Array(readFileSync(img.path)), 100)[0]).toBe(0xab);
  });
});
