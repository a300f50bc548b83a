/**
 * A hostile frontend against blkback: bogus grant refs, segment counts over 11, sectors past
 * the end, garbage slots, a slot rewritten while it is being served, impossible ring indices.
 * Every request gets an error response (or the ring is stopped), nothing throws, and no byte
 * outside the granted ranges — of the disk, of the guest, of another guest — changes.
 */
import { readFileSync } from 'node:fs';
import { BackRing, BLKIF_ENTRY_BYTES, BLKIF_OP, BLKIF_RSP, blkifRequest } from '@xenlab/ring-buffers';
import { DomId, Gfn, GrantFrame } from '@xenlab/xen-public';
import { describe, expect, it } from 'vitest';
import { BlkbackDevice, DiskImage } from './index.ts';
import { InMemoryGrantCopy, InMemoryGrantMap, type GrantingDomain } from './testing/in-memory-grant-table.ts';
import { DOM0, FakeGuest, GUEST, patternedImage, RawFront } from './testing/raw-front.ts';

const OTHER = DomId(9);

function world(map = false) {
  const img = patternedImage(128);
  const disk = DiskImage.open(img.path);
  const guest = new FakeGuest(16);
  // Another guest that granted dom0 a page (for its own disk): the hostile one must not reach it.
  const otherMem = new Uint8Array(4096).fill(0x77);
  const otherFrame = new GrantFrame(new ArrayBuffer(4096), 0);
  for (let r = 8; r < 512; r++) otherFrame.grant(r, DOM0, Gfn(0), false);
  const other: GrantingDomain = { domid: OTHER, frames: [otherFrame], page: (g) => (g === 0 ? otherMem : undefined) };
  const domains = new Map<number, GrantingDomain>([[GUEST, guest], [OTHER, other]]);
  const grants = new InMemoryGrantCopy(DOM0, domains);
  const grantMap = map ? new InMemoryGrantMap(DOM0, domains) : undefined;
  const page = new ArrayBuffer(4096);
  const front = new RawFront(page);
  const logs: string[] = [];
  const dev = new BlkbackDevice({
    ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES),
    frontendDomid: GUEST, disk, grants, grantMap, notify: () => {}, log: (l) => logs.push(l), logLimit: 5,
  });
  return { img, disk, guest, otherMem, grants, grantMap, page, front, dev, logs, image: () => new Uint8Array(readFileSync(img.path)) };
}

describe('blkback against a hostile frontend', () => {
  it.each([['grant copy', false], ['grant map', true]] as const)('answers bogus grefs, oversize segment counts and out-of-range sectors with errors (%s)', async (_mode, map) => {
    const w = world(map);
    const before = w.image();
    const memBefore = w.guest.memory.slice();
    // Guest grants one page to someone else, one with an invalid type; nothing to dom0.
    w.guest.frames[0]!.grant(20, DomId(3), Gfn(1), false);
    const cases: Array<Parameters<RawFront['put']>[0]> = [
      { operation: BLKIF_OP.READ, id: 1n, segs: [{ gref: 0xffffffff, firstSect: 0, lastSect: 7 }] },
      { operation: BLKIF_OP.READ, id: 2n, segs: [{ gref: 8, firstSect: 0, lastSect: 7 }] }, // ungranted (OTHER's ref 8 is granted, ours is not)
      { operation: BLKIF_OP.WRITE, id: 3n, segs: [{ gref: 20, firstSect: 0, lastSect: 7 }] }, // granted to dom3
      { operation: BLKIF_OP.READ, id: 4n, nrSegments: 12, segs: Array.from({ length: 11 }, () => ({ gref: 8, firstSect: 0, lastSect: 0 })) },
      { operation: BLKIF_OP.WRITE, id: 5n, nrSegments: 255 },
      { operation: BLKIF_OP.READ, id: 6n, nrSegments: 0 },
      { operation: BLKIF_OP.READ, id: 7n, sector: 127, segs: [{ gref: 8, firstSect: 0, lastSect: 1 }] },
      { operation: BLKIF_OP.WRITE, id: 8n, sector: 2 ** 52, segs: [{ gref: 8, firstSect: 0, lastSect: 0 }] },
      { operation: BLKIF_OP.READ, id: 9n, segs: [{ gref: 8, firstSect: 7, lastSect: 200 }] },
      { operation: 99, id: 10n },
      { operation: BLKIF_OP.INDIRECT, id: 11n, nrSegments: 11 },
    ];
    for (const c of cases) w.front.put(c);
    w.front.putDiscard(12n, 120, 100);
    w.front.push();
    await w.dev.kick();
    const rsp = w.front.responses();
    expect(rsp.map((r) => r.id)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n, 11n, 12n]);
    expect(rsp.map((r) => r.status)).toEqual([-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, BLKIF_RSP.EOPNOTSUPP, -1]);
    expect(rsp[9]!.operation).toBe(99);
    expect(w.image()).toEqual(before);
    expect(w.guest.memory).toEqual(memBefore);
    expect(w.otherMem.every((b) => b === 0x77)).toBe(true);
    expect(w.dev.counters.errors).toBe(12);
    expect(w.logs.length).toBeLessThanOrEqual(7);
    expect(w.logs.at(-1)).toContain('further problems not logged');
    expect(w.dev.stopped).toBeNull();
    expect(w.grantMap?.active ?? 0).toBe(0);
  });

  it('serves what it validated even if the frontend rewrites the slot meanwhile', async () => {
    const w = world();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = w.grants;
    const sneaky = { scratch: (n: number) => inner.scratch(n), copy: async (ops: Parameters<typeof inner.copy>[0]) => { await gate; return inner.copy(ops); } };
    const page = new ArrayBuffer(4096);
    const front = new RawFront(page);
    const dev = new BlkbackDevice({ ring: BackRing.attach(page, 0, 4096, BLKIF_ENTRY_BYTES), frontendDomid: GUEST, disk: w.disk, grants: sneaky, notify: () => {} });
    const g = w.guest.grant(2);
    const slotOff = front.ring.nextRequestOffset();
    front.put({ operation: BLKIF_OP.READ, id: 42n, sector: 3, segs: [{ gref: g, firstSect: 0, lastSect: 0 }] });
    front.push();
    const serving = dev.kick();
    // The request was copied out before the copy started; now scribble over the shared slot.
    blkifRequest.write(front.ring.view, slotOff, { operation: BLKIF_OP.WRITE, nrSegments: 11, id: 666n, sectorNumber: 0 });
    release();
    await serving;
    expect(front.responses()).toEqual([{ id: 42n, operation: BLKIF_OP.READ, status: 0 }]);
    expect(w.guest.memory.subarray(2 * 4096, 2 * 4096 + 512)).toEqual(w.img.bytes.subarray(3 * 512, 4 * 512));
  });

  it('stops the ring on impossible indices instead of looping or throwing', async () => {
    const w = world();
    const hdr = new Uint32Array(w.page, 0, 4);
    Atomics.store(hdr, 0, 1000); // req_prod 1000 with no responses: more than 32 outstanding
    await w.dev.kick();
    expect(w.dev.stopped).toContain('more than the ring');
    expect(w.dev.counters.requests).toBe(0);
    Atomics.store(hdr, 0, 1);
    await w.dev.kick();
    expect(w.dev.counters.requests).toBe(0);
    expect(Atomics.load(hdr, 2)).toBe(0);
  });

  it('survives a ring full of random bytes: every consumed slot gets exactly one response', async () => {
    const w = world();
    const before = w.image();
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const view = new Uint8Array(w.page);
    let served = 0;
    for (let round = 0; round < 40; round++) {
      const n = 1 + (rnd() % 32);
      for (let i = 0; i < n; i++) {
        const off = w.front.ring.nextRequestOffset();
        for (let b = 0; b < 112; b++) view[off + b] = rnd();
        // Reads, writes and bad ops; flush and discard would rightly succeed, so they are left out.
        view[off] = [0, 1, 1, 2, 4, 6, 7, 200][rnd() % 8]!;
        view[off + 8] = served + i; // distinct ids
        w.front.ring.produced();
      }
      w.front.push();
      await w.dev.kick();
      const rsp = w.front.responses();
      expect(rsp).toHaveLength(n);
      expect(rsp.map((r) => Number(r.id & 0xffn))).toEqual(Array.from({ length: n }, (_, i) => (served + i) & 0xff));
      expect(rsp.every((r) => r.status !== 0)).toBe(true);
      served += n;
    }
    expect(w.dev.stopped).toBeNull();
    expect(w.dev.counters.requests).toBe(served);
    expect(w.image()).toEqual(before);
    expect(w.otherMem.every((b) => b === 0x77)).toBe(true);
  });
});
